"""Scoring end to end with the project's saved model: the papermill notebook, score_csv on each kind of good and bad input,
and the model-folder checks. Fixtures are tiny synthetic CSVs in tests/fixtures/."""
import json, os, shutil, subprocess, sys, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from customer_segmentation.data import CLASSES, CustomerDataError, project_path
from customer_segmentation.deploy import (KNOWN_COL, PROB_COLS, REJECT_COL, SCORE_COLS, SET_COLS, ScoringModel, iter_csv_chunks,
                                          load_scoring_model, score_csv, score_frame)
from helpers import score

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT/'tests'/'fixtures'
BIN = Path(sys.executable).parent
MODEL_DIR = project_path('saved_model')


def read_text_csv(path):
    "A CSV as pandas reads it with every cell as its text (empty cells as '')."
    return pd.read_csv(path, dtype=str, keep_default_na=False)




def with_ranges(m):
    "`m` with the training ranges in its metadata, as save_model records them (added here when the saved copy predates them)."
    if not m.metadata.get('training_ranges'):
        from customer_segmentation.fit.model import training_ranges
        from customer_segmentation.data import load_customers
        m.metadata['training_ranges'] = training_ranges(load_customers(project_path('dataset', 'train.csv')))
    return m


@pytest.fixture(scope='module')
def model():
    return with_ranges(load_scoring_model(MODEL_DIR))


class Recording:
    "Wraps a model, recording the size of each batch it is asked to score."
    def __init__(self, m): self.m, self.classes, self.sizes = m, m.classes, []
    def predict_proba(self, df):
        self.sizes.append(len(df))
        return self.m.predict_proba(df)


# --- the notebook, end to end -------------------------------------------------------------------------------------

def results_state():
    "Name, size and modification time of every file in the project's results/."
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in (ROOT/'results').iterdir() if p.is_file()}


def test_papermill_scores_input_into_output(tmp_path):
    out = tmp_path/'scored.csv'
    before = results_state()
    cmd = [str(BIN/'papermill'), '--cwd', str(ROOT/'nbs'), '--log-level', 'WARNING', str(ROOT/'nbs'/'06_deploy.ipynb'),
           str(tmp_path/'run.ipynb'), '-p', 'input_path', str(FIX/'customers.csv'), '-p', 'output_path', str(out),
           '-p', 'labeled_path', str(FIX/'labeled.csv'), '-p', 'chunk_size', '5']
    (tmp := tmp_path/'tmp').mkdir()
    env = {**os.environ, 'IN_TEST': '', 'TMPDIR': str(tmp)}  # papermill runs the real job, not the nbdev_test variant
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert list(tmp.iterdir()) == []  # the chapter's examples leave no temporary folder behind
    inp, got = read_text_csv(FIX/'customers.csv'), read_text_csv(out)
    assert list(got.columns) == [*inp.columns, *SCORE_COLS, *SET_COLS, KNOWN_COL]
    pd.testing.assert_frame_equal(got[inp.columns], inp)
    assert got[KNOWN_COL].tolist() == ['', 'C', '', '', 'C', '', '', '', 'D', '', '', '']
    nb = json.loads((tmp_path/'run.ipynb').read_text())
    outputs = [o for c in nb['cells'] for o in c.get('outputs', [])]
    text = ''.join(''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/markdown', '')) for o in outputs)
    assert 'Scored 12 customers of' in text and 'Known customers: 3 of 12 appear in' in text  # the summary, as Markdown
    assert any('image/png' in o.get('data', {}) for c in nb['cells'] for o in c.get('outputs', []))
    assert (tmp_path/'scored_segment_mix.png').stat().st_size > 0  # the figure lands beside the output, named after it
    assert results_state() == before  # scoring another file leaves the project's results/ as it was


def test_papermill_refuses_an_unknown_parameter(tmp_path):
    "A misspelt parameter fails the run, naming it, the closest parameter and all of them; nothing is scored."
    out = tmp_path/'scored.csv'
    cmd = [str(BIN/'papermill'), '--cwd', str(ROOT/'nbs'), '--log-level', 'WARNING', str(ROOT/'nbs'/'06_deploy.ipynb'),
           str(tmp_path/'run.ipynb'), '-p', 'input_csv', str(FIX/'customers.csv'), '-p', 'output_path', str(out)]
    (tmp := tmp_path/'tmp').mkdir()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, 'IN_TEST': '', 'TMPDIR': str(tmp)}, timeout=300)
    assert r.returncode != 0
    assert "unknown parameter(s) 'input_csv' (did you mean 'input_path'?); this notebook's parameters are input_path, output_path" in r.stderr
    assert not out.exists() and not (tmp_path/'scored_segment_mix.png').exists()
    assert list(tmp.iterdir()) == []  # a failed run leaves no temporary folder either


def test_papermill_names_a_parameter_with_a_bad_value(tmp_path):
    "-p chunk_size abc fails the run with one line naming the parameter and what it takes; nothing is scored."
    out = tmp_path/'scored.csv'
    cmd = [str(BIN/'papermill'), '--cwd', str(ROOT/'nbs'), '--log-level', 'WARNING', str(ROOT/'nbs'/'06_deploy.ipynb'),
           str(tmp_path/'run.ipynb'), '-p', 'input_path', str(FIX/'customers.csv'), '-p', 'output_path', str(out), '-p', 'chunk_size', 'abc']
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, 'IN_TEST': ''}, timeout=300)
    assert r.returncode != 0
    assert "parameter chunk_size must be a whole number of at least 1 (e.g. -p chunk_size 65536); got 'abc'." in r.stderr, r.stderr[-2000:]
    assert not out.exists()


def test_parameters_cell_defines_the_job_parameters():
    import ast
    from customer_segmentation.deploy import JOB_PARAMETERS
    nb = json.loads((ROOT/'nbs'/'06_deploy.ipynb').read_text())
    cell, = [c for c in nb['cells'] if 'parameters' in c['metadata'].get('tags', [])]
    names = [t.id for n in ast.parse(''.join(cell['source'])).body for t in n.targets]
    assert tuple(names) == JOB_PARAMETERS


# --- the output -----------------------------------------------------------------------------------------------------

def test_output_is_input_plus_scores(tmp_path, model):
    s, w = score(FIX/'customers.csv', tmp_path/'o.csv', model=model)
    inp, got = read_text_csv(FIX/'customers.csv'), read_text_csv(tmp_path/'o.csv')
    assert list(got.columns) == [*inp.columns, 'Segmentation', 'prob_A', 'prob_B', 'prob_C', 'prob_D', 'Segment_Set', 'Set_Size']
    pd.testing.assert_frame_equal(got[inp.columns], inp)  # every input column (Region is extra), unchanged, IDs in order
    p = got[list(PROB_COLS)].astype(float).to_numpy()
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)
    assert ((p > 0) & (p < 1)).all()
    assert got['Segmentation'].tolist() == [CLASSES[i] for i in p.argmax(1)]
    assert (s.rows, sum(s.segment_counts.values()), s.known_path, w) == (12, 12, None, [])


def test_text_is_written_back_byte_for_byte(tmp_path, model):
    score(FIX/'customers.csv', tmp_path/'o.csv', model=model)
    n = len(read_text_csv(FIX/'customers.csv').columns)
    got = [','.join(l.split(',')[:n]) for l in (tmp_path/'o.csv').read_text().splitlines()]
    assert got == (FIX/'customers.csv').read_text().splitlines()


def test_values_that_need_quotes_survive(tmp_path, model):
    score(FIX/'quoted.csv', tmp_path/'o.csv', model=model)
    got = read_text_csv(tmp_path/'o.csv')
    assert got['Note'].tolist() == ['likes red, and blue', 'said "call me"', 'plain']


def test_scores_match_score_frame_and_the_model(tmp_path, model):
    score(FIX/'customers.csv', tmp_path/'o.csv', model=model)
    got = read_text_csv(tmp_path/'o.csv')
    framed = score_frame(pd.read_csv(FIX/'customers.csv', dtype=str), model)
    np.testing.assert_allclose(got[list(PROB_COLS)].astype(float).to_numpy(), framed[list(PROB_COLS)].to_numpy(), atol=1e-6)
    assert got['Segmentation'].tolist() == framed['Segmentation'].tolist()
    assert got['Segment_Set'].tolist() == framed['Segment_Set'].tolist()  # the same sets, from a file or a frame


def test_nothing_is_fitted_on_the_input(tmp_path, model):
    "A row's scores depend neither on the chunking nor on the other rows of the file."
    # equal up to float32 rounding: BLAS sums a one-row product in another order than a many-row one
    def same(a, b):
        pd.testing.assert_frame_equal(a.drop(columns=list(PROB_COLS)), b.drop(columns=list(PROB_COLS)))
        np.testing.assert_allclose(a[list(PROB_COLS)].astype(float), b[list(PROB_COLS)].astype(float), atol=1e-6)
    score(FIX/'customers.csv', tmp_path/'a.csv', model=model, chunk_size=1)
    score(FIX/'customers.csv', tmp_path/'b.csv', model=model, chunk_size=1000)
    same(read_text_csv(tmp_path/'a.csv'), read_text_csv(tmp_path/'b.csv'))
    lines = (FIX/'customers.csv').read_text().splitlines()
    (tmp_path/'one.csv').write_text(lines[0] + '\n' + lines[5] + '\n')
    score(tmp_path/'one.csv', tmp_path/'one_out.csv', model=model)
    same(read_text_csv(tmp_path/'one_out.csv'), read_text_csv(tmp_path/'b.csv').iloc[[4]].reset_index(drop=True))


def test_chunks_bound_what_the_model_sees(tmp_path, model):
    rec = Recording(model)
    s, _ = score(FIX/'customers.csv', tmp_path/'o.csv', model=rec, chunk_size=5)
    assert rec.sizes == [5, 5, 2] and s.rows == 12
    assert [t.num_rows for t in iter_csv_chunks(FIX/'customers.csv', 5)] == [5, 5, 2]


def test_model_is_loaded_from_model_dir(tmp_path):
    s, _ = score(FIX/'customers.csv', tmp_path/'o.csv', model_dir=MODEL_DIR)
    assert s.rows == 12 and (tmp_path/'o.csv').is_file()


# --- known customers -----------------------------------------------------------------------------------------------

def test_known_segmentation_from_labeled_file(tmp_path, model):
    s, _ = score(FIX/'customers.csv', tmp_path/'o.csv', model=model, labeled_path=FIX/'labeled.csv', chunk_size=4)
    got = read_text_csv(tmp_path/'o.csv')
    assert got.columns[-1] == KNOWN_COL
    known = dict(zip(got['ID'], got[KNOWN_COL]))
    assert {k: v for k, v in known.items() if v} == {'900002': 'C', '900005': 'C', '900009': 'D'}
    assert s.known_matched == 3
    assert s.known_agree == int((got['Segmentation'] == got[KNOWN_COL]).sum())
    assert 'Known customers: 3 of 12 appear in' in str(s)


def test_no_known_column_without_labeled_file(tmp_path, model):
    s, _ = score(FIX/'customers.csv', tmp_path/'o.csv', model=model, labeled_path='')
    assert KNOWN_COL not in read_text_csv(tmp_path/'o.csv').columns and s.known_matched is None


# --- nothing lost ---------------------------------------------------------------------------------------------------

def test_refuses_to_overwrite_the_input(tmp_path, model):
    inp = tmp_path/'in.csv'
    shutil.copy(FIX/'customers.csv', inp)
    before = inp.read_bytes()
    for out in (inp, tmp_path/'.'/'in.csv'):
        with pytest.raises(CustomerDataError, match='never overwrites its own input'): score_csv(inp, out, model=model)
    os.link(inp, tmp_path/'hard.csv')
    with pytest.raises(CustomerDataError, match='never overwrites'): score_csv(inp, tmp_path/'hard.csv', model=model)
    assert inp.read_bytes() == before


def test_failed_run_keeps_existing_output_and_leaves_no_temp_file(tmp_path, model):
    good = (FIX/'customers.csv').read_text().splitlines()
    bad = tmp_path/'late_error.csv'
    bad.write_text('\n'.join(good + [good[1].replace(',36,', ',abc,')]) + '\n')  # line 14, in the 4th chunk of 4
    out = tmp_path/'out.csv'
    out.write_text('previous results\n')
    with pytest.raises(CustomerDataError, match=r"column Age must be numeric.*'abc'.*line\(s\) 14"):
        score_csv(bad, out, model=model, chunk_size=4)
    assert out.read_text() == 'previous results\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['late_error.csv', 'out.csv']


def test_model_error_leaves_no_output(tmp_path):
    with pytest.raises(ValueError, match='missing file'): score_csv(FIX/'customers.csv', tmp_path/'o.csv', model_dir=tmp_path)
    assert not (tmp_path/'o.csv').exists()


# --- bad input ------------------------------------------------------------------------------------------------------

def test_missing_column_names_columns_and_file(tmp_path, model):
    with pytest.raises(CustomerDataError) as e: score_csv(FIX/'missing_column.csv', tmp_path/'o.csv', model=model)
    msg = str(e.value)
    assert 'missing_column.csv' in msg and 'missing required column(s) Profession, Var_1' in msg
    assert not (tmp_path/'o.csv').exists()


def test_unseen_categories_scored_with_one_warning_per_column(tmp_path, model):
    s, w = score(FIX/'unseen.csv', tmp_path/'o.csv', model=model, chunk_size=2)  # spread over 3 chunks
    assert s.rows == 5
    prof = [m for m in w if 'column Profession' in m]
    var1 = [m for m in w if 'column Var_1' in m]
    assert len(prof) == 1 and len(var1) == 1 and len(w) == 2, w
    assert "3 value(s) not seen" in prof[0] and "'Astronaut': 2" in prof[0] and "'Pilot': 1" in prof[0]
    assert "1 value(s) not seen" in var1[0] and "'Cat_9': 1" in var1[0]
    got = read_text_csv(tmp_path/'o.csv')
    # an unseen value is an unknown level: two different unseen professions score alike
    p = got[list(PROB_COLS)].astype(float).to_numpy()
    np.testing.assert_allclose(p[3], p[4], atol=1e-6)  # Astronaut vs Pilot, rows otherwise equal
    assert s.warnings == w


def test_non_numeric_age_names_column_and_lines(tmp_path, model):
    with pytest.raises(CustomerDataError) as e: score_csv(FIX/'bad_age.csv', tmp_path/'o.csv', model=model)
    msg = str(e.value)
    assert 'bad_age.csv' in msg and 'column Age must be numeric' in msg and "'seventy', '4O'" in msg and 'line(s) 3, 5' in msg


def test_negative_family_size_names_column_and_line(tmp_path, model):
    with pytest.raises(CustomerDataError, match=r'column Family_Size must not be negative.*line\(s\) 3'):
        score_csv(FIX/'negative_family.csv', tmp_path/'o.csv', model=model)


def test_rejects_file_takes_invalid_rows(tmp_path, model):
    s, _ = score(FIX/'bad_age.csv', tmp_path/'o.csv', model=model, rejects_path=tmp_path/'rejects.csv')
    rej = read_text_csv(tmp_path/'rejects.csv')
    assert rej['ID'].tolist() == ['920002', '920004'] and set(rej[REJECT_COL]) == {'Age not a number'}
    assert read_text_csv(tmp_path/'o.csv')['ID'].tolist() == ['920001', '920003']
    assert (s.rows, s.rejected) == (2, 2) and 'Rejected: 2 rows' in str(s)


def test_header_only_gives_empty_output_with_header(tmp_path, model):
    s, w = score(FIX/'header_only.csv', tmp_path/'o.csv', model=model, labeled_path=FIX/'labeled.csv')
    assert (tmp_path/'o.csv').read_text() == (FIX/'header_only.csv').read_text().strip() + \
        ',Segmentation,prob_A,prob_B,prob_C,prob_D,Segment_Set,Set_Size,Known_Segmentation\n'
    assert (s.rows, s.known_matched, w) == (0, 0, [])


def test_empty_file_is_a_clear_error(tmp_path, model):
    (tmp_path/'empty.csv').write_text('')
    with pytest.raises(CustomerDataError, match='the file is empty'): score_csv(tmp_path/'empty.csv', tmp_path/'o.csv', model=model)


def test_stray_index_column_is_dropped(tmp_path, model):
    s, w = score(FIX/'stray_index.csv', tmp_path/'o.csv', model=model)
    got = read_text_csv(tmp_path/'o.csv')
    assert got.columns[0] == 'ID' and got['ID'].tolist() == ['950001', '950002', '950003']
    assert s.dropped_columns == [''] and any('stray index column' in m for m in w)
    plain = tmp_path/'plain.csv'
    plain.write_text('\n'.join(l.split(',', 1)[1] for l in (FIX/'stray_index.csv').read_text().splitlines()) + '\n')
    score(plain, tmp_path/'p.csv', model=model)
    assert (tmp_path/'p.csv').read_bytes() == (tmp_path/'o.csv').read_bytes()


def test_pandas_named_index_column_is_dropped_too(tmp_path, model):
    df = pd.read_csv(FIX/'customers.csv', dtype=str)
    df.to_csv(tmp_path/'indexed.csv')  # what the original tool did: header ',ID,...'
    pd.read_csv(tmp_path/'indexed.csv', dtype=str).to_csv(tmp_path/'reindexed.csv', index=False)  # header 'Unnamed: 0,ID,...'
    for f in ('indexed.csv', 'reindexed.csv'):
        s, _ = score(tmp_path/f, tmp_path/f'{f}.out', model=model)
        assert read_text_csv(tmp_path/f'{f}.out').columns[0] == 'ID' and s.rows == 12


def test_duplicate_ids_one_warning_with_totals(tmp_path, model):
    s, w = score(FIX/'duplicates.csv', tmp_path/'o.csv', model=model, chunk_size=2)
    assert s.rows == 6
    assert len(w) == 1 and '2 ID(s) occur more than once (5 rows; repeats at line(s) 4, 6, 7)' in w[0], w


def test_scored_file_cannot_be_scored_again_by_mistake(tmp_path, model):
    score(FIX/'customers.csv', tmp_path/'o.csv', model=model)
    with pytest.raises(CustomerDataError, match='already has column'): score_csv(tmp_path/'o.csv', tmp_path/'o2.csv', model=model)


def test_ragged_csv_is_a_clear_error(tmp_path, model):
    (tmp_path/'r.csv').write_text((FIX/'customers.csv').read_text() + '1,2,3\n')
    with pytest.raises(CustomerDataError, match='cannot be read as CSV'): score_csv(tmp_path/'r.csv', tmp_path/'o.csv', model=model)


# --- the model folder ----------------------------------------------------------------------------------------------

def _tampered(tmp_path, change):
    d = tmp_path/'model'
    shutil.copytree(MODEL_DIR, d)
    meta = json.loads((d/'metadata.json').read_text())
    change(meta)
    (d/'metadata.json').write_text(json.dumps(meta))
    return d


def test_model_schema_mismatch_is_a_clear_error(tmp_path):
    def rename(meta): meta['schema']['features'][0]['name'] = 'Sex'
    d = _tampered(tmp_path, rename)
    with pytest.raises(ValueError, match="input schema differs") as e: score_csv(FIX/'customers.csv', tmp_path/'o.csv', model_dir=d)
    assert type(e.value).__name__ == 'ModelLoadError' and 'Sex' in str(e.value)
    assert not (tmp_path/'o.csv').exists()


def test_model_version_mismatch_is_a_clear_error(tmp_path):
    def old_sklearn(meta): meta['versions']['scikit-learn'] = '0.24.2'
    d = _tampered(tmp_path, old_sklearn)
    with pytest.raises(ValueError, match="incompatible package versions: scikit-learn: model saved with 0.24.2") as e:
        score_csv(FIX/'customers.csv', tmp_path/'o.csv', model_dir=d)
    assert type(e.value).__name__ == 'ModelLoadError'


def test_harmless_version_difference_scores_with_a_warning(tmp_path):
    def newer_pandas(meta): meta['versions']['pandas'] = meta['versions']['pandas'].split('.')[0] + '.0.0'
    d = _tampered(tmp_path, newer_pandas)
    s, w = score(FIX/'customers.csv', tmp_path/'o.csv', model_dir=d)
    assert s.rows == 12 and any('package versions differ slightly' in m for m in w), w



def test_scoring_loads_and_refuses_models_without_tensorflow(tmp_path):
    "The numpy engine runs the shared artifact checks itself: a good model loads, and a bad one is refused, with no TensorFlow import."
    d = _tampered(tmp_path, lambda meta: meta['schema']['features'][0].update(name='Sex'))
    code = (f"import sys; from customer_segmentation.deploy import load_scoring_model\n"
            f"m = load_scoring_model({str(MODEL_DIR)!r}); print(type(m).__name__)\n"
            f"try: load_scoring_model({str(d)!r})\n"
            f"except Exception as e: print(type(e).__name__, 'Sex' in str(e))\n"
            f"print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert r.stdout.split('\n')[:3] == ['ScoringModel', 'ModelLoadError True', 'False False'], r.stdout + r.stderr


def test_harmless_version_difference_warns_once_and_keeps_numpy(tmp_path):
    d = _tampered(tmp_path, lambda meta: meta['versions'].update(pandas=meta['versions']['pandas'].split('.')[0] + '.0.0'))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        m = load_scoring_model(d)
    assert isinstance(m, ScoringModel)
    assert [type(x.message).__name__ for x in w] == ['ModelVersionWarning'] and 'pandas' in str(w[0].message)

# --- progress -------------------------------------------------------------------------------------------------------

def test_progress_bar_on_request(tmp_path, model, capsys):
    score(FIX/'customers.csv', tmp_path/'o.csv', model=model, progress=True)
    assert 'scoring customers.csv' in capsys.readouterr().err
    score(FIX/'customers.csv', tmp_path/'o.csv', model=model)  # small file: no bar by default
    assert capsys.readouterr().err == ''


# --- one validation core: the pandas loader and the streaming scorer word each problem alike ------------------------

@pytest.mark.parametrize('fixture', ['bad_age.csv', 'negative_family.csv', 'missing_column.csv'])
def test_both_readers_give_the_same_error(tmp_path, model, fixture):
    from customer_segmentation.data import load_customers
    with pytest.raises(CustomerDataError) as pandas_way: load_customers(FIX/fixture, labeled=False)
    with pytest.raises(CustomerDataError) as streaming: score_csv(FIX/fixture, tmp_path/'o.csv', model=model)
    assert str(pandas_way.value) == str(streaming.value)  # (a file of many chunks: the counts of the chunk that stops the run)


def test_both_readers_refuse_bad_headers_alike(tmp_path, model):
    from customer_segmentation.data import load_customers
    (tmp_path/'empty.csv').write_text('')
    (tmp_path/'twice.csv').write_text('ID,ID\n1,2\n')
    for f in ('empty.csv', 'twice.csv', 'absent.csv'):
        with pytest.raises(CustomerDataError) as pandas_way: load_customers(tmp_path/f, labeled=False)
        with pytest.raises(CustomerDataError) as streaming: score_csv(tmp_path/f, tmp_path/'o.csv', model=model)
        assert str(pandas_way.value) == str(streaming.value)


@pytest.mark.parametrize('fixture', ['unseen.csv', 'duplicates.csv'])
def test_both_readers_give_the_same_warnings(tmp_path, model, fixture):
    from customer_segmentation.data import load_customers
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        load_customers(FIX/fixture, labeled=False)
    _, streamed = score(FIX/fixture, tmp_path/'o.csv', model=model, chunk_size=2)  # counted across chunks
    assert streamed and sorted(str(x.message) for x in w) == sorted(streamed)
