"""Scoring any customer file, from anywhere, never crashing on it (issue #12): one test or more per case, on tiny fixtures in
tests/fixtures/ (compressed and Parquet copies are made from them in a temporary folder), plus the rules every user error
follows: exit 2, one line naming file, column and line with the fix, no output, no temporary file, the input untouched."""
import bz2, gzip, json, os, shutil, signal, subprocess, sys, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from customer_segmentation.cli import main
from customer_segmentation.data import CustomerDataError, load_customers, project_path
from customer_segmentation.deploy import PROB_COLS, REJECT_COL, load_scoring_model, score_csv
from helpers import score

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT/'tests'/'fixtures'
MODEL_DIR = ROOT/'saved_model'
CUSTSEG = str(Path(sys.executable).parent/'custseg')
NO_RANGES = 'records no training ranges'


def custseg(*args, cwd=None, stdin=None, timeout=300):
    "`custseg ARGS` in a subprocess: (exit code, stdout bytes, stderr text)."
    r = subprocess.run([CUSTSEG, *map(str, args)], cwd=cwd, input=stdin, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr.decode()


def run_main(capsys, *args):
    "`custseg ARGS` in process: (exit code, stdout, stderr lines less the 'no training ranges' warning of an older model)."
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, [l for l in cap.err.splitlines() if NO_RANGES not in l]


def state(folder):
    "Every file under `folder` with its bytes and modification time."
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(Path(folder).rglob('*')) if p.is_file()}


def assert_user_error(code, err, *needles):
    "Exit 2 and one line `custseg: error: ...` holding each of `needles`, no traceback."
    lines = err.strip().splitlines() if isinstance(err, str) else err
    assert code == 2 and len(lines) == 1 and lines[0].startswith('custseg: error: '), err
    for n in needles: assert n in lines[0], (n, lines[0])


@pytest.fixture(scope='module')
def ranged_model_dir(tmp_path_factory):
    "A copy of the saved model whose metadata records the training ranges (as save_model does)."
    from customer_segmentation.fit.model import training_ranges
    d = tmp_path_factory.mktemp('model')/'saved_model'
    shutil.copytree(MODEL_DIR, d)
    meta = json.loads((d/'metadata.json').read_text())
    meta['training_ranges'] = meta.get('training_ranges') or training_ranges(load_customers(project_path('dataset', 'train.csv')))
    (d/'metadata.json').write_text(json.dumps(meta))
    return d


@pytest.fixture(scope='module')
def model(ranged_model_dir):
    return load_scoring_model(ranged_model_dir)




def scores(path):
    "The scored file at `path` (CSV of any compression, or Parquet) as text, probabilities as floats."
    df = pq.read_table(path).to_pandas() if str(path).endswith('.parquet') else pd.read_csv(path, dtype=str, keep_default_na=False)
    return df.astype({c: float for c in PROB_COLS})


# --- 1. no model outside the project tree ----------------------------------------------------------------------------

def test_1_scores_from_a_folder_of_its_own(tmp_path):
    (tmp_path/'customers.csv').write_bytes((FIX/'customers.csv').read_bytes())
    code, out, err = custseg('score', 'customers.csv', '-o', 'scored.csv', cwd=tmp_path)
    assert code == 0, err
    assert out.decode().startswith('Scored 12 rows of customers.csv into scored.csv')
    code, _, err = custseg('score', FIX/'customers.csv', '-o', tmp_path/'ref.csv', '--model-dir', MODEL_DIR, cwd=ROOT)
    assert code == 0, err
    pd.testing.assert_frame_equal(scores(tmp_path/'scored.csv'), scores(tmp_path/'ref.csv'))


def test_1_default_model_is_found_from_the_package_not_the_working_directory(tmp_path, monkeypatch):
    import customer_segmentation
    from customer_segmentation.artifact import ModelLoadError, default_model_dir
    monkeypatch.chdir(tmp_path)
    assert default_model_dir() == MODEL_DIR  # an editable install: the checkout's saved_model/
    monkeypatch.setattr(customer_segmentation, '__file__', str(tmp_path/'site-packages'/'customer_segmentation'/'__init__.py'))
    with pytest.raises(ModelLoadError) as e: default_model_dir()
    msg = str(e.value)
    assert str(tmp_path/'site-packages'/'customer_segmentation'/'saved_model') in msg and '--model-dir' in msg


def test_1_scoring_imports_no_tensorflow(tmp_path):
    code = (f"import sys; from customer_segmentation.cli import main\n"
            f"assert main(['score', {str(FIX/'customers.csv')!r}, '-o', {str(tmp_path/'o.csv')!r}]) == 0\n"
            f"print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))")
    r = subprocess.run([sys.executable, '-X', 'importtime', '-c', code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == '[]', r.stdout
    imported = {l.split('|')[-1].strip() for l in r.stderr.splitlines() if l.startswith('import time:')}
    assert not {'tensorflow', 'keras'} & imported


# --- 2. infinite and absurd numbers ----------------------------------------------------------------------------------

def test_2_infinite_numbers_are_a_user_error(tmp_path, capsys):
    code, out, err = run_main(capsys, 'score', FIX/'infinite.csv', '-o', tmp_path/'o.csv')
    assert_user_error(code, err, 'infinite.csv: column Age must be at most 1,000,000', "('1e308') at line(s) 4", 'Fix or blank')
    assert not (tmp_path/'o.csv').exists()
    (tmp_path/'inf.csv').write_text((FIX/'infinite.csv').read_text().replace(',1e308,', ',50,'))
    code, _, err = run_main(capsys, 'score', tmp_path/'inf.csv', '-o', tmp_path/'o.csv')
    assert_user_error(code, err, 'inf.csv: column Work_Experience must be a finite number', "('inf') at line(s) 3")


def test_2_rejects_take_infinite_and_absurd_numbers(tmp_path, model):
    s, _ = score(FIX/'infinite.csv', tmp_path/'o.csv', model=model, rejects_path=tmp_path/'rej.csv')
    rej = pd.read_csv(tmp_path/'rej.csv', dtype=str)
    assert rej[REJECT_COL].tolist() == ['Work_Experience not finite', 'Age too large', 'Family_Size not finite']
    assert (s.rows, s.rejected) == (1, 3) and pd.read_csv(tmp_path/'o.csv', dtype=str)['ID'].tolist() == ['960001']


# --- 3. values outside the training range ---------------------------------------------------------------------------

def test_3_training_ranges_are_in_the_metadata(ranged_model_dir):
    r = json.loads((ranged_model_dir/'metadata.json').read_text())['training_ranges']
    assert r['Age'] == {'min': 18.0, 'max': 89.0, 'whole': True} and r['Family_Size']['whole'] is True


def test_3_out_of_range_values_are_scored_with_one_warning_per_column(tmp_path, model):
    s, w = score(FIX/'out_of_range.csv', tmp_path/'o.csv', model=model, chunk_size=2)
    assert s.rows == 4 and len(w) == 2, w
    assert 'column Age has 2 value(s) outside the training range 18 to 89 (999, 0) at line(s) 3, 4; they are scored' in w[0]
    assert 'column Family_Size has 1 fractional value(s) (2.5) at line(s) 4' in w[1]


def test_3_rejects_take_them_on_request(tmp_path, model):
    s, _ = score(FIX/'out_of_range.csv', tmp_path/'o.csv', model=model, rejects_path=tmp_path/'rej.csv', reject_out_of_range=True)
    rej = pd.read_csv(tmp_path/'rej.csv', dtype=str)
    assert rej['ID'].tolist() == ['970002', '970003'] and rej[REJECT_COL].tolist() == ['Age out of range', 'Age out of range; Family_Size fractional']
    assert (s.rows, s.rejected) == (2, 2)
    with pytest.raises(CustomerDataError, match='needs a rejects file'):
        score_csv(FIX/'out_of_range.csv', tmp_path/'o2.csv', model=model, reject_out_of_range=True)
    assert not (tmp_path/'o2.csv').exists()


def test_3_cli_flag_and_a_model_without_ranges(tmp_path, ranged_model_dir):
    code, out, err = custseg('score', FIX/'out_of_range.csv', '-o', tmp_path/'o.csv', '--model-dir', ranged_model_dir,
                             '--rejects', tmp_path/'rej.csv', '--reject-out-of-range')
    assert code == 0 and 'Rejected: 2 rows' in out.decode(), err
    old = tmp_path/'old_model'
    shutil.copytree(ranged_model_dir, old)
    meta = json.loads((old/'metadata.json').read_text()); meta.pop('training_ranges')
    (old/'metadata.json').write_text(json.dumps(meta))
    code, _, err = custseg('score', FIX/'out_of_range.csv', '-o', tmp_path/'o.csv', '--model-dir', old)
    assert code == 0 and err.count(NO_RANGES) == 1 and 'outside the training range' not in err, err


# --- 4. case and space variants of known levels ----------------------------------------------------------------------

def test_4_variants_map_to_the_known_level(tmp_path, model):
    s, w = score(FIX/'variants.csv', tmp_path/'o.csv', model=model, chunk_size=2)
    got = scores(tmp_path/'o.csv')
    p = got[list(PROB_COLS)].to_numpy()
    np.testing.assert_allclose(p[1], p[0], atol=1e-6)  # 'male' is Male
    np.testing.assert_allclose(p[2], p[0], atol=1e-6)  # 'Male ' and 'LOW' are Male and Low
    assert got['Gender'].tolist()[:3] == ['Male', 'male', 'Male ']  # the input's text is written back as it was
    gender = [m for m in w if 'column Gender has' in m]
    assert len(gender) == 2, w  # the variants and, separately, the truly unseen value
    assert "2 value(s) that differ from a known level only in case or surrounding spaces ('male' as 'Male': 1, 'Male ' as 'Male': 1)" in w[0]
    assert "column Spending_Score has 1 value(s) that differ" in w[1] and "'LOW' as 'Low': 1" in w[1]
    assert any("not seen in the training data ('Pilot-ish': 1)" in m for m in w)


def test_4_both_readers_map_and_warn_alike(tmp_path, model):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        typed = load_customers(FIX/'variants.csv', labeled=False)
    assert typed['Gender'].tolist()[:3] == ['Male'] * 3
    _, streamed = score(FIX/'variants.csv', tmp_path/'o.csv', model=model)
    assert sorted(str(x.message) for x in w) == sorted(streamed)


# --- 6. '-' for standard input and output ---------------------------------------------------------------------------

def test_6_stdin_to_stdout(tmp_path):
    code, ref_out, err = custseg('score', FIX/'customers.csv', '-o', tmp_path/'ref.csv', cwd=tmp_path)
    assert code == 0, err
    code, out, err = custseg('score', '-', '-o', '-', cwd=tmp_path, stdin=(FIX/'customers.csv').read_bytes())
    assert code == 0 and out == (tmp_path/'ref.csv').read_bytes(), err
    assert 'Scored 12 rows of <stdin> into <stdout>' in err and sorted(p.name for p in tmp_path.iterdir()) == ['ref.csv']
    code, out, err = custseg('score', '-', '-o', 'from_gzip.csv', cwd=tmp_path, stdin=gzip.compress((FIX/'customers.csv').read_bytes()))
    assert code == 0 and (tmp_path/'from_gzip.csv').read_bytes() == (tmp_path/'ref.csv').read_bytes(), err


def test_6_a_failed_run_writes_nothing_to_stdout(tmp_path):
    code, out, err = custseg('score', '-', '-o', '-', cwd=tmp_path, stdin=(FIX/'bad_age.csv').read_bytes())
    assert out == b''
    assert_user_error(code, err, "<stdin>: column Age must be numeric", 'line(s) 3, 5')
    assert list(tmp_path.iterdir()) == []


def test_6_no_spool_files_are_left(tmp_path, capsys, monkeypatch):
    import tempfile
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    monkeypatch.setattr(sys, 'stdin', open(FIX/'customers.csv', encoding='utf-8'))
    code, out, _ = run_main(capsys, 'score', '-', '-o', '-')
    assert code == 0 and out.startswith('ID,Gender') and list(tmp_path.iterdir()) == []


# --- 7. compressed CSV and Parquet -----------------------------------------------------------------------------------

def _compressed_copies(tmp_path):
    raw = (FIX/'customers.csv').read_bytes()
    (tmp_path/'c.csv.gz').write_bytes(gzip.compress(raw))
    (tmp_path/'c.csv.bz2').write_bytes(bz2.compress(raw))
    with pa.output_stream(str(tmp_path/'c.csv.zst'), compression='zstd') as f: f.write(raw)
    return ['c.csv.gz', 'c.csv.bz2', 'c.csv.zst']


def same_scores(a:Path, b:Path):
    "Two scored CSVs agree: every column but the probabilities exactly, the probabilities within float32 rounding."
    fa, fb = (pd.read_csv(p, dtype=str, keep_default_na=False) for p in (a, b))
    assert list(fa.columns) == list(fb.columns)
    rest = [c for c in fa.columns if c not in PROB_COLS]
    pd.testing.assert_frame_equal(fa[rest], fb[rest])
    np.testing.assert_allclose(fa[list(PROB_COLS)].astype(float), fb[list(PROB_COLS)].astype(float), atol=1e-6)


def test_7_compressed_csv_scores_like_the_plain_file(tmp_path, model):
    "Chunks of 5 rows against one chunk: the matrix products run through other BLAS kernels, so the last float32 digit may differ."
    score(FIX/'customers.csv', tmp_path/'ref.csv', model=model)
    for name in _compressed_copies(tmp_path):
        s, _ = score(tmp_path/name, tmp_path/f'{name}.out.csv', model=model, chunk_size=5)
        assert s.rows == 12, name
        same_scores(tmp_path/f'{name}.out.csv', tmp_path/'ref.csv')


def test_7_parquet_in_and_out(tmp_path, model):
    score(FIX/'customers.csv', tmp_path/'ref.csv', model=model)
    df = pd.read_csv(FIX/'customers.csv')  # Age and ID as integers, Work_Experience as floats with NaN
    df.to_parquet(tmp_path/'c.parquet', index=False)
    s, _ = score(tmp_path/'c.parquet', tmp_path/'o.parquet', model=model, chunk_size=5)
    t = pq.read_table(tmp_path/'o.parquet')
    assert t.column_names == [*df.columns, 'Segmentation', *PROB_COLS, 'Segment_Set', 'Set_Size'] and s.rows == 12
    assert t.schema.field('Segmentation').type == pa.string() and t.schema.field('prob_A').type == pa.float32()
    assert t.schema.field('Age').type == pa.int64()  # the input's columns keep their types
    ref = scores(tmp_path/'ref.csv')
    np.testing.assert_allclose(t.select(list(PROB_COLS)).to_pandas().to_numpy(), ref[list(PROB_COLS)].to_numpy(), atol=1e-6)
    assert t.column('Segmentation').to_pylist() == ref['Segmentation'].tolist()


def test_7_compressed_output_by_name(tmp_path, model):
    score(FIX/'customers.csv', tmp_path/'ref.csv', model=model)
    score(FIX/'customers.csv', tmp_path/'o.csv.gz', model=model)
    assert gzip.decompress((tmp_path/'o.csv.gz').read_bytes()) == (tmp_path/'ref.csv').read_bytes()


def test_7_damaged_parquet_is_a_user_error(tmp_path, capsys):
    pd.read_csv(FIX/'customers.csv').to_parquet(tmp_path/'c.parquet')
    (tmp_path/'cut.parquet').write_bytes((tmp_path/'c.parquet').read_bytes()[:300])
    code, _, err = run_main(capsys, 'score', tmp_path/'cut.parquet', '-o', tmp_path/'o.csv')
    assert_user_error(code, err, 'cut.parquet: cannot be read as Parquet')


# --- 8. a killed run's temporary file --------------------------------------------------------------------------------

def test_8_killed_run_leaves_no_temporary_files_accumulating(tmp_path):
    lines = (FIX/'customers.csv').read_text().splitlines()
    body = '\n'.join(f'{i}{l[6:]}' for i, l in zip(range(10**6, 10**6 + 400_000), lines[1:] * 40_000))
    (tmp_path/'big.csv').write_text(lines[0] + '\n' + body + '\n')
    out = tmp_path/'out'; out.mkdir()
    p = subprocess.Popen([CUSTSEG, 'score', tmp_path/'big.csv', '-o', out/'scored.csv', '--chunk-size', '20000'],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not any(f.stat().st_size > 0 for f in out.glob('.scored.csv.*.part*')): time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    left = list(out.glob('.scored.csv.*.part*'))
    assert left and not (out/'scored.csv').exists(), 'the run finished before it could be killed: make big.csv bigger'
    code, _, err = custseg('score', FIX/'customers.csv', '-o', out/'scored.csv')
    assert code == 0, err
    assert sorted(f.name for f in out.iterdir()) == ['scored.csv']  # the stale temporary file is gone, none added


# --- 9. a folder as input ---------------------------------------------------------------------------------------------

def test_9_folder_as_input(tmp_path, capsys):
    "A folder is scored as partitions (nbs/08_partitions.ipynb, tests/test_partitions.py); one that holds none is refused."
    code, _, err = run_main(capsys, 'score', tmp_path, '-o', tmp_path/'o.csv')
    assert_user_error(code, err, f'{tmp_path}: is a folder that holds no partitions (.parquet, .csv, .csv.gz). Give a customer file, or a folder')


# --- 10. other delimiters ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('fixture,sep,what', [('semicolon.csv', ';', 'semicolon'), ('tabs.tsv', 'tab', 'tab')])
def test_10_other_delimiters(tmp_path, capsys, model, fixture, sep, what):
    code, _, err = run_main(capsys, 'score', FIX/fixture, '-o', tmp_path/'o.csv')
    assert_user_error(code, err, f'{fixture}: the header is one column', f'looks {what}-separated', '--sep')
    assert run_main(capsys, 'score', FIX/fixture, '-o', tmp_path/'o.csv', '--sep', sep)[0] == 0
    score(FIX/'customers.csv', tmp_path/'ref.csv', model=model)
    pd.testing.assert_frame_equal(scores(tmp_path/'o.csv'), scores(tmp_path/'ref.csv'))


def test_10_sep_is_checked(capsys):
    with pytest.raises(SystemExit) as e: main(['score', 'x.csv', '-o', 'y.csv', '--sep', ';;'])
    assert e.value.code == 2 and 'a delimiter is one character' in capsys.readouterr().err


# --- the rules: every user error ------------------------------------------------------------------------------------

def _bad_inputs(tmp_path):
    "(name, extra arguments, what the message must say) of a range of bad inputs, written into `tmp_path`."
    good = (FIX/'customers.csv').read_text()
    (tmp_path/'empty.csv').write_text('')
    (tmp_path/'binary.csv').write_bytes(bytes(range(256)) * 4)
    (tmp_path/'ragged.csv').write_text(good + '1,2\n')
    (tmp_path/'fake.csv.gz').write_bytes(b'\x1f\x8b\x08\x00' + b'nonsense' * 50)
    (tmp_path/'fake.parquet').write_text(good)
    (tmp_path/'latin1.csv').write_bytes(good.replace('North', 'Zürich').encode('latin-1'))
    (tmp_path/'a folder').mkdir()
    return [('empty.csv', [], 'the file is empty'), ('binary.csv', [], 'cannot be read as CSV'),
            ('ragged.csv', [], 'line'), ('fake.csv.gz', [], 'cannot be read as CSV'),
            ('fake.parquet', [], 'cannot be read as Parquet'), ('latin1.csv', [], 'UTF-8'), ('a folder', [], 'is a folder'),
            ('absent.csv', [], 'no such file'), (FIX/'infinite.csv', [], 'line(s) 4'), (FIX/'semicolon.csv', [], '--sep'),
            (FIX/'missing_column.csv', [], 'missing required column(s) Profession, Var_1'),
            (FIX/'customers.csv', ['--model-dir', tmp_path/'a folder'], 'missing file(s)'),
            (FIX/'customers.csv', ['--rejects', '-'], 'the rejects file must be a file')]


def test_every_user_error_follows_the_rules(tmp_path, capsys):
    cases = _bad_inputs(tmp_path)
    before, fixtures = state(tmp_path), state(FIX)
    for name, extra, needle in cases:
        code, out, err = run_main(capsys, 'score', tmp_path/name, '-o', tmp_path/'out'/'o.csv', '--rejects', tmp_path/'rej.csv', *extra) \
            if name == 'ragged.csv' else run_main(capsys, 'score', tmp_path/name, '-o', tmp_path/'o.csv', *extra)
        assert_user_error(code, err, needle)
        assert out == ''
        assert state(tmp_path) == before, name  # no output, no temporary file, every input byte and time as it was
    assert state(FIX) == fixtures


def test_user_errors_in_a_subprocess_are_one_line(tmp_path):
    for args in (['score', FIX/'infinite.csv', '-o', tmp_path/'o.csv'], ['score', tmp_path, '-o', tmp_path/'o.csv'],
                 ['score', FIX/'semicolon.csv', '-o', '-']):
        code, out, err = custseg(*args)
        assert out == b'' and 'Traceback' not in err
        assert_user_error(code, err)
    assert list(tmp_path.iterdir()) == []
