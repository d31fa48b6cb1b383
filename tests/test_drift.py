"""The drift check on every scoring run (issue: the new market): same-market samples pass, real shifts are flagged on the
right feature, the report lands where the user expects, and an older model folder without a profile still scores."""
import json, shutil, subprocess, sys, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from customer_segmentation.deploy import score_csv
from customer_segmentation.scoring.drift import PROFILE_FILE
from customer_segmentation.files import project_path

ROOT = Path(__file__).resolve().parents[1]
CUSTSEG = Path(sys.executable).parent/'custseg'
TRAIN = pd.read_csv(project_path('dataset', 'train.csv'), dtype=str, keep_default_na=False).drop(columns=['Segmentation'])


def _bootstrap(seed, n=3000):
    "Customers of the training market that are not the training rows themselves: a bootstrap sample with fresh IDs."
    b = TRAIN.iloc[np.random.default_rng(seed).integers(0, len(TRAIN), n)].reset_index(drop=True)
    return b.assign(ID=[str(900000 + i) for i in range(n)])


def _score(df, tmp_path, name='scored.csv', **kw):
    inp = tmp_path/'customers.csv'
    df.to_csv(inp, index=False)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        s = score_csv(inp, tmp_path/name, **kw)
    return s, [str(x.message) for x in w]


def test_same_market_sample_is_not_flagged_and_the_report_lands_beside_the_output(tmp_path):
    s, w = _score(_bootstrap(1), tmp_path)
    assert s.drift is not None and not s.drift['drifted'], s.drift['drifted_features']
    assert not any('differ from the training customers' in m for m in w), w
    rep = json.loads((tmp_path/'scored_drift.json').read_text())
    assert {'drifted', 'features', 'domain_auc', 'segment_mix'} <= set(rep)
    assert all('drifted' in f and 'psi' in f and 'p_value' in f for f in rep['features'].values())
    assert 0.45 <= rep['domain_auc'] < 0.6 and sum(rep['segment_mix']['scored'].values()) == pytest.approx(1)
    assert not (tmp_path/'scored_drift.png').exists()  # no drift: no figure unless asked
    assert str(s).count('\n') >= 2 and 'No drift:' in str(s)
    s, _ = _score(_bootstrap(1), tmp_path, drift_figure=True)
    assert (tmp_path/'scored_drift.png').read_bytes()[:4] == b'\x89PNG' and s.drift_paths[1].endswith('scored_drift.png')


@pytest.mark.parametrize('shift, feature', [
    (lambda d: d.assign(Age=(d['Age'].astype(int) + 15).astype(str)), 'Age'),
    (lambda d: d.assign(Profession=d['Profession'].where(np.random.default_rng(0).random(len(d)) > 0.4, 'Astronaut')), 'Profession'),
    (lambda d: d.assign(Spending_Score=d['Spending_Score'].map({'Low': 'High', 'High': 'Low', 'Average': 'Average'})), 'Spending_Score'),
])
def test_a_real_shift_is_flagged_on_its_feature(tmp_path, shift, feature):
    s, w = _score(shift(_bootstrap(2)), tmp_path)
    assert s.drift['drifted'] and feature in s.drift['drifted_features'], s.drift['drifted_features']
    assert s.drift['features'][feature]['drifted'] and s.drift['features'][feature]['psi'] >= 0.1
    assert any(feature in m and 'differ from the training customers' in m for m in w), w
    assert str(s).splitlines()[2].startswith('Drift: ')
    assert (tmp_path/'scored_drift.png').read_bytes()[:4] == b'\x89PNG'  # drift found: the figure is drawn


def test_an_older_model_without_a_profile_scores_with_a_warning(tmp_path):
    old = tmp_path/'old_model'
    shutil.copytree(project_path('saved_model'), old)
    (old/PROFILE_FILE).unlink()
    s, w = _score(_bootstrap(3, 300), tmp_path, model_dir=old)
    assert s.rows == 300 and s.drift is None
    assert sum('no drift check is possible' in m for m in w) == 1, w
    assert not (tmp_path/'scored_drift.json').exists()


def _cli(*args, cwd):
    return subprocess.run([str(CUSTSEG), 'score', *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_cli_report_options(tmp_path):
    _bootstrap(4, 400).to_csv(tmp_path/'c.csv', index=False)
    r = _cli('c.csv', '-o', 'a.csv', '--no-drift-report', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'drift' in r.stdout.lower() and not list(tmp_path.glob('*_drift.*'))
    r = _cli('c.csv', '-o', 'b.csv.gz', '--drift-report', 'reports.json', '--drift-figure', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path/'reports.json').read_text())['rows'] == 400 and (tmp_path/'reports.png').exists()
    r = _cli('c.csv', '-o', '-', cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith('ID,') and 'drift' in r.stderr.lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.csv', 'b.csv.gz', 'c.csv', 'reports.json', 'reports.png']


def test_a_report_folder_that_does_not_exist_is_made_and_a_file_in_the_way_refused(tmp_path):
    "Missing folders on the way to the report are made, as for every output; a file where a folder belongs is refused before any work."
    _bootstrap(5, 300).to_csv(tmp_path/'c.csv', index=False)
    r = _cli('c.csv', '-o', 'a.csv', '--drift-report', 'nowhere/r.json', cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path/'nowhere'/'r.json').is_file(), r.stderr
    r = _cli('c.csv', '-o', 'b.csv', '--drift-report', 'c.csv/r.json', cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith('custseg: error: '), r.stderr
    assert 'c.csv: is a file, so c.csv/r.json cannot be made inside it' in r.stderr and not (tmp_path/'b.csv').exists()
