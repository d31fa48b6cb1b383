"""The cross-validation scripts in bench/ refuse bad arguments before any compute, and share one way to read the
training data and write their JSON. (What they measure takes minutes: `make cv-estimate`, `make blend-cv`.)"""
import json, sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'bench'))
import blend_cv, cv_common, cv_estimate  # noqa: E402


@pytest.mark.parametrize('main', [cv_estimate.main, blend_cv.main])
@pytest.mark.parametrize('argv, message', [
    (['--k', '1'], '--k: each scheme needs at least 2 folds, got 1'),
    (['--k', '5', '5'], '--k: each value once, got 5 5'),
    (['--repeats', '0'], '--repeats: at least 1, got 0'),
    (['--out', '/no/such/folder/x.json'], '--out: folder /no/such/folder does not exist'),
])
def test_bad_arguments_are_refused_before_compute(main, argv, message, capsys):
    with pytest.raises(SystemExit) as e: main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_repeated_seeds_are_refused(capsys):
    with pytest.raises(SystemExit): cv_estimate.main(['--seeds', '42', '42'])
    assert '--seeds: each value once, got 42 42' in capsys.readouterr().err


def test_out_defaults_to_the_given_file(tmp_path):
    a = cv_common.parse_checked(cv_common.fold_parser('x'), ['--k', '10'], str(tmp_path/'d.json'))
    assert (a.k, a.repeats, a.out) == ([10], 2, str(tmp_path/'d.json'))


def test_training_data_and_json(tmp_path):
    train, y, data = cv_common.training_data()
    assert len(train) == len(y) == data['rows'] > 0
    assert set(np.unique(y)) == {0, 1, 2, 3}
    assert len(data['sha256']) == 64
    out = tmp_path/'r.json'
    cv_common.write_json(out, {'data': data})
    assert json.loads(out.read_text()) == {'data': data}
    assert [p.name for p in tmp_path.iterdir()] == ['r.json']  # no temporary file left behind


def test_failed_json_write_leaves_nothing(tmp_path):
    out = tmp_path/'r.json'
    out.write_text('{"old": 1}\n')
    with pytest.raises(TypeError): cv_common.write_json(out, {'not json': object()})
    assert json.loads(out.read_text()) == {'old': 1}  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ['r.json']  # and no temporary file is left
