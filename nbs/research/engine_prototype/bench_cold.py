"""Whole-process wall times, interleaved rounds, medians: pandas read_csv+to_csv, the current `custseg score` (package
snapshot, numpy engine), and the prototype's fast_cli.py with and without skipping pyarrow's pandas probe.
python bench_cold.py INPUT [--rounds 5] [--skip-current]"""
import subprocess, sys, time, os, json, statistics, argparse
HERE = os.path.dirname(os.path.abspath(__file__))
PY = '/work/main/.venv/bin/python'
ap = argparse.ArgumentParser(); ap.add_argument('inp'); ap.add_argument('--rounds', type=int, default=5)
ap.add_argument('--skip', nargs='*', default=[]); a = ap.parse_args()
out = os.path.join(HERE, 'out_cold.csv')
env = {**os.environ, 'PYTHONPATH': os.path.join(HERE, 'pkg_snapshot'), 'TF_CPP_MIN_LOG_LEVEL': '3'}
cmds = {
  'pandas read_csv + to_csv': [PY, '-c', f'import pandas as pd; pd.read_csv({a.inp!r}).to_csv({out!r}, index=False)'],
  'current custseg score (numpy engine)': [PY, '-W', 'ignore', '-c', 'import sys; from customer_segmentation.cli import main; '
        f'sys.exit(main(["score", {a.inp!r}, "-o", {out!r}, "--model-dir", {os.path.join(HERE, "model_snapshot")!r}, "--no-progress"]))'],
  'fast_cli (prototype)': [PY, os.path.join(HERE, 'fast_cli.py'), a.inp, out],
  'fast_cli, pandas probe not skipped': [PY, os.path.join(HERE, 'fast_cli.py'), a.inp, out, '--no-skip-pandas'],
}
cmds = {k: v for k, v in cmds.items() if not any(s in k for s in a.skip)}
ts = {k: [] for k in cmds}; peak = {}
for r in range(a.rounds):
    for k, c in cmds.items():
        t = time.perf_counter()
        p = subprocess.run(['/usr/bin/time', '-f', '%M', *c], env=env, capture_output=True, text=True, cwd=HERE)
        ts[k].append(time.perf_counter() - t)
        if p.returncode: print(k, 'failed', p.stderr[-2000:]); sys.exit(1)
        peak[k] = max(peak.get(k, 0), int(p.stderr.strip().splitlines()[-1]) // 1024)
base = statistics.median(ts['pandas read_csv + to_csv'])
res = {k: {'median_s': round(statistics.median(v), 3), 'min_s': round(min(v), 3), 'ratio_to_pandas': round(statistics.median(v) / base, 2),
           'peak_rss_mb': peak[k]} for k, v in ts.items()}
res['loadavg_end'] = os.getloadavg(); res['input'] = a.inp; res['rounds'] = a.rounds
print(json.dumps(res, indent=1))
os.unlink(out)
