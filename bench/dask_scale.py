"""Benchmark of scoring partitions on Dask (not a test): 10^7 generated customers in 20 Parquet partitions, scored on a local
cluster of 1 and then 2 worker processes (one thread each), on this machine. Prints rows/s, the scaling efficiency
(throughput with 2 workers / (2 x throughput with 1)) and each worker's peak memory, and writes them to
results/dask_scale.json (atomically; `--out` for another file).

    .venv/bin/python bench/dask_scale.py [--rows 10000000] [--partitions 20] [--workers 1 2] [--out FILE]

Each timing covers the scoring alone (`partitions.run_partitions`: the model sent to the workers, every partition read,
scored and written); the cluster is started before it and closed after. A worker's peak memory is its process's maximum
resident size after its tasks; on Linux that counts from its parent's size at the worker's start, which is printed beside it.
"""
from __future__ import annotations
import argparse, json, os, resource, shutil, sys, tempfile, time, warnings
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT/'bench'/'out'
sys.path.insert(0, str(ROOT/'bench'))


def partitions(rows:int, n:int)->Path:
    "A folder of `n` Parquet partitions holding the benchmark's `rows` generated customers (cached in bench/out/), every column text."
    d = OUT/f'parts_{rows}_{n}'
    if d.is_dir() and len(list(d.glob('*.parquet'))) == n: return d
    import subprocess
    src = OUT/f'customers_{rows}_0.csv'
    if not src.exists(): subprocess.run([sys.executable, '-c', f'import sys; sys.path.insert(0, {str(ROOT/"bench")!r}); import score_speed; score_speed.make_input({rows})'], check=True)
    code = f"""
import pyarrow as pa, pyarrow.csv as pacsv, pyarrow.parquet as pq
from pathlib import Path
src, d, n, rows = Path({str(src)!r}), Path({str(d)!r}), {n}, {rows}
d.mkdir(parents=True, exist_ok=True)
names = src.open().readline().strip().split(',')
r = pacsv.open_csv(src, read_options=pacsv.ReadOptions(block_size=1 << 22), convert_options=pacsv.ConvertOptions(column_types={{c: pa.string() for c in names}}))
per, i, w, done = -(-rows // n), 0, None, 0
for b in r:
    while b.num_rows:
        if w is None: w = pq.ParquetWriter(d/f'part-{{i:04d}}.parquet', b.schema)
        take = min(b.num_rows, per - done)
        w.write_batch(b.slice(0, take)); b = b.slice(take); done += take
        if done == per: w.close(); w, done, i = None, 0, i + 1
if w is not None: w.close()
"""
    subprocess.run([sys.executable, '-c', code], check=True)  # in a child: this process stays small (see the docstring)
    return d


def measure(parts:list, workers:int, model_dir)->dict:
    "Rows/s and the workers' memory of scoring `parts` on a local cluster of `workers` processes."
    from customer_segmentation.partitions import dask_client, run_partitions
    with dask_client(workers=workers) as client:
        start = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        from customer_segmentation.scoring.engine import load_scoring_model
        model = load_scoring_model(model_dir)
        with tempfile.TemporaryDirectory(dir=OUT, prefix='dask-') as d, warnings.catch_warnings():
            warnings.simplefilter('ignore')
            t0 = time.perf_counter()
            results = run_partitions(parts, client, model, Path(d), threads=1)
            seconds = time.perf_counter() - t0
        peak = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    rows = sum(s.rows for s, _ in results)
    return {'workers': workers, 'rows': rows, 'seconds': seconds, 'rows_per_s': rows / seconds,
            'worker_peak_mb': sorted(peak.values()), 'worker_start_mb': sorted(start.values())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--rows', type=int, default=10**7)
    ap.add_argument('--partitions', type=int, default=20)
    ap.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    ap.add_argument('--out', default=str(ROOT/'results'/'dask_scale.json'))
    a = ap.parse_args(argv)
    if a.rows < a.partitions or a.partitions < 1: ap.error('--rows must be at least --partitions, which must be at least 1')
    if min(a.workers) < 1 or 1 not in a.workers: ap.error('--workers: positive counts, 1 among them (the baseline of the efficiency)')
    if not Path(a.out).parent.is_dir(): ap.error(f'--out: folder {Path(a.out).parent} does not exist')
    from customer_segmentation.partitions import list_partitions
    parts = list_partitions(partitions(a.rows, a.partitions))
    runs = [measure(parts, w, None) for w in a.workers]
    one = next(r for r in runs if r['workers'] == 1)
    for r in runs: r['efficiency'] = r['rows_per_s'] / (r['workers'] * one['rows_per_s'])
    res = {'measured': date.today().isoformat(), 'cores': os.cpu_count(), 'load_after': list(os.getloadavg()),
           'partitions': len(parts), 'rows': a.rows, 'runs': runs, 'goal_efficiency': 0.8}
    print(f"{a.rows:,} rows in {len(parts)} Parquet partitions, {os.cpu_count()} cores")
    print('| workers | seconds | rows/s | efficiency | peak MB per worker (at start) |\n|---:|---:|---:|---:|---|')
    for r in runs:
        print(f"| {r['workers']} | {r['seconds']:.1f} | {r['rows_per_s']:,.0f} | {r['efficiency']:.2f} | "
              f"{', '.join(f'{m:.0f}' for m in r['worker_peak_mb'])} ({', '.join(f'{m:.0f}' for m in r['worker_start_mb'])}) |")
    from customer_segmentation.files import write_json
    write_json(res, a.out)
    print(f'written: {a.out}')


if __name__ == '__main__': main()
