"""The `custseg` console script end to end (subprocesses of the installed entry point) and `cli.main` in process."""
import subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

import customer_segmentation
from customer_segmentation.cli import main

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT/'tests'/'fixtures'
CUSTSEG = str(Path(sys.executable).parent/'custseg')


def run(*args):
    return subprocess.run([CUSTSEG, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_help_and_version():
    r = run('--help')
    assert r.returncode == 0 and 'score' in r.stdout and 'data' in r.stdout
    r = run('score', '--help')
    assert r.returncode == 0 and all(o in r.stdout for o in ('-o OUTPUT', '--model-dir', '--chunk-size', 'INPUT'))
    r = run('--version')
    assert r.returncode == 0 and r.stdout.strip() == f'custseg {customer_segmentation.__version__}'


def test_score_end_to_end(tmp_path):
    out = tmp_path/'scored.csv'
    r = run('score', FIX/'customers.csv', '-o', out, '--model-dir', ROOT/'saved_model', '--chunk-size', 5,
            '--labeled', FIX/'labeled.csv')
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('Scored 12 rows of') and 'Known customers: 3 of 12 appear in' in r.stdout
    inp, got = pd.read_csv(FIX/'customers.csv', dtype=str), pd.read_csv(out, dtype=str)
    pd.testing.assert_frame_equal(got[inp.columns], inp)
    assert list(got.columns[len(inp.columns):]) == ['Segmentation', 'prob_A', 'prob_B', 'prob_C', 'prob_D', 'Segment_Set', 'Set_Size', 'Known_Segmentation']


def test_score_user_errors_exit_2_with_one_line(tmp_path):
    r = run('score', FIX/'bad_age.csv', '-o', tmp_path/'o.csv')
    assert r.returncode == 2 and r.stderr.startswith('custseg: error: ') and 'column Age must be numeric' in r.stderr
    assert 'Traceback' not in r.stderr and not (tmp_path/'o.csv').exists()
    r = run('score', FIX/'customers.csv', '-o', tmp_path/'o.csv', '--model-dir', tmp_path)
    last = r.stderr.strip().splitlines()[-1]  # TensorFlow may log to stderr first (load_model gives the model's error)
    assert r.returncode == 2 and last.startswith('custseg: error: ') and 'missing file(s)' in last
    assert 'Traceback' not in r.stderr


def test_score_warnings_go_to_stderr(tmp_path, capsys):
    assert main(['score', str(FIX/'unseen.csv'), '-o', str(tmp_path/'o.csv')]) == 0
    cap = capsys.readouterr()
    warn = [l for l in cap.err.splitlines() if l.startswith('custseg: warning: ') and 'records no training ranges' not in l]
    assert len(warn) == 2 and any("'Astronaut': 2" in l for l in warn)
    assert cap.out.startswith('Scored 5 rows')


@pytest.mark.parametrize('fixture,msg', [('missing_column.csv', 'missing required column(s) Profession, Var_1'),
                                         ('negative_family.csv', 'column Family_Size must not be negative')])
def test_score_bad_input_in_process(tmp_path, capsys, fixture, msg):
    assert main(['score', str(FIX/fixture), '-o', str(tmp_path/'o.csv')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('custseg: error: ') and msg in err and fixture in err


def test_score_refuses_input_as_output(tmp_path, capsys):
    inp = tmp_path/'in.csv'
    inp.write_bytes((FIX/'customers.csv').read_bytes())
    assert main(['score', str(inp), '-o', str(inp)]) == 2
    assert 'never overwrites its own input' in capsys.readouterr().err
    assert inp.read_bytes() == (FIX/'customers.csv').read_bytes()


def test_score_rejects_option(tmp_path, capsys):
    assert main(['score', str(FIX/'bad_age.csv'), '-o', str(tmp_path/'o.csv'), '--rejects', str(tmp_path/'rej.csv')]) == 0
    assert pd.read_csv(tmp_path/'rej.csv', dtype=str)['ID'].tolist() == ['920002', '920004']
    assert 'Rejected: 2 rows' in capsys.readouterr().out


def test_chunk_size_must_be_positive(capsys):
    with pytest.raises(SystemExit) as e: main(['score', 'x.csv', '-o', 'y.csv', '--chunk-size', '0'])
    assert e.value.code == 2 and 'must be a positive integer' in capsys.readouterr().err
