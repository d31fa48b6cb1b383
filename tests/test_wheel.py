"""The package as a user installs it: a wheel built from this checkout, installed into a fresh virtual environment outside
the checkout (scoring dependencies only, no TensorFlow), scores a customer file from a folder of the user's own."""
import shutil, subprocess, sys, venv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NEW = ROOT/'dataset'/'new_customers.csv'


def _run(*cmd, cwd=None, timeout=900):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope='module')
def wheel_env(tmp_path_factory):
    "A fresh venv, outside the checkout, with the project's wheel installed (its scoring dependencies only)."
    tmp = tmp_path_factory.mktemp('wheel')
    src = tmp/'src'  # a copy of what the build reads, so that building leaves no build/ folder in the checkout
    src.mkdir()
    for f in ('setup.py', 'settings.ini', 'pyproject.toml', 'README.md'): shutil.copy(ROOT/f, src/f)
    for d in ('customer_segmentation', 'saved_model'): shutil.copytree(ROOT/d, src/d, ignore=shutil.ignore_patterns('__pycache__'))
    _run(sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', tmp/'dist', src, cwd=tmp)
    whl, = (tmp/'dist').glob('customer_segmentation-*.whl')
    env = tmp/'venv'
    venv.EnvBuilder(with_pip=True).create(env)
    _run(env/'bin'/'python', '-m', 'pip', 'install', '-q', '--disable-pip-version-check', whl, cwd=tmp)
    return env, tmp


def test_wheel_ships_the_model_and_no_tensorflow(wheel_env):
    env, tmp = wheel_env
    r = _run(env/'bin'/'python', '-c', "import importlib.util as u, customer_segmentation.artifact as a; "
             "print(u.find_spec('tensorflow') is None); print(a.default_model_dir().relative_to(a.default_model_dir().parents[1]))",
             cwd=tmp)
    no_tf, where = r.stdout.split()
    assert no_tf == 'True', "the scoring install pulled in TensorFlow: keep training dependencies in the [train] extra"
    assert where == 'customer_segmentation/saved_model', where


def test_wheel_scores_from_a_folder_of_its_own(wheel_env, tmp_path):
    env, _ = wheel_env
    campaign = tmp_path/'campaign'; campaign.mkdir()
    (campaign/'customers.csv').write_bytes(NEW.read_bytes())
    _run(env/'bin'/'custseg', 'score', 'customers.csv', '-o', 'scored.csv', cwd=campaign)
    _run(ROOT/'.venv'/'bin'/'custseg', 'score', NEW, '-o', tmp_path/'reference.csv', cwd=tmp_path)
    got, ref = pd.read_csv(campaign/'scored.csv', dtype=str), pd.read_csv(tmp_path/'reference.csv', dtype=str)
    assert list(got.columns) == list(ref.columns) and len(got) == len(ref) == len(pd.read_csv(NEW))
    assert (got['ID'] == ref['ID']).all() and (got['Segmentation'] == ref['Segmentation']).all()
    probs = [c for c in got.columns if c.startswith('prob_')]
    assert np.abs(got[probs].astype(float).to_numpy() - ref[probs].astype(float).to_numpy()).max() <= 1e-6
    # the output and its drift report (the wheel ships the training profile); nothing else, no temporary file
    assert sorted(p.name for p in campaign.iterdir()) == ['customers.csv', 'scored.csv', 'scored_drift.json']  # no drift: no figure


def test_wheel_scores_stdin_to_stdout_and_refuses_bad_input(wheel_env, tmp_path):
    env, _ = wheel_env
    r = subprocess.run([str(env/'bin'/'custseg'), 'score', '-', '-o', '-'], input=NEW.read_bytes(), cwd=tmp_path, capture_output=True, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith(b'ID,Gender') and b'Scored 2,627 rows of <stdin>' in r.stderr, r.stderr[-2000:]
    r = subprocess.run([str(env/'bin'/'custseg'), 'score', str(tmp_path), '-o', 'x.csv'], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.startswith('custseg: error: ') and 'is a folder that holds no partitions' in r.stderr  # a folder holds partitions
