"""In-process stage timings at 10^6 rows (medians of --reps): Arrow read, transform, forward variants, Arrow write, and the
pipelined score_file. `python bench_stages.py big_1000000.csv [--reps 3] [--only forward|transform|io|pipeline]`."""
import argparse, os, sys, time, json
from pathlib import Path
HERE = Path(__file__).parent; sys.path.insert(0, str(HERE))
import numpy as np, pyarrow as pa, pyarrow.csv as pacsv, pyarrow.compute as pc
import engine as E

ap = argparse.ArgumentParser(); ap.add_argument('csv'); ap.add_argument('--reps', type=int, default=3)
ap.add_argument('--only', nargs='*', default=['io', 'transform', 'forward', 'pipeline'])
a = ap.parse_args()
def med(f, reps=a.reps):
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); r = f(); ts.append(time.perf_counter() - t)
    return float(np.median(ts)), r
res = {'load_before': os.getloadavg()}
params = E.load_params(HERE/'scoring.npz')
header = open(a.csv).readline().strip().split(',')
ro = pacsv.ReadOptions(column_names=header, skip_rows=1)
co = pacsv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=False, quoted_strings_can_be_null=False)
read = lambda: pacsv.read_csv(a.csv, read_options=ro, convert_options=co)
res['arrow_read'], t = med(read)
n = t.num_rows
sc = E.Scorer(params, threads=2)
if 'transform' in a.only or 'forward' in a.only or 'io' in a.only:
    with E.blas_threads(1):
        res['transform'], X = med(lambda: sc.transform(t))
    # the pieces of the transform
    cols = {}
    res['transform_parse_dictionary'], cols = med(lambda: E.read_columns(t, sc.columns, sc.numeric))
    def parse_cast():  # the current engine's way: missing markers over the rows, then a cast of every cell
        out = {}
        for c in sc.numeric:
            col = t[c].combine_chunks()
            col = pc.if_else(pc.is_in(col, value_set=E._na()), pa.scalar(None, pa.string()), col)
            out[c] = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        return out
    res['numeric_parse_cast_all_rows'], _ = med(parse_cast)
    res['numeric_parse_dictionary'], _ = med(lambda: {c: E.parse_numbers(t[c]) for c in sc.numeric})
    res['transform_from_parsed'], _ = med(lambda: sc.transform(cols))
    s1 = E.Scorer(params, threads=1)
    with E.blas_threads(1): res['score_columns_1_thread (tables + batched gather + forward)'], _ = med(lambda: s1.score_columns(cols))
    # two threads, half the rows each
    from concurrent.futures import ThreadPoolExecutor
    pool = ThreadPoolExecutor(2)
    def transform2():
        h = n // 2
        parts = list(pool.map(lambda s: sc.transform(t.slice(*s)), [(0, h), (h, n - h)]))
        return np.concatenate(parts)
    res['transform_2_threads'], X2 = med(transform2)
    assert np.array_equal(X, X2)
if 'forward' in a.only:
    for name, kw, blas in [('forward_blas1_py1_b2048', dict(threads=1, batch=2048), 1),
                           ('forward_blas2_py1_b65536', dict(threads=1, batch=65536), 2),
                           ('forward_blas1_py2_b2048', dict(threads=2, batch=2048), 1)]:
        s = E.Scorer(params, **kw)
        with E.blas_threads(blas): res[name], p = med(lambda: s.forward(X))
    # the current engine's forward (numpy_engine.forward on the parsed graph, BLAS 1 thread, batches of 65536)
    sys.path.insert(0, str(HERE/'pkg_snapshot'))
    from customer_segmentation.numpy_engine import NumpyNetwork
    nn = NumpyNetwork.from_keras_file(HERE/'model_snapshot'/'model.keras')
    res['forward_current_numpy_engine_b65536'], pc_ = med(lambda: np.concatenate([nn(X[i:i + 65536]) for i in range(0, n, 65536)]))
    res['forward_fast_vs_current_max_diff'] = float(np.max(np.abs(p - pc_)))
if 'io' in a.only:
    with E.blas_threads(1): p = sc.forward(X)
    lab = pc.take(pa.array(list('ABCD')), pa.array(p.argmax(1)))
    out = t.append_column('Segmentation', lab)
    for i, c in enumerate('ABCD'): out = out.append_column(f'prob_{c}', pa.array(p[:, i]))
    def write():
        with open(HERE/'out_stage.csv', 'wb') as f: pacsv.write_csv(out, f, pacsv.WriteOptions(include_header=True, quoting_style='needed'))
    res['arrow_write'], _ = med(write)
    os.unlink(HERE/'out_stage.csv')
if 'pipeline' in a.only:
    for chunk in (65536,):
        def job():
            tm = {}
            with E.blas_threads(1): r = E.score_file(a.csv, HERE/'out_pipe.csv', sc, chunk_rows=chunk, timings=tm)
            return tm
        res[f'score_file_chunk{chunk}'], tm = med(job)
        res[f'score_file_chunk{chunk}_busy'] = {k: round(v, 3) for k, v in tm.items()}
    os.unlink(HERE/'out_pipe.csv')
res['rows'] = n
res['load_after'] = os.getloadavg()
print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}, indent=1))
