"Per-stage busy time of score_file's chunk computation, on one thread, summed over the chunks of the file (BLAS 1 thread)."
import sys, time, os, json; sys.path.insert(0, '/work/scratch/engine')
import numpy as np, pyarrow as pa, pyarrow.csv as pacsv, pyarrow.compute as pc, engine as E
E.skip_pandas_probe()
f = sys.argv[1]; ch = int(sys.argv[2]) if len(sys.argv) > 2 else 65536
sc = E.Scorer(E.load_params('/work/scratch/engine/scoring.npz'), threads=1)
header = open(f).readline().strip().split(',')
t = pacsv.read_csv(f, read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
                   convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=False))
cats = {b['columns'][i]: set(s['categories'][i]) for b in sc.blocks for s in b['steps'] if s['op'] == 'onehot' for i in range(len(b['columns']))}
labels = pa.array(list('ABCD'))
T = dict.fromkeys(['parse (dictionary-encode, numbers per distinct text)', 'checks (numbers, unseen)', 'ID hashes', 'tables (preprocessing of the distinct values)',
                   'gather inputs + forward (batches of 2048)', 'renormalise + argmax', 'append columns', 'write CSV (to memory)'], 0.0)
K = list(T)
with E.blas_threads(1):
    for rep in range(2):
        T = dict.fromkeys(K, 0.0)
        for i in range(0, t.num_rows, ch):
            s = t.slice(i, ch); c = [time.perf_counter()]
            cols = E.read_columns(s, sc.columns, sc.numeric); c.append(time.perf_counter())
            E.chunk_checks(cols, sc, cats, i); c.append(time.perf_counter())
            E.id_hashes(s['ID']); c.append(time.perf_counter())
            sc.tables({k: v for k, v in cols.items()}); c.append(time.perf_counter())
            p = sc.score_columns(cols); c.append(time.perf_counter())
            p64 = p.astype(np.float64); p = (p64 / p64.sum(1, keepdims=True)).astype(np.float32); best = p.argmax(1); c.append(time.perf_counter())
            o = s.append_column('Segmentation', pc.take(labels, pa.array(best)))
            for j, k in enumerate('ABCD'): o = o.append_column(f'prob_{k}', pa.array(p[:, j]))
            c.append(time.perf_counter())
            buf = pa.BufferOutputStream(); pacsv.write_csv(o, buf, pacsv.WriteOptions(include_header=False, quoting_style='none')); c.append(time.perf_counter())
            for k, a, b in zip(K, c, c[1:]): T[k] += b - a
print(json.dumps({**{k: round(v, 3) for k, v in T.items()}, 'total': round(sum(T.values()), 3), 'chunk_rows': ch, 'loadavg': os.getloadavg()}, indent=1))
