"""The scoring engine against the training-time pipeline: the exported parameters of the project's saved model give the
Keras network's probabilities on the fitted scikit-learn preprocessor's inputs, within 1e-6, on a sample of train.csv, on
new_customers.csv and on every fixture the reference accepts (`make bench` runs the same comparison on every row). Also:
the parameters are checked against the fitted files, and scoring imports none of scikit-learn, skops, scipy or TensorFlow."""
import json, subprocess, sys, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from customer_segmentation.data import NA_VALUES, CustomerDataError, load_customers, project_path, validate_customers
from customer_segmentation.deploy import PROB_COLS, load_scoring_model
from helpers import score

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT/'tests'/'fixtures'
MODEL_DIR = project_path('saved_model')
SAMPLE = 500


@pytest.fixture(scope='module')
def reference():
    "The training-time pipeline: the Keras network on the fitted skops preprocessor."
    from customer_segmentation.fit.model import load_model
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return load_model(MODEL_DIR)


def inputs(tmp):
    "(name, CSV path) of every file compared: a sample of train.csv (labels dropped), new_customers.csv, the fixtures."
    train = pd.read_csv(project_path('dataset', 'train.csv'), dtype=str, keep_default_na=False)
    train.sample(SAMPLE, random_state=0).drop(columns='Segmentation').to_csv(tmp/'train_sample.csv', index=False)
    yield 'train.csv sample', tmp/'train_sample.csv'
    yield 'new_customers.csv', project_path('dataset', 'new_customers.csv')
    for f in sorted(FIX.glob('*.csv')):
        if f.name != 'labeled.csv': yield f.name, f


def reference_proba(model, path):
    "The reference's probabilities for the customers in `path`, or None if it refuses the file."
    sep = ';' if path.name == 'semicolon.csv' else ','
    try: raw = pd.read_csv(path, sep=sep, dtype=str, na_values=list(NA_VALUES), keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError): return None
    try: typed = validate_customers(raw, str(path), labeled=False, warn=False)
    except (CustomerDataError, ValueError): return None
    return typed['ID'].astype(str).tolist(), model.predict_proba(typed)


def test_scores_agree_with_the_training_pipeline(tmp_path, reference):
    worst, compared = 0.0, 0
    for name, path in inputs(tmp_path):
        ref = reference_proba(reference, path)
        out = tmp_path/f'{path.stem}_scored.csv'
        sep = ';' if path.name == 'semicolon.csv' else ','
        if ref is None:  # refused by the reference: refused by the scorer too
            with pytest.raises((CustomerDataError, ValueError)): score(path, out, sep=sep, drift_report=False)
            continue
        score(path, out, sep=sep, drift_report=False)
        got = pd.read_csv(out, dtype={'ID': str}, keep_default_na=False)
        assert got['ID'].tolist() == ref[0], name
        diff = float(np.abs(got[list(PROB_COLS)].to_numpy(np.float64) - ref[1]).max()) if len(got) else 0.0
        assert diff <= 1e-6, (name, diff)
        worst, compared = max(worst, diff), compared + len(got)
    assert compared > SAMPLE + 2000  # the sample, new_customers.csv and the fixtures were all compared
    print(f'max |p_engine - p_reference| over {compared} rows: {worst:.2g}')


def test_inputs_equal_the_fitted_preprocessor(reference):
    "The engine's network inputs equal ColumnTransformer.transform's on training rows (to 1e-9)."
    train = load_customers(project_path('dataset', 'train.csv')).sample(SAMPLE, random_state=1)
    X_engine = load_scoring_model(MODEL_DIR).transform(train)
    X_ref = reference.transform(train)
    assert np.abs(X_engine.astype(np.float64) - X_ref).max() <= 1e-6  # both float32
    from customer_segmentation.fit.preprocess import prepare_features
    sc = load_scoring_model(MODEL_DIR).scorer
    typed = prepare_features(train)
    from customer_segmentation.scoring.columns import Cat
    cols = {c: typed[c].to_numpy() if c in sc.numeric else Cat.typed(typed[c].to_numpy(dtype=object)) for c in sc.columns}
    assert np.abs(sc.transform(cols, np.float64) - reference.preprocessor.transform(typed)).max() <= 1e-9


def test_saved_parameters_pass_the_save_time_check(reference):
    "The committed scoring.npz, checked as save_model checks it: against the fitted preprocessor and the Keras network, on training rows."
    from customer_segmentation.fit.export_params import check_params
    from customer_segmentation.scoring.spec import PARAMS_FILE, check_binding, load_params
    params = load_params(MODEL_DIR/PARAMS_FILE)
    check_binding(params, MODEL_DIR)
    train = load_customers(project_path('dataset', 'train.csv')).head(2000)
    from customer_segmentation.fit.preprocess import prepare_features
    typed = prepare_features(train)
    rows = {c: typed[c].tolist() for c in typed.columns}
    res = check_params(params, reference.preprocessor, reference.network, rows=rows)
    assert res['transform_max_diff'] <= 1e-9 and res['proba_max_diff'] <= 1e-6, res


def test_scoring_imports_no_training_library(tmp_path):
    "A scoring run in a fresh process imports none of scikit-learn, skops, scipy, TensorFlow, Keras, h5py, pandas or Matplotlib."
    code = (f"import sys, warnings; warnings.simplefilter('ignore')\n"
            f"from customer_segmentation.cli import main\n"
            f"rc = main(['score', {str(FIX/'customers.csv')!r}, '-o', {str(tmp_path/'o.csv')!r}])\n"
            f"print(sorted(m for m in ('sklearn', 'skops', 'scipy', 'tensorflow', 'keras', 'h5py', 'pandas', 'matplotlib') if m in sys.modules), rc)")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == '[] 0', r.stdout
