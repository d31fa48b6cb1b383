"""Property-based fuzzing of the scorer (issue #12): random customer files (random cells, unicode, huge numbers, inf, empty cells,
odd quoting, other delimiters, BOMs, CRLF, truncations, random bytes, compressed and Parquet) either score or fail with a user
error; never another exception, never a partial output or a temporary file left. Most examples run `score_csv` in process
(fast); a few run the `custseg` console script. Derandomized, so a failure reproduces."""
import csv, gzip, io, os, subprocess, sys, tempfile, warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from customer_segmentation.data import CATEGORY_VALUES, FEATURES, ID_COL, NA_VALUES, CustomerDataError
from customer_segmentation.files import PathError
from customer_segmentation.deploy import load_scoring_model, score_csv

ROOT = Path(__file__).resolve().parents[1]
CUSTSEG = str(Path(sys.executable).parent/'custseg')
COLUMNS = [ID_COL, *FEATURES]
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope='module')
def model():
    return load_scoring_model(ROOT/'saved_model')


# --- what a cell can hold ---------------------------------------------------------------------------------------------

_numbers = st.one_of(st.integers(-5, 120).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                     st.sampled_from(['inf', '-inf', 'Infinity', 'NAN', 'nan(2)', '1e308', '1e999', '-0', ' 4 ', '0x10', '1_000',
                                      '３６', '+5', '.5', '5.', '1e-320', '9' * 40]))
_levels = st.sampled_from([v for vs in CATEGORY_VALUES.values() for v in vs] + ['male', 'Male ', 'LOW', 'Astronaut', ' ', 'ÿ'])
_text = st.text(st.characters(codec='utf-8', exclude_categories=['Cs']), max_size=12)
_cell = st.one_of(_numbers, _levels, _text, st.sampled_from(list(NA_VALUES)))
_good = {c: st.sampled_from(list(CATEGORY_VALUES[c])) for c in CATEGORY_VALUES}
_good.update({'Age': st.integers(18, 89).map(str), 'Work_Experience': st.sampled_from(['0.0', '1', '14.0', '']),
              'Family_Size': st.sampled_from(['1.0', '4', '9', '']), ID_COL: st.integers(1, 10**6).map(str)})


def _row(header):
    "A row for `header`: mostly plausible values, now and then any cell."
    return st.tuples(*[st.one_of(_good.get(c, _text), _good.get(c, _text), _good.get(c, _text), _cell) for c in header]).map(list)


@st.composite
def customer_files(draw):
    "(file bytes, suffix, sep to score with, rows it holds if intact or None)."
    header = list(COLUMNS)
    change = draw(st.sampled_from(['none', 'none', 'none', 'extra', 'shuffle', 'drop', 'repeat', 'stray index', 'odd name']))
    if change == 'extra': header.append(draw(st.sampled_from(['Region', 'prob_A', 'Reject_Reason', 'Note'])))
    if change == 'shuffle': header = draw(st.permutations(header))
    if change == 'drop': header.remove(draw(st.sampled_from(COLUMNS)))
    if change == 'repeat': header.append(draw(st.sampled_from(COLUMNS)))
    if change == 'stray index': header.insert(0, draw(st.sampled_from(['', 'Unnamed: 0'])))
    if change == 'odd name': header.append(draw(_text))
    rows = draw(st.lists(_row(header), max_size=8))
    if draw(st.integers(0, 7)) == 0 and rows: rows[0] = [draw(_cell) for _ in range(draw(st.integers(0, len(header) + 2)))]  # a ragged row
    fmt = draw(st.sampled_from(['csv'] * 6 + ['gz', 'parquet']))
    if fmt == 'parquet':
        t = pa.table({f'{c}{"_" * i}': [r[i] if i < len(r) else None for r in rows] for i, c in enumerate(header)} if header else {})
        buf = pa.BufferOutputStream(); pq.write_table(t, buf)
        data, sep, suffix = buf.getvalue().to_pybytes(), ',', '.parquet'
    else:
        sep = draw(st.sampled_from([',', ',', ';', '\t', '|']))
        out = io.StringIO()
        w = csv.writer(out, delimiter=sep, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC])),
                       lineterminator=draw(st.sampled_from(['\n', '\r\n'])))
        w.writerow(header); w.writerows(rows)
        data = (draw(st.sampled_from(['', '\ufeff'])) + out.getvalue()).encode('utf-8')
        suffix = '.csv.gz' if fmt == 'gz' else draw(st.sampled_from(['.csv', '.txt', '']))
        if fmt == 'gz': data = gzip.compress(data)
    damage = draw(st.sampled_from(['none'] * 7 + ['truncate', 'bytes', 'random']))
    if damage == 'truncate' and data: data = data[:draw(st.integers(0, len(data) - 1))]
    if damage == 'bytes': data = data[:(i := draw(st.integers(0, len(data))))] + draw(st.binary(min_size=1, max_size=8)) + data[i:]
    if damage == 'random': data = draw(st.binary(max_size=200))
    score_sep = sep if draw(st.integers(0, 4)) else ','  # now and then the wrong delimiter
    return data, suffix, score_sep, sum(1 for r in rows if r) if damage == 'none' else None  # an empty row is a blank line: no row


def _leftovers(folder:Path, keep:set)->list:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@settings(max_examples=200, **SETTINGS)
@given(f=customer_files(), rejects=st.booleans(), chunk_size=st.sampled_from([1, 3, 100_000]))
def test_any_file_scores_or_fails_with_a_user_error(model, f, rejects, chunk_size):
    data, suffix, sep, n_rows = f
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        inp = d/f'in{suffix}'; inp.write_bytes(data)
        out, rej = d/'out.csv', d/'rejects.csv'
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                s = score_csv(inp, out, model=model, chunk_size=chunk_size, sep=sep, rejects_path=rej if rejects else None)
        except CustomerDataError as e:
            event(f'user error: {str(e).split("(")[0].split(":", 1)[-1][:40].strip()}')
            assert _leftovers(d, {inp.name}) == [], str(e)  # no output, no rejects file, no temporary file
            assert inp.read_bytes() == data
            return
        event(f'scored ({"intact" if n_rows is not None else "damaged"}, {"none" if not s.rows else "some"} rows, {"with" if s.rejected else "no"} rejects)')
        assert inp.read_bytes() == data
        assert _leftovers(d, {inp.name, out.name, rej.name}) == []
        written = pd.read_csv(out, dtype=str, keep_default_na=False)
        assert len(written) == s.rows
        rejected = len(pd.read_csv(rej, dtype=str, keep_default_na=False)) if rejects else 0
        assert rejected == s.rejected
        if n_rows is not None: assert s.rows + s.rejected == n_rows


@settings(max_examples=6, **SETTINGS)
@given(f=customer_files())
def test_the_console_script_never_shows_a_traceback(f):
    data, suffix, sep, _ = f
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d/f'in{suffix}').write_bytes(data)
        r = subprocess.run([CUSTSEG, 'score', f'in{suffix}', '-o', '-', '--sep', sep], cwd=d, capture_output=True, timeout=300)
        err = r.stderr.decode()
        assert 'Traceback' not in err and r.returncode in (0, 2), err
        if r.returncode == 2:
            assert r.stdout == b'' and err.count('custseg: error: ') == 1 and err.strip().splitlines()[-1].startswith('custseg: error: ')
        assert sorted(p.name for p in d.iterdir()) == [f'in{suffix}']


# --- output paths: folders, existing files, links, missing folders (issue #19) --------------------------------------------

_PATH_KINDS = ['new', 'existing file', 'folder with files', 'link to a file', 'dangling link', 'link to a folder', 'missing folders',
               'under a file', 'the folder itself']
_FOLDERISH = {'folder with files', 'link to a folder', 'under a file', 'the folder itself'}


def _make_path(d:Path, kind:str, name:str)->Path:
    "A path of `kind` for role `name` in folder `d`, with whatever must exist beforehand."
    p = d/name
    if kind == 'existing file': p.write_text(f'old {name}')
    if kind == 'folder with files': p.mkdir(); (p/'keep.txt').write_text('keep')
    if kind == 'link to a file': (d/f'{name}.target').write_text('old target'); p.symlink_to(d/f'{name}.target')
    if kind == 'dangling link': p.symlink_to(d/f'{name}.nowhere')
    if kind == 'link to a folder': (d/f'{name}.dir').mkdir(); (d/f'{name}.dir'/'keep.txt').write_text('keep'); p.symlink_to(d/f'{name}.dir')
    if kind == 'missing folders': return d/f'{name}.m'/'a'/'x.csv'
    if kind == 'under a file': (d/f'{name}.f').write_text('a file'); return d/f'{name}.f'/'x.csv'
    if kind == 'the folder itself': return d
    return p


def _snapshot(d:Path)->dict:
    "Every path under `d`: a link's target, a file's bytes, or 'folder'."
    return {str(p.relative_to(d)): os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else 'folder' for p in sorted(d.rglob('*'))}


@settings(max_examples=60, **SETTINGS)
@given(out=st.sampled_from(_PATH_KINDS), rej=st.sampled_from(_PATH_KINDS + ['none']), rep=st.sampled_from(_PATH_KINDS + ['none', 'beside']),
       bad=st.booleans())
def test_any_output_path_is_written_or_refused_and_nothing_else_changes(model, out, rej, rep, bad):
    rows = (ROOT/'dataset'/'new_customers.csv').read_text().splitlines()
    if bad: cells = rows[-1].split(','); cells[3] = 'forty'; rows[-1] = ','.join(cells)  # an Age that is not a number
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d/'in').mkdir(); (inp := d/'in'/'new.csv').write_text('\n'.join(rows) + '\n')
        (w := d/'w').mkdir()
        paths = dict(output_path=_make_path(w, out, 'out'), rejects_path=None if rej == 'none' else _make_path(w, rej, 'rej'),
                     drift_report=None if rep == 'beside' else False if rep == 'none' else _make_path(w, rep, 'rep'))
        before = _snapshot(d)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                score_csv(inp, model=model, **paths)
        except (CustomerDataError, PathError) as e:
            event(f'refused: {type(e).__name__}')
            assert _snapshot(d) == before, str(e)  # every file, folder and link as it was; no temporary file; no folder made
            assert bad or out in _FOLDERISH or rej in _FOLDERISH or rep in {'under a file'}, str(e)
            return
        event('scored')
        assert not bad or rej != 'none'
        after = _snapshot(d)
        ours = lambda k: any(part.startswith(('out', 'rej', 'rep', 'x')) for part in k.split('/')[1:])  # a run's output, or its folders
        for k, v in before.items():  # what was there is there, as it was, unless it was a file the run replaced as its output
            if after.get(k) != v: assert isinstance(v, bytes) and isinstance(after.get(k), bytes) and ours(k), k
        assert not any('.part' in k for k in after), after.keys()
        assert all(ours(k) for k in set(after) - set(before)), set(after) - set(before)


# --- the labels side: every output role crossed with every input and model path of the run (issue #26) --------------------

_ROLE_TARGETS = ['new', 'the input', 'the input via ./', 'link to the input', 'hard link to the input', 'a model file',
                 'inside the model', 'the model folder', 'the report', 'standard output']


def _labels_box(d:Path)->tuple:
    "A labeled file `lab.csv` of 120 new customers, a copy `m/` of the shipped model, and a link and a hard link to the input."
    rows = (ROOT/'dataset'/'train.csv').read_text().splitlines()
    (d/'lab.csv').write_text('\n'.join([rows[0]] + [f'n{i},' + r.split(',', 1)[1] for i, r in enumerate(rows[1:121])]) + '\n')
    import shutil; shutil.copytree(ROOT/'saved_model', d/'m')
    (d/'to_lab.csv').symlink_to(d/'lab.csv'); os.link(d/'lab.csv', d/'hard.csv')
    return d/'lab.csv', d/'m'


def _target(d:Path, kind:str, name:str):
    return {'new': d/name, 'the input': d/'lab.csv', 'the input via ./': d/'.'/'lab.csv', 'link to the input': d/'to_lab.csv',
            'hard link to the input': d/'hard.csv', 'a model file': d/'m'/'metadata.json', 'inside the model': d/'m'/'sub'/name,
            'the model folder': d/'m', 'the report': d/'report.json', 'standard output': '-'}[kind]


@settings(max_examples=40, **SETTINGS)
@given(rep=st.sampled_from(_ROLE_TARGETS), fig=st.sampled_from(_ROLE_TARGETS + ['beside']),
       rej=st.sampled_from(_ROLE_TARGETS + ['none']), record=st.booleans())
def test_evaluate_writes_its_outputs_or_refuses_and_harms_nothing(rep, fig, rej, record):
    from customer_segmentation.labels import evaluate_file
    with tempfile.TemporaryDirectory() as d:
        d = Path(d); lab, m = _labels_box(d)
        paths = dict(report_path=_target(d, rep, 'report.json'), figure=None if fig == 'beside' else _target(d, fig, 'fig.png'),
                     rejects_path=None if rej == 'none' else _target(d, rej, 'rej.csv'))
        before = _snapshot(d)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                evaluate_file(lab, model_dirs=[m], record=record, **paths)
        except (CustomerDataError, PathError) as e:
            event(f'refused: {str(e).split(";")[0].split(": ", 1)[-1][:30]}')
            assert _snapshot(d) == before, str(e)
            return
        event('evaluated')
        outs = [p for p in paths.values() if p is not None and str(p) != '-']
        assert all(k.split('/')[0] not in ('lab.csv', 'to_lab.csv', 'hard.csv') for k in set(_snapshot(d)) - set(before))
        for k, v in before.items():  # the inputs and the model are as they were; only a recorded evaluation is new
            assert _snapshot(d).get(k) == v, k
        new = set(_snapshot(d)) - set(before)
        assert new <= {str(Path(p).relative_to(d)) for p in outs} | {'report.png', 'm/latest_evaluation.json'}, new
        assert ('m/latest_evaluation.json' in new) == record


_TRAIN_OUTPUTS = ['the input', 'folder holding the input', 'model with a file of mine', 'inside a model', 'a file', 'the folder itself']


@settings(max_examples=12, **SETTINGS)
@given(out=st.sampled_from(_TRAIN_OUTPUTS), replace=st.booleans(), twice=st.booleans())
def test_train_refuses_every_harmful_folder_before_any_work(out, replace, twice):
    from customer_segmentation.fit.retrain import train_from_files
    with tempfile.TemporaryDirectory() as d:
        d = Path(d); lab, m = _labels_box(d)
        (d/'data').mkdir(); (d/'data'/'x.csv').write_bytes(lab.read_bytes()); (m/'notes.txt').write_text('mine')
        target = {'the input': lab, 'folder holding the input': d/'data', 'model with a file of mine': m,
                  'inside a model': m/'child', 'a file': d/'hard.csv', 'the folder itself': d}[out]
        inputs = [d/'data'/'x.csv'] + ([d/'data'/'.'/'x.csv'] if twice else [])
        before = _snapshot(d)
        with pytest.raises((CustomerDataError, PathError)) as e: train_from_files(inputs, target, replace=replace, cv=0)
        event(f'refused: {str(e.value).split(";")[0].split(": ", 1)[-1][:30]}')
        assert _snapshot(d) == before
