"""The cross-validation scripts in bench/ refuse bad arguments before any compute, and share one way to read the
training data and write their JSON. (What they measure takes minutes: `make cv-estimate`, `make blend-cv`.)"""
import json, subprocess, sys
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


# bench/score_speed.py and bench/agreement.py (issue #13's benchmark, `make bench`): their arguments and measuring parts
import agreement, score_speed  # noqa: E402


@pytest.mark.parametrize('main, argv, message', [
    (score_speed.main, ['--rounds-cold', '0'], '--rounds-cold: at least 1, got 0'),
    (score_speed.main, ['--quick', '--rounds-1e6', '2'], '--rounds-1e6: --quick measures the cold case only'),
    (score_speed.main, ['--out', '/no/such/folder/x.json'], '--out: folder /no/such/folder does not exist'),
    (agreement.main, ['--sample', '0'], '--sample: at least 1 row, got 0'),
    (agreement.main, ['--json', '/no/such/folder/x.json'], '--json: folder /no/such/folder does not exist'),
])
def test_speed_benchmark_refuses_bad_arguments_before_compute(main, argv, message, capsys):
    with pytest.raises(SystemExit) as e: main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_peak_memory_is_each_childs_own(tmp_path):
    # from a small parent, as in the benchmark: on Linux a child's peak starts at its parent's (the peak survives fork and exec)
    code = (f"import sys; sys.path.insert(0, {str(ROOT/'bench')!r}); import score_speed as s; from pathlib import Path; t = Path({str(tmp_path)!r}); "
            "big = s.timed([sys.executable, '-c', 'b = bytearray(200 << 20); b[::4096] = b\"x\" * len(b[::4096])'], t/'a.log'); "
            "small = s.timed([sys.executable, '-c', 'pass'], t/'b.log'); print(big[1], small[1])")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    big, small = map(float, r.stdout.split())
    assert big > 200 > small, (big, small, r.stderr)  # MB: the second child's peak does not include the first's
    with pytest.raises(RuntimeError, match='exit 3'): score_speed.timed([sys.executable, '-c', 'raise SystemExit(3)'], tmp_path/'c.log')


def test_goals_from_cases():
    case = lambda name, ratio, peak: {'case': name, 'ratio': ratio, 'custseg': {'peak_mb_median': peak}}
    g = score_speed.goals([case('cold', 1.2, 300), case('1e6', 1.6, 350), case('1e7', 1.4, 700)], None)
    assert (g['cold_ratio']['met'], g['ratio_1e6']['met'], g['peak_mb_1e6']['met']) == (True, False, True)
    assert g['peak_growth_1e7']['value'] == 2 and g['peak_growth_1e7']['met'] is False
    assert g['agreement_max_diff'] == {'value': None, 'limit': 1e-6, 'met': None}
