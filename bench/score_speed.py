"""Benchmark of issue #13's goals (not a test): `custseg score` next to a pandas process that only reads the same file
and writes it back, both measured in the same run, each goal a ratio of their medians.

    .venv/bin/python bench/score_speed.py                          # cold, 10^6 and 10^7 rows, then the agreement (many minutes)
    .venv/bin/python bench/score_speed.py --skip-1e7 --rounds-1e6 2
    .venv/bin/python bench/score_speed.py --quick --skip-agreement --out bench/out/quick.json   # a smoke run (under a minute)

The goals, each against the pandas process `python -c "import pandas as pd; pd.read_csv(IN).to_csv(OUT, index=False)"`
(the same interpreter) on the same file:
 1. cold: `custseg score dataset/new_customers.csv` (2,627 customers) in at most 1.5x the pandas process;
 2. 1e6: 10^6 customers in at most 1.5x the pandas process;
 3. peak memory under 400 MB at 10^6 rows, and flat as the input grows: the peak at 10^7 rows at most 1.25x the peak at
    10^6 (1.25 is this script's reading of "flat"; the issue gives no figure);
 5. (issue #22) the prediction sets add at most 5% to the 10^6-row time: `custseg score` against `custseg score --no-sets` on the
    same file, judged by the median of the round-by-round ratios, which a machine whose speed drifts moves less than the ratio
    of medians (the 'sets' case; `--skip-sets` to leave it out);
 4. the scores within 1e-6 of the training-time pipeline on every row of train.csv, new_customers.csv and the test
    fixtures the reference accepts (bench/agreement.py; it runs last, in a child process, so that importing TensorFlow
    touches no timing; `--skip-agreement` to leave it out).

How: every measurement is a fresh child process (`subprocess.Popen`), timed by the wall clock from its start to its exit
(imports, model load, reading, scoring, writing, drift report: everything), its peak memory its own maximum resident size
(`os.wait4`'s ru_maxrss for that child alone; MB here = 2^20 bytes). `custseg score IN -o OUT` runs with its default
options, so it writes its drift report too; each run writes into a fresh temporary folder in bench/out/, removed after it.
In each round both contenders run, pandas first in even rounds and custseg first in odd ones; the ratios compare
medians (rounds: 7 cold, 3 at 10^6, 1 at 10^7). Each input is read once before its case, so that both find it in the page
cache. The 10^6 and 10^7 inputs are `make_input`'s synthetic customers (generated once, in a child process, and cached
in bench/out/, git-ignored: about 60 bytes a row, so the 10^7 case needs about 2 GB free there while it runs, and generating it takes some GB of memory).

The results go to results/score_speed.json (written atomically; `--out` for another file) with the machine: cores, load
average before and after, Python, pandas, numpy and pyarrow versions, the git commit. Nothing is asserted about the times.
"""
from __future__ import annotations
import argparse, csv, json, os, platform, shutil, statistics, subprocess, sys, tempfile, time
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT/'bench'/'out'
RESULTS = ROOT/'results'/'score_speed.json'
RATIO_LIMIT, PEAK_LIMIT_MB, GROWTH_LIMIT, AGREEMENT_LIMIT = 1.5, 400, 1.25, 1e-6  # the goals (the growth: see above)
SETS_LIMIT = 1.05  # issue #22: the prediction sets' cost at 10^6 rows, against the same run without them
ROUNDS = {'cold': 7, '1e6': 3, 'sets': 3, '1e7': 1}
QUICK_ROUNDS = 3
SIZES = {'1e6': 10**6, '1e7': 10**7}
BYTES_PER_ROW = 60  # of make_input's CSV, for the free-space check


# --- inputs -------------------------------------------------------------------------------------------------------

def input_path(n:int, seed:int=0)->Path:
    "Where `make_input` caches its `n` customers."
    return OUT/f'customers_{n}_{seed}.csv'


def make_input(n:int, seed:int=0)->Path:
    "A CSV of `n` synthetic customers following the data schema (cached in bench/out/)."
    import numpy as np, pandas as pd, pyarrow as pa, pyarrow.csv as pacsv
    from customer_segmentation.data import CATEGORY_VALUES, FEATURES, ID_COL
    path = input_path(n, seed)
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


def synthetic_input(n:int)->Path:
    "`make_input(n)`, generated in a child process when not cached (it takes gigabytes at 10^7 rows, returned at its exit)."
    path = input_path(n)
    if not path.exists():
        print(f'generating {n:,} synthetic customers into {path.relative_to(ROOT)} ...', flush=True)
        code = f'import sys; sys.path.insert(0, {str(ROOT/"bench")!r}); from score_speed import make_input; make_input({n})'
        subprocess.run([sys.executable, '-c', code], check=True, cwd=ROOT)
    return path


def cold_input()->Path:
    "dataset/new_customers.csv, fetched first if it is missing."
    path = ROOT/'dataset'/'new_customers.csv'
    if not path.exists():
        from customer_segmentation.fetch import fetch_data
        fetch_data()
    return path


def count_rows(path:Path)->int:
    "Data rows of a CSV (quoted line breaks counted right)."
    with open(path, newline='', encoding='utf-8-sig') as f: return sum(1 for _ in csv.reader(f)) - 1


def warm_cache(path:Path):
    "Read `path` once, so that both contenders find it in the page cache."
    with open(path, 'rb') as f:
        while f.read(1 << 23): pass


# --- the contenders: fresh child processes ------------------------------------------------------------------------

def custseg_script()->Path:
    "The `custseg` script beside this interpreter."
    return Path(sys.executable).with_name('custseg')


def command(who:str, inp:Path, out:Path)->list:
    "The command line of contender `who` ('pandas' or 'custseg') reading `inp` and writing `out`."
    if who == 'pandas': return [sys.executable, '-c', f'import pandas as pd; pd.read_csv({str(inp)!r}).to_csv({str(out)!r}, index=False)']
    return [str(custseg_script()), 'score', str(inp), '-o', str(out), *(['--no-sets'] if who == 'no sets' else [])]


def timed(cmd:list, log:Path)->tuple:
    "(wall-clock seconds, peak MB) of `cmd` run to its exit, its output into `log`; the peak is the child's own ru_maxrss."
    with open(log, 'wb') as f:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    if p.returncode: raise RuntimeError(f"{' '.join(cmd)} failed (exit {p.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
    return seconds, usage.ru_maxrss / 1024  # KiB on Linux


def run_once(who:str, inp:Path)->tuple:
    "One measurement of contender `who` on `inp`, writing into a temporary folder in bench/out/ that is removed after it."
    with tempfile.TemporaryDirectory(dir=OUT, prefix=f'run-{who}-') as d:
        return timed(command(who, inp, Path(d)/'scored.csv'), Path(d)/'log.txt')


def summary(seconds:list, peaks:list)->dict:
    "The record of one contender in one case."
    return {'seconds': seconds, 'median': statistics.median(seconds), 'peak_mb': peaks, 'peak_mb_median': statistics.median(peaks)}


def measure(case:str, inp:Path, rows:int, rounds:int)->dict:
    "`rounds` interleaved rounds of both contenders on `inp` (the baseline first in even rounds); medians and their ratio."
    warm_cache(inp)
    base = 'no sets' if case == 'sets' else 'pandas'  # the 'sets' case: custseg against itself without the prediction sets
    got = {base: ([], []), 'custseg': ([], [])}
    load = os.getloadavg()[0]
    for i in range(rounds):
        for who in ((base, 'custseg') if i % 2 == 0 else ('custseg', base)):
            s, mb = run_once(who, inp)
            got[who][0].append(s); got[who][1].append(mb)
        print(f"  {case} round {i + 1}/{rounds}: {base} {got[base][0][-1]:.2f} s {got[base][1][-1]:.0f} MB, "
              f"custseg {got['custseg'][0][-1]:.2f} s {got['custseg'][1][-1]:.0f} MB", flush=True)
    r = {'case': case, 'rows': rows, 'bytes': inp.stat().st_size, 'rounds': rounds, 'input': str(inp.relative_to(ROOT)),
         'load1_before': load, 'baseline': base, 'pandas': summary(*got[base]), 'custseg': summary(*got['custseg'])}
    paired = statistics.median(a / b for a, b in zip(got['custseg'][0], got[base][0]))  # round by round: robust to a machine whose speed drifts
    return {**r, 'ratio': r['custseg']['median'] / r['pandas']['median'], 'ratio_paired': paired, 'rows_per_s': rows / r['custseg']['median']}


# --- the run ------------------------------------------------------------------------------------------------------

def git_commit()->str|None:
    "The short commit of the checkout, with '+changes' when the working tree differs from it; None if not a checkout."
    try:
        head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True)
        if head.returncode: return None
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError: return None
    return head.stdout.strip() + ('+changes' if dirty else '')


def machine()->dict:
    "Cores, load average, versions and commit of this run."
    import numpy, pandas, pyarrow
    return {'cores': os.cpu_count(), 'load_before': list(os.getloadavg()), 'started': datetime.now().isoformat(timespec='seconds'),
            'platform': platform.platform(), 'python': platform.python_version(), 'pandas': pandas.__version__,
            'numpy': numpy.__version__, 'pyarrow': pyarrow.__version__, 'commit': git_commit()}


def agreement_module():
    "bench/agreement.py (which imports TensorFlow only when it runs)."
    if str(ROOT/'bench') not in sys.path: sys.path.insert(0, str(ROOT/'bench'))
    import agreement
    return agreement


def agreement_in_child()->dict:
    "bench/agreement.py's `run_agreement` in a fresh (spawned) process, so that TensorFlow never loads into this one."
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn')) as ex: return ex.submit(agreement_module().run_agreement).result()


def goal(value, limit, ok)->dict:
    "A goal's record: its value, its limit and whether it is met (None when not measured)."
    return {'value': value, 'limit': limit, 'met': None if value is None else bool(ok(value, limit))}


def goals(cases:list, agreement:dict|None)->dict:
    "The issue's goals from the measured cases and the agreement."
    by = {c['case']: c for c in cases}
    peak = {k: by[k]['custseg']['peak_mb_median'] if k in by else None for k in ('1e6', '1e7')}
    le, lt = (lambda v, l: v <= l), (lambda v, l: v < l)
    g = {'cold_ratio': goal(by['cold']['ratio'] if 'cold' in by else None, RATIO_LIMIT, le),
         'ratio_1e6': goal(by['1e6']['ratio'] if '1e6' in by else None, RATIO_LIMIT, le),
         'peak_mb_1e6': goal(peak['1e6'], PEAK_LIMIT_MB, lt),
         'peak_growth_1e7': goal(peak['1e7'] / peak['1e6'] if None not in peak.values() else None, GROWTH_LIMIT, le),
         'agreement_max_diff': goal(agreement and agreement['worst'], AGREEMENT_LIMIT, le),
         'sets_overhead_1e6': goal(by['sets']['ratio_paired'] if 'sets' in by else None, SETS_LIMIT, le)}
    if agreement:  # a file only one side refuses fails the goal whatever the differences
        g['agreement_max_diff'].update(met=agreement['met'], disagreements=agreement['disagreements'])
    return g


def yes(met)->str:
    "A goal's verdict as printed."
    return '-' if met is None else 'yes' if met else 'NO'


def table(res:dict)->str:
    "The cases and goals as a Markdown table."
    g = res['goals']
    lines = ['| case | rows | pandas s | custseg s | ratio | goal | peak MB pandas / custseg | memory goal | met | custseg rows/s |',
             '|---|---:|---:|---:|---:|---|---:|---|---|---:|']
    for c in res['cases']:
        p, s = c['pandas'], c['custseg']
        if c['case'] == 'cold': speed, mem, met = '≤ 1.5x', '-', [g['cold_ratio']['met']]
        elif c['case'] == '1e6': speed, mem, met = '≤ 1.5x', f"< {PEAK_LIMIT_MB} MB", [g['ratio_1e6']['met'], g['peak_mb_1e6']['met']]
        elif c['case'] == 'sets': speed, mem, met = f"≤ {SETS_LIMIT}x of --no-sets (paired: {c['ratio_paired']:.2f}x)", '-', [g['sets_overhead_1e6']['met']]
        else:
            v = g['peak_growth_1e7']['value']
            speed, mem, met = '-', f"growth {'-' if v is None else f'{v:.2f}x'} (≤ {GROWTH_LIMIT}x)", [g['peak_growth_1e7']['met']]
        met = None if None in met else all(met)
        lines.append(f"| {c['case']} | {c['rows']:,} | {p['median']:.2f} | {s['median']:.2f} | {c['ratio']:.2f}x | {speed} | "
                     f"{p['peak_mb_median']:,.0f} / {s['peak_mb_median']:,.0f} | {mem} | {yes(met)} | {c['rows_per_s']:,.0f} |")
    a, ga = res['agreement'], g['agreement_max_diff']
    if a: lines.append(f"| agreement | {a['rows_compared']:,} | | | | | | max diff {a['worst']:.1e} (≤ {AGREEMENT_LIMIT:g}), "
                       f"{len(a['disagreements'])} disagreement(s) | {yes(ga['met'])} | |")
    return '\n'.join(lines)


def parse_checked(argv)->argparse.Namespace:
    "The arguments, refused (exit 2 with a message) before any compute when they cannot work; defaults filled in."
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--rounds-cold', type=int, help=f"rounds of the cold case (default {ROUNDS['cold']}; {QUICK_ROUNDS} with --quick)")
    ap.add_argument('--rounds-1e6', type=int, help=f"rounds at 10^6 rows (default {ROUNDS['1e6']})")
    ap.add_argument('--rounds-1e7', type=int, help=f"rounds at 10^7 rows (default {ROUNDS['1e7']})")
    ap.add_argument('--skip-1e7', action='store_true', help='leave out the 10^7-row case (and the memory growth)')
    ap.add_argument('--rounds-sets', type=int, help=f"rounds of the sets case at 10^6 rows (default {ROUNDS['sets']})")
    ap.add_argument('--skip-sets', action='store_true', help="leave out goal 5, the prediction sets' cost")
    ap.add_argument('--skip-agreement', action='store_true', help="leave out goal 4, bench/agreement.py's comparison")
    ap.add_argument('--quick', action='store_true', help=f'a smoke run: the cold case only, {QUICK_ROUNDS} rounds')
    ap.add_argument('--out', type=Path, default=RESULTS, help='JSON file for the results (default: results/score_speed.json)')
    a = ap.parse_args(argv)
    for case in ROUNDS:
        v = getattr(a, f'rounds_{case}')
        if v is not None and v < 1: ap.error(f'--rounds-{case}: at least 1, got {v}')
        if a.quick and v is not None and case != 'cold': ap.error(f'--rounds-{case}: --quick measures the cold case only')
    a.rounds = {'cold': a.rounds_cold or (QUICK_ROUNDS if a.quick else ROUNDS['cold'])}
    if not a.quick: a.rounds['1e6'] = a.rounds_1e6 or ROUNDS['1e6']
    if not (a.quick or a.skip_sets): a.rounds['sets'] = a.rounds_sets or ROUNDS['sets']
    if not (a.quick or a.skip_1e7): a.rounds['1e7'] = a.rounds_1e7 or ROUNDS['1e7']
    folder = a.out.resolve().parent
    if not folder.is_dir(): ap.error(f'--out: folder {folder} does not exist; create it or write elsewhere')
    if not custseg_script().is_file(): ap.error(f'{custseg_script()}: no custseg script beside this Python; install the package (make setup)')
    OUT.mkdir(parents=True, exist_ok=True)
    sizes = [SIZES['1e6' if c == 'sets' else c] for c in a.rounds if c in SIZES or c == 'sets']
    need = BYTES_PER_ROW * (sum(n for n in sizes if not input_path(n).exists()) + 3 * max(sizes, default=0))  # inputs to make; one run's outputs
    if shutil.disk_usage(OUT).free < need:
        ap.error(f'{OUT}: {shutil.disk_usage(OUT).free / 1e9:.1f} GB free, about {need / 1e9:.1f} GB needed; free some or --skip-1e7')
    return a


def main(argv=None):
    "Measure the cases, then the agreement; print the table and write the JSON."
    a = parse_checked(argv)
    res = {'measured': date.today().isoformat(), 'machine': machine(),
           'commands': {'pandas': command('pandas', Path('IN'), Path('OUT')), 'custseg': ['custseg', 'score', 'IN', '-o', 'OUT']},
           'cases': [], 'goals': None, 'agreement': None}
    print(f"machine: {res['machine']['cores']} cores, load average {', '.join(f'{x:.2f}' for x in res['machine']['load_before'])}; "
          f"commit {res['machine']['commit']}", flush=True)
    for case, rounds in a.rounds.items():
        n = SIZES['1e6'] if case == 'sets' else SIZES.get(case)
        inp = cold_input() if case == 'cold' else synthetic_input(n)
        rows = count_rows(inp) if case == 'cold' else n
        print(f'{case}: {inp.relative_to(ROOT)}, {rows:,} rows, {rounds} round(s)', flush=True)
        res['cases'].append(measure(case, inp, rows, rounds))
    res['machine'].update(load_after=list(os.getloadavg()), finished=datetime.now().isoformat(timespec='seconds'))
    if not a.skip_agreement:
        print('agreement with the training-time pipeline (bench/agreement.py) ...', flush=True)
        res['agreement'] = agreement_in_child()
        print(agreement_module().report(res['agreement']))
    res['goals'] = goals(res['cases'], res['agreement'])
    print(f"load average after the timings {', '.join(f'{x:.2f}' for x in res['machine']['load_after'])}\n\n{table(res)}")
    from customer_segmentation.files import write_json
    write_json(res, a.out)
    print(f'\nwritten: {a.out}')


if __name__ == '__main__':
    main()
