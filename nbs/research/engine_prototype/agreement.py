"""Agreement: max |p_fast - p_reference| on every row of train.csv, new_customers.csv and the scoreable test fixtures,
reference = the Keras model's predict on the scikit-learn preprocessor's output (customer_segmentation.model.load_model).
Also check_params with the Keras network (weights bit-equal, probe probabilities) and the variants of the forward pass."""
import sys, time, warnings, json
from pathlib import Path
HERE = Path(__file__).parent
sys.path.insert(0, str(HERE/'pkg_snapshot')); sys.path.insert(0, str(HERE))
warnings.simplefilter('ignore')
import numpy as np, pyarrow as pa, pyarrow.csv as pacsv
import engine as E
from customer_segmentation.model import load_model
from customer_segmentation.data import load_customers, read_customers_csv, validate_customers, NA_VALUES
assert tuple(NA_VALUES) == E.NA_VALUES

m = load_model(HERE/'model_snapshot')
params = E.export_params(m.preprocessor, m.network, classes=list(m.classes))
import pandas as pd
train = pd.read_csv('/work/main/dataset/train.csv', dtype=str, keep_default_na=False, na_values=list(NA_VALUES))
rows = {c: (pd.to_numeric(train[c]).tolist() if c in ('Age', 'Work_Experience', 'Family_Size') else train[c].tolist())
        for c in params['spec']['preprocessing']['columns']}
print('check_params with the Keras network:', E.check_params(params, m.preprocessor, m.network, rows=rows))
E.add_golden(params, m.preprocessor, m.network)
E.bind(params, HERE/'model_snapshot')
E.save_params(params, HERE/'scoring.npz')
params = E.load_params(HERE/'scoring.npz')
print('golden check after load:', E.check_golden(params)); E.check_binding(params, HERE/'model_snapshot')

files = ['/work/main/dataset/train.csv', '/work/main/dataset/new_customers.csv'] + \
        [str(p) for p in sorted(Path('/work/main/tests/fixtures').glob('*.csv'))]
variants = {'2 threads x BLAS 1, batch 2048': dict(threads=2, batch=2048),
            '1 thread x BLAS 2, batch 65536': dict(threads=1, batch=65536)}
worst = {}
for f in files:
    try:
        raw = read_customers_csv(f)
        if raw.columns[0].strip() in ('', 'Unnamed: 0'): raw = raw.drop(columns=raw.columns[0])
        df = validate_customers(raw, f, labeled=False, warn=False)
    except Exception as e:
        print(f'{Path(f).name}: not scoreable by the reference ({type(e).__name__}); skipped'); continue
    if len(df) == 0: print(f'{Path(f).name}: no rows'); continue
    ref = m.predict_proba(df)
    with open(f, 'rb') as fh: header = fh.readline().decode('utf-8-sig').rstrip('\r\n').split(',')
    t = pacsv.read_csv(f, read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
                       convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header},
                                                            strings_can_be_null=False, quoted_strings_can_be_null=False))
    line = []
    for name, kw in variants.items():
        sc = E.Scorer(params, **kw)
        with E.blas_threads(1 if kw['threads'] > 1 else 2):
            p = sc.predict_proba(t)
        d = float(np.max(np.abs(p - ref)))
        worst[name] = max(worst.get(name, 0), d)
        line.append(f'{name}: {d:.3g}')
    # the whole file job: score_file's written probabilities (float32 text, as the current engine writes them)
    sf = E.score_file(f, HERE/'out_agree.csv', E.Scorer(params), classes=tuple(m.classes))
    w = pacsv.read_csv(HERE/'out_agree.csv')
    pw = np.column_stack([w[f'prob_{c}'].to_numpy() for c in m.classes]).astype(np.float64)
    d = float(np.max(np.abs(pw - ref)))
    worst['score_file (written CSV)'] = max(worst.get('score_file (written CSV)', 0), d)
    line.append(f'score_file written: {d:.3g}')
    Xd = float(np.max(np.abs(E.Scorer(params).transform(t, dtype=np.float64) - m.preprocessor.transform(
        __import__('customer_segmentation.preprocess', fromlist=['x']).prepare_features(df)))))
    print(f'{Path(f).name} ({len(df):,} rows): transform max diff {Xd:.3g}; proba max diff ' + '; '.join(line))
print('worst over all files:', json.dumps(worst))
(HERE/'out_agree.csv').unlink()
