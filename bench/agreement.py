"""Goal 4 of issue #13 (a check run by the benchmark, not a test): do the scores `custseg score` writes agree with the
training-time pipeline, within 1e-6, on every row of every file the reference accepts?

    .venv/bin/python bench/agreement.py                      # every row of train.csv, new_customers.csv, tests/fixtures/*
    .venv/bin/python bench/agreement.py --sample 300 --json bench/out/agreement.json

The reference is the training-time pipeline: `model.load_model()` (the Keras network with the fitted scikit-learn
preprocessor) `.predict_proba` on `data.validate_customers(data.read_customers_csv(file), labeled=False)`. The fast side
is what `custseg score` writes: `deploy.score_csv(file, out)` with its default options into a temporary folder, the
prob_A..prob_D columns read back from the written CSV as float64. Rows are compared in file order: the IDs must be equal
and the largest absolute difference of the four probabilities is recorded.

Files: dataset/train.csv and dataset/new_customers.csv (their first N rows with `--sample N`), and every fixture in
tests/fixtures/ (.tsv read with a tab; semicolon.csv once as it is and once with ';'). A file with a Segmentation column
(train.csv, labeled.csv) is scored, on both sides, as a copy without it: scoring refuses that column because it adds it.
Where the reference refuses a file (CustomerDataError or ValueError), the fast side must refuse it too ('refused by both');
a file only one side refuses, different rows or IDs, or any other exception is a disagreement. The run fails (exit 1)
if the worst difference exceeds 1e-6 or there is any disagreement. `run_agreement` is what bench/score_speed.py calls.
TensorFlow is imported only inside `run_agreement`.
"""
from __future__ import annotations
import argparse, csv, json, os, sys, tempfile, warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 1e-6  # the tolerance on each probability
EXTRA_SEPS = {'semicolon.csv': ';'}  # fixtures scored a second time with this delimiter


def files(sample:int|None=None)->list:
    "The cases to compare: (name, path, delimiter, rows to keep or None)."
    data = [(f'dataset/{n}', ROOT/'dataset'/n, ',', sample) for n in ('train.csv', 'new_customers.csv')]
    fixtures = sorted(p for p in (ROOT/'tests'/'fixtures').iterdir() if p.suffix in ('.csv', '.tsv'))
    cases = [(f'tests/fixtures/{p.name}', p, '\t' if p.suffix == '.tsv' else ',', None) for p in fixtures]
    cases += [(f'tests/fixtures/{p.name} (sep {EXTRA_SEPS[p.name]})', p, EXTRA_SEPS[p.name], None) for p in fixtures if p.name in EXTRA_SEPS]
    return data + cases


def header_of(path:Path, sep:str)->list:
    "The first line of `path` split on `sep` ([] if it cannot be read)."
    try:
        with open(path, newline='', encoding='utf-8-sig') as f: return next(csv.reader(f, delimiter=sep), [])
    except (UnicodeDecodeError, csv.Error): return []


def prepared(path:Path, sep:str, keep:int|None, folder:Path)->Path:
    "`path` itself, or a copy in `folder` without the Segmentation column and with only the first `keep` rows."
    from customer_segmentation.data import TARGET
    header = header_of(path, sep)
    if keep is None and TARGET not in header: return path
    drop = header.index(TARGET) if TARGET in header else None
    copy = folder/path.name
    with open(path, newline='', encoding='utf-8-sig') as f, open(copy, 'w', newline='', encoding='utf-8') as g:
        w = csv.writer(g, delimiter=sep, lineterminator='\n')
        for i, row in enumerate(csv.reader(f, delimiter=sep)):
            if keep is not None and i > keep: break
            w.writerow(row if drop is None else row[:drop] + row[drop + 1:])
    return copy


def reference_scores(model, path:Path, sep:str)->tuple:
    "(IDs, probabilities) of the training-time pipeline: the fitted preprocessor and the Keras network."
    import pandas as pd
    from customer_segmentation.data import ID_COL, NA_VALUES, read_customers_csv, read_header, validate_customers
    if sep == ',': raw = read_customers_csv(path)
    else:  # read_customers_csv checks the header with a comma: the same reading with the file's delimiter
        read_header(path, sep)
        raw = pd.read_csv(path, sep=sep, dtype=str, na_values=list(NA_VALUES), keep_default_na=False)
    return raw[ID_COL], model.predict_proba(validate_customers(raw, str(path), labeled=False))


def custseg_scores(path:Path, sep:str, folder:Path)->tuple:
    "(IDs, probabilities) as `custseg score` writes them: `score_csv` with its defaults, the CSV read back as float64."
    import pandas as pd
    from customer_segmentation.data import ID_COL, NA_VALUES
    from customer_segmentation.deploy import PROB_COLS, score_csv
    out = folder/'scored.csv'
    score_csv(path, out, sep=sep, progress=False)
    df = pd.read_csv(out, usecols=[ID_COL, *PROB_COLS], dtype={ID_COL: str}, na_values=list(NA_VALUES),
                     keep_default_na=False, float_precision='round_trip')
    return df[ID_COL], df[list(PROB_COLS)].to_numpy(dtype='float64')


def attempt(f, *args)->tuple:
    "(result, None) or (None, (kind, message)): kind 'refused' for CustomerDataError/ValueError, 'error' for anything else."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # unseen categories, duplicate IDs, drift: reported by the tools, not here
            return f(*args), None
    except ValueError as e: return None, ('refused', f'{type(e).__name__}: {str(e)[:300]}')  # CustomerDataError is a ValueError
    except Exception as e: return None, ('error', f'{type(e).__name__}: {str(e)[:300]}')


def compare(ref:tuple, fast:tuple)->dict:
    "Rows, max abs difference and the status of two (IDs, probabilities) pairs compared row by row."
    import numpy as np
    (ids_r, p_r), (ids_f, p_f) = ref, fast
    r = {'rows': len(ids_r), 'rows_custseg': len(ids_f)}
    if len(ids_r) != len(ids_f): return {**r, 'max_diff': None, 'status': 'disagreement: different row counts', 'ok': False}
    a, b = ids_r.fillna('<missing>').to_numpy(str), ids_f.fillna('<missing>').to_numpy(str)
    if (bad := np.flatnonzero(a != b)).size:
        return {**r, 'max_diff': None, 'ok': False, 'status': f'disagreement: IDs differ from row {bad[0] + 1} ({a[bad[0]]!r} vs {b[bad[0]]!r})'}
    d = np.abs(np.asarray(p_r, dtype='float64') - p_f)
    d[np.isnan(d)] = np.inf
    worst = float(d.max()) if d.size else 0.0
    r = {**r, 'max_diff': worst, 'worst_id': str(a[d.max(1).argmax()]) if d.size else None}
    return {**r, 'status': 'compared', 'ok': worst <= LIMIT}


def check_file(model, name:str, path:Path, sep:str, keep:int|None)->dict:
    "The record of one file: both sides scored (or refused) and compared."
    rec = {'file': name, 'sep': sep}
    if not path.exists(): return {**rec, 'status': 'missing file', 'ok': False, 'rows': None, 'max_diff': None}
    with tempfile.TemporaryDirectory() as d:
        src = prepared(path, sep, keep, Path(d))
        rec['scored_copy'] = src != path  # the first rows only, or without the Segmentation column
        ref, ref_err = attempt(reference_scores, model, src, sep)
        fast, fast_err = attempt(custseg_scores, src, sep, Path(d))
    if ref_err: rec['reference_error'] = ref_err[1]
    if fast_err: rec['custseg_error'] = fast_err[1]
    if ref_err is None and fast_err is None: return {**rec, **compare(ref, fast)}
    rows = None if ref is None else len(ref[0])
    kinds = (ref_err and ref_err[0], fast_err and fast_err[0])
    if kinds == ('refused', 'refused'): return {**rec, 'rows': rows, 'max_diff': None, 'status': 'refused by both', 'ok': True}
    status = ('disagreement: an unexpected exception' if 'error' in kinds else
              f"disagreement: only {'the reference' if ref_err else 'custseg'} refused")
    return {**rec, 'rows': rows, 'max_diff': None, 'status': status, 'ok': False}


def run_agreement(sample:int|None=None)->dict:
    "Compare custseg's scores with the training-time pipeline on every file; the per-file records and the verdict."
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    from customer_segmentation.fetch import fetch_data
    from customer_segmentation.fit.model import load_model  # TensorFlow and Keras: only here
    if not all((ROOT/'dataset'/n).exists() for n in ('train.csv', 'new_customers.csv')): fetch_data()
    model = load_model()
    recs = [check_file(model, *case) for case in files(sample)]
    diffs = [(r['max_diff'], r['file']) for r in recs if r.get('max_diff') is not None]
    worst = max(diffs, default=(0.0, None))
    bad = [r['file'] for r in recs if not r['ok'] and r['status'] != 'compared']
    return {'limit': LIMIT, 'sample': sample, 'worst': worst[0], 'worst_file': worst[1], 'disagreements': bad,
            'rows_compared': sum(r['rows'] for r in recs if r['status'] == 'compared'),
            'met': worst[0] <= LIMIT and not bad, 'files': recs}


def report(res:dict)->str:
    "One line per file and the verdict, as printed."
    lines = []
    for r in res['files']:
        rows = '-' if r.get('rows') is None else f"{r['rows']:,}"
        diff = '-' if r.get('max_diff') is None else f"{r['max_diff']:.2e}"
        why = (r.get('custseg_error') or r.get('reference_error') or '').replace(f'{ROOT}/', '')
        lines.append(f"{r['file']:<40} {rows:>7} rows  max diff {diff:>9}  {r['status']}{'  (' + why[:90] + ')' if why else ''}")
    lines.append(f"worst: {res['worst']:.2e} ({res['worst_file']}), limit {res['limit']:g}; {len(res['disagreements'])} disagreement(s)"
                 f"{': ' + ', '.join(res['disagreements']) if res['disagreements'] else ''} -> {'met' if res['met'] else 'NOT met'}")
    return '\n'.join(lines)


def main(argv=None)->int:
    "The command line: check the arguments, compare, print, write the JSON if asked; 1 if the goal is not met."
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--sample', type=int, metavar='N', help='score only the first N rows of train.csv and new_customers.csv')
    ap.add_argument('--json', type=Path, metavar='OUT', help='also write the results to this JSON file (atomically)')
    a = ap.parse_args(argv)
    if a.sample is not None and a.sample < 1: ap.error(f'--sample: at least 1 row, got {a.sample}')
    if a.json and not a.json.resolve().parent.is_dir(): ap.error(f'--json: folder {a.json.resolve().parent} does not exist')
    res = run_agreement(a.sample)
    print(report(res))
    if a.json:
        from customer_segmentation.files import write_json
        write_json(res, a.json)
        print(f'written: {a.json}')
    return 0 if res['met'] else 1


if __name__ == '__main__':
    sys.exit(main())
