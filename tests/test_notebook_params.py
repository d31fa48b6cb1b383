"""Notebooks run as jobs refuse parameters they do not define (issue #19): papermill only warns "Passed unknown parameter"
and runs on, so each notebook with a `parameters` cell checks papermill's names itself, before it trains or writes anything."""
import ast, json, os, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
JOB_NOTEBOOKS = sorted(p for p in (ROOT/'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts
                       if any('parameters' in c['metadata'].get('tags', []) for c in json.loads(p.read_text())['cells']))


def tree_state(*dirs):
    "Path, bytes and modification time of every file under `dirs` (relative to the project)."
    return {str(p.relative_to(ROOT)): (p.read_bytes(), p.stat().st_mtime_ns) for d in dirs for p in sorted((ROOT/d).rglob('*')) if p.is_file()}


def test_job_notebooks():
    "The notebooks with a `parameters` cell, research notebooks included: a new one gets the check below."
    assert [str(p.relative_to(ROOT/'nbs')) for p in JOB_NOTEBOOKS] == ['05_modelling.ipynb', '06_deploy.ipynb', 'research/expected_accuracy.ipynb',
                                                                   'research/recipe_search.ipynb']


@pytest.mark.parametrize('path', JOB_NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_is_checked(path):
    "Names recorded in the cell before the `parameters` cell, checked in the cell after it against a tuple of exactly its names."
    cells = [c for c in json.loads(path.read_text())['cells'] if c['cell_type'] == 'code']
    src = [''.join(c['source']) for c in cells]
    i, = [i for i, c in enumerate(cells) if 'parameters' in c['metadata'].get('tags', [])]
    assert ast.unparse(ast.parse(src[i-1]).body[-1]) == '_names_before_parameters = set(globals())'
    call = ast.parse(src[i+1]).body[0].value
    assert ast.unparse(call.func) == 'check_parameters' and [ast.unparse(a) for a in call.args[:2]] == ['_names_before_parameters', 'globals()']
    known = call.args[2].id
    tuples = {t.id: ast.literal_eval(n.value) for s in src for n in ast.parse(s).body if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Name) and t.id == known}
    assert tuples[known] == tuple(t.id for n in ast.parse(src[i]).body for t in n.targets)


def test_modelling_refuses_an_unknown_parameter(tmp_path):
    "`papermill nbs/05_modelling.ipynb ... -p train_path x.csv` fails at the check: nothing trained, saved_model/ and results/ untouched."
    before = tree_state('saved_model', 'results')
    cmd = [str(BIN/'papermill'), '--cwd', str(ROOT/'nbs'), '--log-level', 'WARNING', str(ROOT/'nbs'/'05_modelling.ipynb'),
           str(tmp_path/'run.ipynb'), '-p', 'train_path', 'x.csv', '-p', 'n_repeats', '1']
    env = {**os.environ, 'IN_TEST': '', 'TF_CPP_MIN_LOG_LEVEL': '2'}  # the real job, which writes to saved_model/ and results/
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode != 0
    assert ("ParameterError: unknown parameter(s) 'train_path' (did you mean 'train_paths'?); this notebook's parameters are config_overrides, n_repeats, importance_perms, train_paths, model_dir, results_dir."
            in r.stderr), r.stderr[-3000:]
    assert tree_state('saved_model', 'results') == before
    # it stopped at the cell after papermill's injected one: no later cell ran (the full run trains for minutes)
    cells = [c for c in json.loads((tmp_path/'run.ipynb').read_text())['cells'] if c['cell_type'] == 'code']
    i, = [i for i, c in enumerate(cells) if 'injected-parameters' in c['metadata'].get('tags', [])]
    assert 'check_parameters(' in ''.join(cells[i+1]['source']) and cells[i+1]['metadata']['papermill']['exception']
    assert all(c['execution_count'] is None for c in cells[i+2:])
