"""Benchmark of batch scoring (not a test): rows/second and peak memory of `deploy.score_csv`, end to end
(read CSV, preprocess, predict, write CSV), next to the original tool's approach measured in the same run.

    .venv/bin/python bench/score_speed.py                       # sizes 10^4, 10^5, 10^6; baseline limited to 3 minutes
    .venv/bin/python bench/score_speed.py --sizes 10000 --baseline-limit 60 --out bench/out/quick.json

Inputs are generated from the data schema (`data.CATEGORY_VALUES`, numeric ranges and missing-value rates like the real
files) into bench/out/ (git-ignored). Every measurement runs in a fresh child process; its peak memory is the child's
`ru_maxrss` (imports included), its time is the scoring call alone (imports excluded; model loading included), and the
time its imports took is recorded beside it. `score_csv` is measured with each engine: numpy (the default) and Keras.

The measurements go to results/score_speed.json (written atomically; `--out` for another file), with the machine's
core count and load average, so that the Deployment notebook renders its table from the run rather than from typed figures.

The baseline is the original approach: label encoders and a KNNImputer fitted on the incoming file, then a Keras network
of the same shape (9 label-encoded inputs, the saved model's hidden widths, softmax) predicting with batch size 32.
It runs with a time limit; the speed-up is reported at the largest size it finishes.
"""
from __future__ import annotations
import argparse, json, os, resource, subprocess, sys, time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT/'bench'/'out'
RESULTS = ROOT/'results'/'score_speed.json'


# --- inputs -------------------------------------------------------------------------------------------------------

def make_input(n:int, seed:int=0)->Path:
    "A CSV of `n` synthetic customers following the data schema (cached in bench/out/)."
    import numpy as np, pandas as pd, pyarrow as pa, pyarrow.csv as pacsv
    from customer_segmentation.data import CATEGORY_VALUES, FEATURES, ID_COL
    path = OUT/f'customers_{n}_{seed}.csv'
    if path.exists(): return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    missing = {'Ever_Married': .02, 'Graduated': .01, 'Profession': .015, 'Work_Experience': .1, 'Family_Size': .04, 'Var_1': .01}
    cols = {ID_COL: (np.arange(n) + 10_000_000).astype(str)}
    for c in FEATURES:
        if c in CATEGORY_VALUES: v = np.asarray(CATEGORY_VALUES[c], dtype=object)[rng.integers(0, len(CATEGORY_VALUES[c]), n)]
        elif c == 'Age': v = rng.integers(18, 90, n).astype(str)
        elif c == 'Work_Experience': v = np.char.add(rng.integers(0, 15, n).astype(str), '.0')
        else: v = np.char.add(rng.integers(1, 10, n).astype(str), '.0')
        v = np.asarray(v, dtype=object)
        v[rng.random(n) < missing.get(c, 0)] = ''
        cols[c] = v
    from customer_segmentation.files import atomic_write
    t = pa.table({k: pa.array(list(v), pa.string()) for k, v in cols.items()})
    with atomic_write(path, 'wb') as f:
        f.write((','.join(t.column_names) + '\n').encode())
        pacsv.write_csv(t, f, pacsv.WriteOptions(quoting_style='none', include_header=False))
    return path


# --- the two contenders, each run in a child process -------------------------------------------------------------

def child_ours(inp:str, out:str, engine:str)->dict:
    import warnings
    warnings.simplefilter('ignore')
    t = time.perf_counter()
    from customer_segmentation.deploy import load_scoring_model, score_csv
    from customer_segmentation.files import project_path
    import customer_segmentation.preprocess, h5py, threadpoolctl  # imported before the clock starts, as the baseline's are
    if engine == 'keras': import customer_segmentation.model
    t_import = time.perf_counter() - t
    t = time.perf_counter()
    model = load_scoring_model(project_path('saved_model'), engine=engine)
    s = score_csv(inp, out, model=model, progress=False)
    return {'rows': s.rows, 'seconds': time.perf_counter() - t, 'import_seconds': t_import, 'model': type(model).__name__}


def child_baseline(inp:str, out:str)->dict:
    "The original tool: label encoders + KNNImputer fitted on the incoming data, predict with batch size 32."
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    import warnings
    warnings.simplefilter('ignore')
    import numpy as np, pandas as pd, keras
    from sklearn.impute import KNNImputer
    from sklearn.preprocessing import LabelEncoder
    from customer_segmentation.data import CATEGORICAL_FEATURES, CLASSES, FEATURES, project_path
    widths = json.loads(project_path('saved_model', 'metadata.json').read_text())['config']['widths']
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((len(FEATURES),)), *[keras.layers.Dense(w, activation='relu') for w in widths],
                            keras.layers.Dense(len(CLASSES), activation='softmax')])
    t = time.perf_counter()
    df = pd.read_csv(inp)
    t_read = time.perf_counter() - t
    X = df[list(FEATURES)].copy()
    for c in CATEGORICAL_FEATURES: X[c] = LabelEncoder().fit_transform(X[c].astype(str))  # fitted on the incoming file
    X = KNNImputer().fit_transform(X.to_numpy(dtype=float))  # fitted on the incoming file
    p = net.predict(X.astype('float32'), batch_size=32, verbose=0)
    t_model = time.perf_counter() - t - t_read
    df['Segmentation'] = np.asarray(CLASSES)[p.argmax(1)]
    for i, c in enumerate(CLASSES): df[f'prob_{c}'] = p[:, i]
    t2 = time.perf_counter()
    df.to_csv(out, index=False)
    t_write = time.perf_counter() - t2
    return {'rows': len(df), 'seconds': time.perf_counter() - t, 'seconds_without_io': t_model, 'model': 'keras batch 32'}


def run_child(kind:str, inp:Path, limit:float|None, engine:str='auto')->dict|None:
    "Run one measurement in a fresh process; None if it exceeds `limit` seconds."
    out = OUT/f'{inp.stem}.{kind}.scored.csv'
    cmd = [sys.executable, __file__, '--child', kind, str(inp), str(out), '--engine', engine]
    try: r = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, cwd=ROOT)
    except subprocess.TimeoutExpired: return None
    finally:
        if out.exists(): out.unlink()
    if r.returncode != 0: raise RuntimeError(f'{kind} child failed:\n{r.stderr[-3000:]}')
    return json.loads(r.stdout.strip().splitlines()[-1])


def measure(n:int, engines:list, baseline:bool, limit:float)->dict:
    "One size: `score_csv` with each engine, then the baseline unless told not to (None in 'baseline' if it ran out of time)."
    inp = make_input(n)
    r = {'rows': n, 'load1': os.getloadavg()[0]}
    for engine in engines:
        ours = run_child('ours', inp, None, engine)
        r['numpy' if engine == 'auto' else engine] = {'rows_s': ours['rows'] / ours['seconds'], 'seconds': ours['seconds'],
                                                      'import_seconds': ours['import_seconds'], 'peak_mb': ours['peak_mb'],
                                                      'model': ours['model']}
    if baseline:
        b = run_child('baseline', inp, limit)
        r['baseline'] = None if b is None else {'rows_s': b['rows'] / b['seconds'], 'rows_s_no_io': b['rows'] / b['seconds_without_io'],
                                                'seconds': b['seconds'], 'peak_mb': b['peak_mb']}
    return r


def table(res:dict)->str:
    "The measurements as a Markdown table (the Deployment notebook renders its own from the same file)."
    lines = ['| rows | score_csv rows/s | peak MB | Keras engine rows/s | peak MB | baseline rows/s (end to end / without CSV I/O) | peak MB | load avg |',
             '|---:|---:|---:|---:|---:|---:|---:|---:|']
    for r in res['rows']:
        n, k, b = r['numpy'], r.get('keras'), r.get('baseline', 'not run')
        k = (f"{k['rows_s']:,.0f}", f"{k['peak_mb']:,.0f}") if k else ('not run', '-')
        b = ((f"{b['rows_s']:,.0f} / {b['rows_s_no_io']:,.0f}", f"{b['peak_mb']:,.0f}") if isinstance(b, dict) else
             (b, '-') if b == 'not run' else (f"> {res['baseline_limit_s']:.0f} s, stopped", '-'))
        lines.append(f"| {r['rows']:,} | {n['rows_s']:,.0f} | {n['peak_mb']:,.0f} | {k[0]} | {k[1]} | {b[0]} | {b[1]} | {r['load1']:.2f} |")
    return '\n'.join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--sizes', type=int, nargs='+', default=[10_000, 100_000, 1_000_000])
    ap.add_argument('--baseline-limit', type=float, default=180, help='seconds the baseline may take per size (default 180)')
    ap.add_argument('--no-baseline', action='store_true')
    ap.add_argument('--engines', nargs='+', default=['auto', 'keras'], choices=['auto', 'keras'],
                    help='scoring engines to measure (default: both; auto is numpy)')
    ap.add_argument('--engine', default='auto', choices=['auto', 'keras'], help=argparse.SUPPRESS)  # of a child
    ap.add_argument('--out', type=Path, default=RESULTS, help='JSON file for the measurements (default: results/score_speed.json)')
    ap.add_argument('--child', nargs=3, metavar=('KIND', 'INPUT', 'OUTPUT'), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        kind, inp, out = a.child
        res = child_ours(inp, out, a.engine) if kind == 'ours' else child_baseline(inp, out)
        res['peak_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return
    from customer_segmentation.files import atomic_write
    meta = json.loads((ROOT/'saved_model'/'metadata.json').read_text())['config']
    res = {'measured': date.today().isoformat(), 'cores': os.cpu_count(), 'load_before': list(os.getloadavg()),
           'baseline_limit_s': a.baseline_limit, 'network': {'widths': meta['widths'], 'seed_copies': meta.get('n_seeds', 1)},
           'rows': []}
    print(f"machine: {res['cores']} cores; load average before the run {', '.join(f'{x:.2f}' for x in res['load_before'])}")
    baseline = not a.no_baseline
    for n in a.sizes:
        r = measure(n, a.engines, baseline, a.baseline_limit)
        baseline = baseline and r.get('baseline') is not None  # larger sizes would take longer still
        res['rows'].append(r)
        print(json.dumps(r), flush=True)
    print('\n' + table(res))
    with atomic_write(a.out) as f: f.write(json.dumps(res, indent=1) + '\n')
    print(f'\nwritten: {a.out}')


if __name__ == '__main__':
    main()
