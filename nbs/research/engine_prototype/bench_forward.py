"Forward-pass variants at 10^6 rows, interleaved (round-robin, --reps rounds), medians; X from the transform, C or F order."
import sys, time, os, json, argparse
sys.path.insert(0, '/work/scratch/engine')
import numpy as np, engine as E
ap = argparse.ArgumentParser(); ap.add_argument('--reps', type=int, default=3); ap.add_argument('--n', type=int, default=10**6)
a = ap.parse_args()
params = E.load_params('/work/scratch/engine/scoring.npz')
rng = np.random.default_rng(0)
XC = np.ascontiguousarray(rng.standard_normal((a.n, 65)).astype(np.float32))
XF = np.asfortranarray(XC)
V = {'blas1 py1 b2048 C': (dict(threads=1, batch=2048), 1, XC),
     'blas2 py1 b2048 C': (dict(threads=1, batch=2048), 2, XC),
     'blas2 py1 b65536 C': (dict(threads=1, batch=65536), 2, XC),
     'blas1 py2 b1024 C': (dict(threads=2, batch=1024), 1, XC),
     'blas1 py2 b2048 C': (dict(threads=2, batch=2048), 1, XC),
     'blas1 py2 b2048 F': (dict(threads=2, batch=2048), 1, XF),
     'blas1 py2 b8192 C': (dict(threads=2, batch=8192), 1, XC)}
sc = {k: E.Scorer(params, **kw) for k, (kw, _, _) in V.items()}
ts = {k: [] for k in V}
ref = None
for r in range(a.reps):
    for k, (kw, blas, X) in V.items():
        with E.blas_threads(blas):
            t = time.perf_counter(); p = sc[k].forward(X); ts[k].append(time.perf_counter() - t)
        if ref is None: ref = p
        assert np.max(np.abs(p - ref)) < 1e-6
sys.path.insert(0, '/work/scratch/engine/pkg_snapshot')
from customer_segmentation.numpy_engine import NumpyNetwork  # the current engine: its own BLAS limit of 1 thread
nn = NumpyNetwork.from_keras_file('/work/scratch/engine/model_snapshot/model.keras')
ts['current numpy_engine (BLAS 1, batches 65536)'] = []
for r in range(a.reps):
    t = time.perf_counter(); p = np.concatenate([nn(XC[i:i + 65536]) for i in range(0, a.n, 65536)])
    ts['current numpy_engine (BLAS 1, batches 65536)'].append(time.perf_counter() - t)
res = {k: round(float(np.median(v)), 3) for k, v in ts.items()}
res['loadavg'] = os.getloadavg()
print(json.dumps(res, indent=1))
