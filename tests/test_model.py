"""The model contract: saved_model/ loads safely and predicts; save/load round trip; tampered artifacts are refused."""
import ast, json, os, shutil, warnings
from pathlib import Path

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import numpy as np
import pandas as pd
import pytest

from customer_segmentation import artifact as A
from customer_segmentation.fit import model as M
from customer_segmentation.fit import preprocess as P
from customer_segmentation.scoring.drift import PROFILE_FILE
from customer_segmentation.data import (CATEGORICAL_FEATURES, CATEGORY_VALUES, CLASSES, DATA_FILES, FEATURES, ID_COL,
                                        TARGET, schema)

ROOT = Path(__file__).resolve().parents[1]
SAVED = ROOT/'saved_model'


def synthetic(n=400, seed=0):
    "A typed, labeled customer frame whose segment depends on Spending_Score and Age (plus noise)."
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({ID_COL: np.arange(n) + 1000})
    for c in CATEGORICAL_FEATURES:
        v = rng.choice(np.array(CATEGORY_VALUES[c], dtype=object), n).astype(object)
        v[rng.random(n) < 0.05] = np.nan
        df[c] = pd.Series(v, dtype=object)
    df['Age'] = rng.integers(18, 90, n).astype(float)
    df['Work_Experience'] = np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 15, n)).astype(float)
    df['Family_Size'] = rng.integers(1, 9, n).astype(float)
    score = (df['Spending_Score'].map({'Low': 0, 'Average': 1, 'High': 2}).fillna(1) + (df['Age'] > 50)).to_numpy()
    lab = np.clip(score + (rng.random(n) < 0.2), 0, 3).astype(int)
    df[TARGET] = np.asarray(CLASSES, dtype=object)[lab]
    return df[[ID_COL, *FEATURES, TARGET]]


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "A tiny model trained on synthetic data and saved; (model, folder)."
    cfg = M.NetConfig(widths=(8, 4), n_seeds=2, epochs=3, batch_size=64)
    m, _ = M.train_segment_model(synthetic(), cfg)
    d = M.save_model(m, tmp_path_factory.mktemp('art')/'m')
    return m, d


def tampered(src, dst, edit=None, drop=None):
    shutil.copytree(src, dst)
    if drop: (dst/drop).unlink()
    if edit:
        meta = json.loads((dst/'metadata.json').read_text()); edit(meta); (dst/'metadata.json').write_text(json.dumps(meta))
    return dst


# --- the committed saved_model/ ---

def test_saved_model_has_exactly_the_contract_files():
    assert sorted(p.name for p in SAVED.iterdir()) == sorted([*A.MODEL_FILES, PROFILE_FILE, A.TRAINING_IDS_FILE])


def test_saved_model_loads_and_predicts():
    m = M.load_model(SAVED)
    assert m.classes == CLASSES and len(m.network.outputs) == 1
    df = synthetic(300, seed=1)
    p = m.predict_proba(df.assign(extra='ignored'))
    assert p.shape == (300, 4) and np.isfinite(p).all() and (p >= 0).all()
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-9)
    assert set(m.predict(df)) <= set(CLASSES)
    np.testing.assert_allclose(m.predict_proba(df[list(reversed(df.columns))]), p)  # column order irrelevant


def test_saved_model_metadata_records_what_deployment_needs():
    meta = json.loads((SAVED/'metadata.json').read_text())
    assert meta['schema'] == schema() and meta['classes'] == list(CLASSES)
    assert meta['format_version'] == M.FORMAT_VERSION
    cfg = M.NetConfig.from_dict(meta['config'])
    assert len(cfg.widths) == 2 and meta['seed'] == cfg.seed
    assert meta['training']['sha256'] == DATA_FILES['train.csv'] and meta['training']['rows'] == 6068
    for p in ('tensorflow', 'keras', 'scikit-learn', 'pandas', 'numpy', 'skops'): assert meta['versions'][p]


def test_saved_network_has_two_hidden_layers_per_seed_copy():
    m = M.load_model(SAVED)
    dense = [l for l in m.network.layers if l.__class__.__name__ == 'Dense']
    hidden = [l for l in dense if 'hidden' in l.name]
    assert len(dense) == 3 * m.config.n_seeds and len(hidden) == 2 * m.config.n_seeds


def test_unseen_category_is_unknown_not_an_error():
    m = M.load_model(SAVED)
    df = synthetic(50, seed=2).assign(Profession='Astronaut', Var_1='Cat_99')
    X = m.transform(df)
    cols = [i for i, n in enumerate(m.metadata['input_features']) if 'Profession' in n or 'Var_1' in n]
    assert X[:, cols].sum() == 0
    assert np.isfinite(m.predict_proba(df)).all()


# --- round trip and checks, on a tiny model ---

def test_round_trip(tiny, tmp_path):
    m, d = tiny
    df = synthetic(100, seed=3)
    np.testing.assert_allclose(M.load_model(d).predict_proba(df), m.predict_proba(df), atol=1e-6)
    assert [p.name for p in d.parent.iterdir()] == ['m']  # no temporary folders left


def test_saved_folder_is_readable_like_any_folder(tiny, tmp_path):
    d = M.save_model(tiny[0], tmp_path/'saved')
    (tmp_path/'plain').mkdir()
    assert d.stat().st_mode == (tmp_path/'plain').stat().st_mode  # the umask's permissions, not a temporary folder's 0700


def test_save_replaces_and_failed_save_keeps_old(tiny, tmp_path, monkeypatch):
    m, d = tiny
    target = tmp_path/'saved'
    M.save_model(m, target)
    before = (target/'metadata.json').read_bytes()
    def boom(model, folder):
        (folder/'model.keras').write_bytes(b'partial'); raise OSError('disk full')
    monkeypatch.setattr(M, '_write_artifact', boom)
    with pytest.raises(OSError): M.save_model(m, target)
    assert (target/'metadata.json').read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['saved']


@pytest.mark.parametrize('case,edit,drop,msg', [
    ('missing file', None, 'model.keras', 'missing file(s) model.keras'),
    ('schema', lambda m: m['schema']['features'].pop(), None, 'input schema differs'),
    ('category values', lambda m: m['schema']['features'][0].update(values=['F', 'M']), None, 'feature Gender'),
    ('classes', lambda m: m.update(classes=['A', 'B']), None, 'classes'),
    ('major version', lambda m: m['versions'].update(tensorflow='9.0.0'), None, 'tensorflow: model saved with 9.0.0'),
    ('sklearn minor', lambda m: m['versions'].update({'scikit-learn': '1.0.0'}), None, 'scikit-learn: model saved with 1.0.0'),
    ('format', lambda m: m.update(format_version=0), None, 'format_version'),
    ('no versions', lambda m: m.pop('versions'), None, 'lacks versions'),
])
def test_tampered_artifacts_are_refused(tiny, tmp_path, case, edit, drop, msg):
    d = tampered(tiny[1], tmp_path/'t', edit, drop)
    with pytest.raises(M.ModelLoadError, match=None) as e: M.load_model(d)
    assert msg in str(e.value), str(e.value)


def test_patch_version_difference_only_warns(tiny, tmp_path):
    def bump(m):
        v = A._release(m['versions']['numpy'])
        m['versions']['numpy'] = f'{v[0]}.{v[1]}.{v[2] + 1 if len(v) > 2 else 1}'
    d = tampered(tiny[1], tmp_path/'t', bump)
    with pytest.warns(M.ModelVersionWarning, match='numpy'): M.load_model(d)


def test_invalid_metadata_json(tiny, tmp_path):
    d = tampered(tiny[1], tmp_path/'t')
    (d/'metadata.json').write_text('{not json')
    with pytest.raises(M.ModelLoadError, match='not valid JSON'): M.load_model(d)


# --- no pickle, safe loaders ---

FORBIDDEN_MODULES = {'pickle', 'cPickle', 'joblib', 'dill', 'cloudpickle', 'h5py', 'shelve', 'marshal'}

@pytest.mark.parametrize('mod', ['preprocess', 'artifact', 'model'])
def test_loading_code_uses_no_pickle(mod):
    src = (ROOT/'customer_segmentation'/f'{mod}.py').read_text()
    tree = ast.parse(src)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import): imported |= {a.name.split('.')[0] for a in node.names}
        if isinstance(node, ast.ImportFrom) and node.module: imported.add(node.module.split('.')[0])
    assert not imported & FORBIDDEN_MODULES
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert not [s for s in strings if s.endswith(('.h5', '.hdf5', '.pkl', '.pickle', '.joblib'))]


def test_loaders_are_called_in_safe_mode(tiny, monkeypatch):
    calls = {}
    real_keras, real_skops = M.keras.models.load_model, P.sio.load
    def keras_load(*a, **k): calls['keras'] = k; return real_keras(*a, **k)
    def skops_load(*a, **k): calls['skops'] = k; return real_skops(*a, **k)
    monkeypatch.setattr(M.keras.models, 'load_model', keras_load)
    monkeypatch.setattr(P.sio, 'load', skops_load)
    M.load_model(tiny[1])
    assert calls['keras'].get('safe_mode') is True
    assert list(calls['skops']['trusted']) == list(P.TRUSTED_TYPES)


def test_artifact_needs_only_trusted_types():
    assert set(P.sio.get_untrusted_types(file=SAVED/'preprocessor.skops')) <= set(P.TRUSTED_TYPES)


# --- the stored results that notebook 03, the README and the research notebooks read ---

RESULTS = ROOT/'results'
METRICS_KEYS = {  # metrics.json's keys (the README's model table reads them): top level, and the keys under each
    'data': {'file', 'sha256', 'rows'}, 'seed': None, 'config': None, 'versions': None,
    'cv': {'scheme', 'folds', 'leaderboard', 'paired_vs_network', 'per_fold', 'blend_with_gradient_boosting'},
    'network': {'name', 'expected', 'per_class_oof', 'confusion_oof', 'ece_oof', 'learning_curve', 'expected_shipped',
                'permutation_importance', 'epoch_choice'},
    'final_model': {'epochs_run', 'fit_rows', 'seconds'},
    'timings': {'network_cv_seconds', 'early_stopping_runs_seconds', 'learning_curve_seconds', 'score_rows', 'score_seconds',
                'score_rows_per_second'},
    'config_search': None, 'duplicates': None}


def test_metrics_json_keeps_its_keys():
    m = json.loads((RESULTS/'metrics.json').read_text())
    assert set(METRICS_KEYS) <= set(m)
    for k, sub in METRICS_KEYS.items():
        if sub: assert sub <= set(m[k]), f'metrics.json[{k!r}] lacks {sorted(sub - set(m[k]))}'
    board = {r['model']: r for r in m['cv']['leaderboard']}
    assert m['network']['name'] in board and {'accuracy_mean', 'accuracy_std', 'log_loss_mean'} <= set(board[m['network']['name']])


@pytest.mark.parametrize('name', ['learning_curve', 'epoch_study', 'recipe_search', 'cv_estimate', 'cv_estimate_20fold', 'blend_cv'])
def test_research_results_measured_the_shipped_recipe(name):
    "Each stored research result was measured for the recipe the saved model was trained with (else: rerun its notebook or script)."
    doc = json.loads((RESULTS/f'{name}.json').read_text())
    saved = json.loads((SAVED/'metadata.json').read_text())['config']
    assert doc.get('config', doc.get('network_config')) == saved
    assert doc['data']['sha256'] == DATA_FILES['train.csv']


def test_metrics_json_matches_the_saved_model():
    m = json.loads((RESULTS/'metrics.json').read_text())
    meta = json.loads((SAVED/'metadata.json').read_text())
    assert m['config'] == meta['config'] and m['data']['sha256'] == meta['training']['sha256']
    assert m['network']['expected']['accuracy_mean'] == meta['metrics']['cv']['accuracy_mean']
    assert m['network']['expected_shipped'] == meta['metrics']['cv_10fold']
