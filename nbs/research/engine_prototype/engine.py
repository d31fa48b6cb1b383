"""Prototype of the fast scoring engine (issue 13): the fitted preprocessing and the network, exported once as plain
parameters, then evaluated with numpy + pyarrow only (no scikit-learn, scipy, pandas, TensorFlow or h5py at run time).

Three parts:

* save time (imports scikit-learn / scipy / h5py lazily): `export_params(preprocessor, network)` walks the fitted
  `ColumnTransformer` and the Keras graph and returns `{'spec': JSON-able dict, 'arrays': {name: ndarray}}`;
  `check_params(params, preprocessor, network)` transforms a probe frame with both and compares;
  `save_params` / `load_params` write and read one `.npz` (no pickle: `allow_pickle=False`, the spec is UTF-8 JSON bytes).
* run time: `read_columns(arrow_table)` dictionary-encodes the text columns of a CSV chunk (numbers parsed once per
  distinct text); `Scorer(params)` -> `.transform(columns) -> float32 (n, n_inputs)` (the fitted steps evaluated once
  per distinct value, then gathered), `.forward(X) -> float32 (n, classes)` (2 threads x BLAS 1), `.score_columns(columns)`
  (both, batch by batch, no full input matrix), `.predict_proba(columns)`; load-time checks `check_binding`, `check_golden`.
* `score_file(in, out, scorer)`: a streaming CSV -> CSV job (read, transform, forward on 2 threads, write).

Run `python engine.py` for the self-test (exports the saved model, checks it, round-trips the file, checks agreement
with the Keras reference on a sample).
"""
from __future__ import annotations
import json, math, os, threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FORMAT = 'custseg-scoring-params'
FORMAT_VERSION = 1
# cells that mean "missing": the same list as customer_segmentation.data.NA_VALUES (pandas' defaults)
NA_VALUES = ('', '#N/A', '#N/A N/A', '#NA', '-1.#IND', '-1.#QNAN', '-NaN', '-nan', '1.#IND', '1.#QNAN', '<NA>', 'N/A',
             'NA', 'NULL', 'NaN', 'None', 'n/a', 'nan', 'null')
ACTIVATIONS = ('linear', 'relu', 'softmax', 'sigmoid', 'tanh')


class ParamsError(ValueError):
    "Exported parameters that are malformed, of another format version, or that disagree with the fitted model."


# ======================================================================================================================
# Export (save time): fitted scikit-learn objects and the Keras graph -> spec + arrays
# ======================================================================================================================

def _nan_to_none(v):
    return None if isinstance(v, float) and math.isnan(v) else v


class _Arrays(dict):
    "The arrays of an export, named `block/step/field`."
    def add(self, name:str, a, dtype=np.float64)->str:
        a = np.ascontiguousarray(np.asarray(a, dtype=dtype))
        if a.dtype == object: raise ParamsError(f'{name}: object arrays are not exported')
        self[name] = a
        return name


def _export_imputer(s, name, arrays, categorical:bool)->dict:
    from sklearn.impute import SimpleImputer
    if type(s) is not SimpleImputer: raise ParamsError(f'{name}: expected SimpleImputer, got {type(s).__name__}')
    mv = s.missing_values
    if not (isinstance(mv, float) and math.isnan(mv)): raise ParamsError(f'{name}: only missing_values=np.nan is exported')
    ind = [] if s.indicator_ is None else [int(i) for i in s.indicator_.features_]
    if s.indicator_ is not None and s.indicator_.features != 'missing-only':
        raise ParamsError(f"{name}: only the indicator of features='missing-only' is exported")
    if categorical:
        fill = [str(v) for v in s.statistics_]
        return {'op': 'impute', 'fill': fill, 'indicator': ind}
    stats = np.asarray(s.statistics_, dtype=np.float64)
    if np.isnan(stats).any():  # scikit-learn drops such columns (keep_empty_features=False): not exported
        raise ParamsError(f'{name}: a column was empty in training (NaN fill value)')
    return {'op': 'impute', 'fill': arrays.add(f'{name}/fill', stats), 'indicator': ind}


def _export_scaler(s, name, arrays, width:int)->dict:
    mean = s.mean_ if s.with_mean else np.zeros(width)
    scale = s.scale_ if s.with_std else np.ones(width)
    return {'op': 'scale', 'mean': arrays.add(f'{name}/mean', mean), 'scale': arrays.add(f'{name}/scale', scale)}


def _export_onehot(s, name)->dict:
    if s.drop is not None or getattr(s, 'sparse_output', False) or s.handle_unknown != 'ignore':
        raise ParamsError(f"{name}: only OneHotEncoder(drop=None, sparse_output=False, handle_unknown='ignore') is exported")
    if getattr(s, '_infrequent_enabled', False): raise ParamsError(f'{name}: infrequent categories are not exported')
    cats = [[str(v) for v in c] for c in s.categories_]
    if any(c.dtype != object for c in s.categories_): raise ParamsError(f'{name}: only text categories are exported')
    return {'op': 'onehot', 'categories': cats, 'unknown': 'zeros', 'dtype': np.dtype(s.dtype).name}


def _export_ordinal(s, name)->dict:
    if getattr(s, '_infrequent_enabled', False): raise ParamsError(f'{name}: infrequent categories are not exported')
    if s.handle_unknown not in ('use_encoded_value', 'error'): raise ParamsError(f'{name}: handle_unknown={s.handle_unknown!r}')
    cats = [[str(v) for v in c] for c in s.categories_]
    unknown = float(s.unknown_value) if s.handle_unknown == 'use_encoded_value' else 'error'
    return {'op': 'ordinal', 'categories': cats, 'unknown_value': _nan_to_none(unknown),
            'missing_value': _nan_to_none(float(s.encoded_missing_value)), 'dtype': np.dtype(s.dtype).name}


def _export_spline(s, name, arrays)->dict:
    if s.extrapolation not in ('constant', 'linear', 'continue', 'error'):
        raise ParamsError(f'{name}: extrapolation={s.extrapolation!r} is not exported (periodic needs its wrapped basis)')
    if s.sparse_output: raise ParamsError(f'{name}: sparse_output is not exported')
    if s.extrapolation == 'linear' and s.degree <= 1 and len(s.bsplines_) > 1:
        # scikit-learn 1.9 increments its local `degree` inside the feature loop here, so features after the first use
        # shifted boundaries: a quirk not reproduced; one column per transformer is exported
        raise ParamsError(f'{name}: linear extrapolation of degree <= 1 over several columns is not exported')
    k, feats = int(s.degree), []
    for i, spl in enumerate(s.bsplines_):
        if spl.k != k or spl.c.ndim != 2: raise ParamsError(f'{name}: unexpected BSpline {i}')
        t = np.asarray(spl.t, np.float64)
        xmin, xmax = t[k], t[-k - 1]
        f = {'knots': arrays.add(f'{name}/{i}/knots', t), 'coef': arrays.add(f'{name}/{i}/coef', spl.c)}
        # the basis at the ends of the training range (and its slope): what 'constant' and 'linear' extrapolate with,
        # taken from scipy itself so that run time needs no derivative code
        f['f_min'] = arrays.add(f'{name}/{i}/f_min', spl(xmin))
        f['f_max'] = arrays.add(f'{name}/{i}/f_max', spl(xmax))
        if s.extrapolation == 'linear':
            f['fp_min'] = arrays.add(f'{name}/{i}/fp_min', spl(xmin, nu=1))
            f['fp_max'] = arrays.add(f'{name}/{i}/fp_max', spl(xmax, nu=1))
        feats.append(f)
    return {'op': 'spline', 'degree': k, 'extrapolation': s.extrapolation, 'include_bias': bool(s.include_bias),
            'handle_missing': getattr(s, 'handle_missing', 'error'), 'features': feats}


def _export_block(name:str, pipe, columns:list, arrays:_Arrays, out:tuple)->dict:
    "One ColumnTransformer entry: its steps in order, and whether its values are text (categorical) or numbers."
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, SplineTransformer, StandardScaler
    steps = pipe.steps if isinstance(pipe, Pipeline) else [('step', pipe)]
    kind = 'categorical' if type(steps[0][1]) in (OneHotEncoder, OrdinalEncoder) or (
        type(steps[0][1]) is SimpleImputer and steps[0][1].statistics_.dtype == object) else 'numeric'
    state, width, spec = kind, len(columns), []
    for sn, s in steps:
        nm, t = f'{name}/{sn}', type(s)
        if t is SimpleImputer:
            spec.append(_export_imputer(s, nm, arrays, state == 'categorical'))
            if spec[-1]['indicator'] and state == 'categorical': raise ParamsError(f'{nm}: indicator on text is not exported')
            width += len(spec[-1]['indicator'])
        elif t is StandardScaler and state == 'numeric': spec.append(_export_scaler(s, nm, arrays, width))
        elif t is OneHotEncoder and state == 'categorical':
            spec.append(_export_onehot(s, nm)); state = 'numeric'; width = sum(map(len, spec[-1]['categories']))
        elif t is OrdinalEncoder and state == 'categorical': spec.append(_export_ordinal(s, nm)); state = 'numeric'
        elif t is SplineTransformer and state == 'numeric':
            spec.append(_export_spline(s, nm, arrays))
            width = int(s.n_features_out_)
        else: raise ParamsError(f'{nm}: {t.__name__} on {state} values is not exported')
    if state != 'numeric': raise ParamsError(f'{name}: ends with text values')
    if width != out[1] - out[0]: raise ParamsError(f'{name}: exported width {width}, the transformer gives {out[1] - out[0]}')
    return {'name': name, 'columns': list(columns), 'kind': kind, 'out': list(out), 'steps': spec}


def _export_preprocessor(pre, arrays:_Arrays)->dict:
    from sklearn.compose import ColumnTransformer
    if type(pre) is not ColumnTransformer: raise ParamsError(f'expected a ColumnTransformer, got {type(pre).__name__}')
    if getattr(pre, 'sparse_output_', False): raise ParamsError('sparse output is not exported')
    blocks = []
    for name, t, cols in pre.transformers_:
        if t == 'drop' or (name == 'remainder' and t == 'drop'): continue
        sl = pre.output_indices_[name]
        if sl.stop == sl.start: continue
        if t == 'passthrough' or isinstance(t, str): raise ParamsError(f'{name}: {t!r} is not exported')
        cols = [pre.feature_names_in_[c] if isinstance(c, (int, np.integer)) else str(c) for c in cols]
        blocks.append(_export_block(name, t, cols, arrays, (sl.start, sl.stop)))
    names = [str(n) for n in pre.get_feature_names_out()]
    return {'columns': [str(c) for c in pre.feature_names_in_], 'n_inputs': len(names), 'input_names': names,
            'blocks': blocks}


def _keras_graph(network)->tuple:
    "([(class name, name, config, [input layer names])], {layer name: [arrays]}) of a Keras model or a `.keras` archive."
    if isinstance(network, (str, Path)):
        import io, zipfile, h5py
        with zipfile.ZipFile(network) as z: cfg, raw = json.loads(z.read('config.json')), z.read('model.weights.h5')
        weights = {}
        with h5py.File(io.BytesIO(raw), 'r') as f:
            for g in f['layers'].values():
                v = g.get('vars')
                if v is not None and len(v): weights[v.attrs.get('name')] = [v[str(i)][()] for i in range(len(v))]
        if cfg.get('class_name') != 'Functional': raise ParamsError('only functional Keras models are exported')
        c = cfg['config']
    else:
        c = network.get_config()
        weights = {l.name: [np.asarray(w) for w in l.get_weights()] for l in network.layers}
    def ins(a):
        if isinstance(a, dict): return [a['config']['keras_history'][0]] if a.get('class_name') == '__keras_tensor__' else []
        if isinstance(a, (list, tuple)): return [n for x in a for n in ins(x)]
        return []
    layers = []
    for l in c['layers']:
        nodes = l.get('inbound_nodes', [])
        if len(nodes) > 1: raise ParamsError(f"layer {l['name']}: shared layers are not exported")
        if nodes and set(nodes[0].get('kwargs', {})) - {'training'}: raise ParamsError(f"layer {l['name']}: call arguments")
        layers.append((l['class_name'], l['name'], l['config'], ins(nodes[0]['args']) if nodes else []))
    outs = c['output_layers']
    out = outs[0] if isinstance(outs[0], str) else (outs[0][0] if len(outs) == 1 else None)
    if out is None: raise ParamsError('only single-output models are exported')
    return layers, weights, out


def _export_network(network, arrays:_Arrays)->dict:
    "The network as seed-copies (chains of dense layers from the input) whose outputs are averaged."
    layers, weights, out = _keras_graph(network)
    by = {l[1]: l for l in layers}
    inputs = [l[1] for l in layers if l[0] == 'InputLayer']
    if len(inputs) != 1: raise ParamsError('only single-input models are exported')
    def chain(name):  # the dense layers from the input to `name`, in order
        dense = []
        while name != inputs[0]:
            kind, _, cfg, ins = by[name]
            if len(ins) != 1: raise ParamsError(f'layer {name}: {kind} with {len(ins)} inputs inside a copy')
            if kind == 'Dense':
                act, w = cfg.get('activation'), weights.get(name, [])
                if act not in ACTIVATIONS: raise ParamsError(f'layer {name}: activation {act!r}')
                if not w or (cfg.get('use_bias', True) and len(w) < 2): raise ParamsError(f'layer {name}: weights missing')
                dense.append((name, act, w[0], w[1] if cfg.get('use_bias', True) else np.zeros(w[0].shape[1], w[0].dtype)))
            elif kind not in ('Dropout', 'Activation') or (kind == 'Activation' and cfg.get('activation') != 'linear'):
                raise ParamsError(f'layer {name}: {kind} is not exported')
            name = ins[0]
        return dense[::-1]
    kind, _, _, ins = by[out]
    heads = ins if kind == 'Average' else [out]
    copies = []
    for s, h in enumerate(heads):
        layers_s = []
        for j, (lname, act, k, b) in enumerate(chain(h)):
            layers_s.append({'layer': lname, 'activation': act,
                             'kernel': arrays.add(f'net/{s}/{j}/kernel', k, np.float32),
                             'bias': arrays.add(f'net/{s}/{j}/bias', b, np.float32)})
        copies.append(layers_s)
    widths = [[arrays[l['kernel']].shape for l in c] for c in copies]
    n_in = arrays[copies[0][0]['kernel']].shape[0]
    if any(w[0][0] != n_in or any(a[1] != b[0] for a, b in zip(w, w[1:])) for w in widths):
        raise ParamsError('the copies do not chain: kernel shapes ' + str(widths))
    return {'dtype': 'float32', 'combine': 'mean', 'n_inputs': int(n_in), 'n_outputs': int(widths[0][-1][1]),
            'copies': copies}


def export_params(preprocessor, # the fitted ColumnTransformer
                  network, # the Keras model (keras.Model) or the path of its `.keras` archive
                  classes:list|None=None, # the class names, in output order
                 )->dict:
    "Everything scoring needs, as {'spec': JSON-able dict, 'arrays': {name: float ndarray}}; raises ParamsError on anything it cannot express."
    arrays = _Arrays()
    spec = {'format': FORMAT, 'format_version': FORMAT_VERSION, 'preprocessing': _export_preprocessor(preprocessor, arrays),
            'network': _export_network(network, arrays), 'classes': list(classes) if classes else None}
    if spec['network']['n_inputs'] != spec['preprocessing']['n_inputs']:
        raise ParamsError(f"the preprocessor makes {spec['preprocessing']['n_inputs']} inputs, the network takes {spec['network']['n_inputs']}")
    try:
        import sklearn
        spec['exported_with'] = {'scikit-learn': sklearn.__version__, 'numpy': np.__version__}
    except ImportError: pass
    return {'spec': spec, 'arrays': dict(arrays)}


# ======================================================================================================================
# The parameter file: one .npz, read with allow_pickle=False
# ======================================================================================================================

SPEC_KEY = '__spec__'  # uint8 array: the spec as UTF-8 JSON


def save_params(params:dict, path:str|Path):
    "Write `params` to the `.npz` at `path` (uncompressed; a temporary file moved into place)."
    path = Path(path)
    spec = json.dumps(params['spec'], allow_nan=False, sort_keys=True).encode('utf-8')
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.part.npz')
    try:
        with open(tmp, 'wb') as f:
            np.savez(f, **{SPEC_KEY: np.frombuffer(spec, np.uint8)}, **params['arrays'])
        os.replace(tmp, path)
    finally:
        if tmp.exists(): tmp.unlink()


def load_params(path:str|Path)->dict:
    "The parameters in the `.npz` at `path`; ParamsError if it is not such a file, of another version, or incomplete."
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e: raise ParamsError(f'{path}: not a readable parameter file ({e})') from None
    try: spec = json.loads(arrays.pop(SPEC_KEY).tobytes().decode('utf-8'))
    except (KeyError, ValueError) as e: raise ParamsError(f'{path}: no readable spec ({e})') from None
    if spec.get('format') != FORMAT or spec.get('format_version') != FORMAT_VERSION:
        raise ParamsError(f"{path}: format {spec.get('format')!r} version {spec.get('format_version')!r}; this code reads {FORMAT} {FORMAT_VERSION}")
    missing = sorted(_array_refs(spec) - set(arrays))
    if missing: raise ParamsError(f"{path}: arrays missing: {', '.join(missing)}")
    if any(a.dtype.kind not in 'fiubU' for a in arrays.values()): raise ParamsError(f'{path}: non-numeric arrays')
    return {'spec': spec, 'arrays': arrays}


def _array_refs(spec:dict)->set:
    refs = set()
    for b in spec['preprocessing']['blocks']:
        for s in b['steps']:
            for k in ('fill', 'mean', 'scale'):
                if isinstance(s.get(k), str): refs.add(s[k])
            for f in s.get('features', []): refs |= {v for v in f.values() if isinstance(v, str)}
    for c in spec['network']['copies']:
        for l in c: refs |= {l['kernel'], l['bias']}
    return refs


# ======================================================================================================================
# Run time: numpy + pyarrow only
# ======================================================================================================================

_NA_ARRAY = []

def _na()->pa.Array:
    "NA_VALUES as an Arrow array, made on first use (a pa.array() call at import would import pandas, see skip_pandas_probe)."
    if not _NA_ARRAY: _NA_ARRAY.append(pa.array(NA_VALUES, pa.string()))
    return _NA_ARRAY[0]


class Cat:
    "A text column as (codes: int32 array, -1 where missing; dictionary: the distinct texts as an Arrow string array)."
    __slots__ = ('codes', 'dictionary', 'na')
    def __init__(self, codes:np.ndarray, dictionary:pa.Array, na=None): self.codes, self.dictionary, self.na = codes, dictionary, na

    @classmethod
    def of(cls, col)->Cat:
        "From an Arrow string / dictionary array (nulls and the NA_VALUES texts are missing) or a numpy/pandas object array (None/NaN missing)."
        if isinstance(col, Cat): return col
        if not isinstance(col, (pa.Array, pa.ChunkedArray)): col = pa.array(np.asarray(col, dtype=object), pa.string(), from_pandas=True)
        if isinstance(col, pa.ChunkedArray): col = col.combine_chunks()
        d = col if pa.types.is_dictionary(col.type) else pc.dictionary_encode(col)
        dictionary = d.dictionary.cast(pa.string())
        # the missing markers are looked up in the (small) dictionary, never over the rows
        na = pc.is_in(dictionary, value_set=_na()).to_numpy(zero_copy_only=False)
        remap = np.where(na, -1, np.arange(len(dictionary), dtype=np.int32)).astype(np.int32)
        remap = np.append(remap, np.int32(-1))  # position -1: a null index stays missing
        idx = d.indices.fill_null(-1).to_numpy().astype(np.int32, copy=False)
        return cls(remap[idx] if na.any() or d.indices.null_count else idx, dictionary, na)

    def __len__(self): return len(self.codes)

    def lookup(self, values:list, null:int)->np.ndarray:
        "The position of each row's text in `values` (-1 if not there); `null` for the missing rows."
        pos = pc.index_in(self.dictionary, value_set=pa.array(values, pa.string())).fill_null(-1).to_numpy().astype(np.int32)
        return np.append(pos, np.int32(null))[self.codes]

    def distinct(self, size:int)->Cat:
        "A `size`-row column holding each dictionary entry once (row i: entry i), then missing rows."
        d = len(self.dictionary)
        return Cat(np.r_[np.arange(d, dtype=np.int32), np.full(size - d, -1, np.int32)], self.dictionary)

    def rows(self)->Cat: return self


NUMERIC_LIMIT = 1e6  # as customer_segmentation.data.NUMERIC_LIMIT (the working tree's)


def _number_problems(v:np.ndarray, present:np.ndarray)->np.ndarray:
    "True where a (distinct) value is refused: not a number though present, infinite, negative, or above NUMERIC_LIMIT."
    with np.errstate(invalid='ignore'):
        return (present & np.isnan(v)) | np.isinf(v) | (v < 0) | (v > NUMERIC_LIMIT)


class Num:
    "A numeric column as (codes: int32 array, -1 where missing; values: float64 value of each code, NaN if not a number)."
    __slots__ = ('codes', 'values', 'bad')
    # (the pandas fallback below is only for texts Arrow cannot parse but pandas can, e.g. ' 5')
    def __init__(self, codes:np.ndarray, values:np.ndarray, bad=None):
        self.codes, self.values = codes, values
        # per distinct value: what data.numeric_problems refuses (not a number, not finite, negative, above NUMERIC_LIMIT);
        # the package would call numeric_problems on the distinct values rather than on the rows
        self.bad = _number_problems(values, ~np.isnan(values)) if bad is None else bad

    @classmethod
    def of(cls, col)->Num:
        "From an Arrow text column (parsed once per distinct text, customer_files.parse_numeric semantics) or an array of numbers (NaN missing)."
        if isinstance(col, Num): return col
        if isinstance(col, (pa.Array, pa.ChunkedArray)) and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
                                                            or pa.types.is_dictionary(col.type)):
            c = Cat.of(col)
            texts = pc.if_else(pa.array(c.na), pa.scalar(None, pa.string()), c.dictionary) if c.na.any() else c.dictionary
            try: vals = pc.cast(texts, pa.float64()).fill_null(np.nan).to_numpy()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # as parse_numeric: pandas' parser for what Arrow refuses
                import pandas as pd
                vals = pd.to_numeric(pd.Series(c.dictionary.to_pylist(), dtype=object), errors='coerce').to_numpy(np.float64, na_value=np.nan)
            vals = np.asarray(vals, np.float64)
            return cls(c.codes, vals, _number_problems(vals, ~c.na))
        a = col.to_numpy(zero_copy_only=False) if isinstance(col, (pa.Array, pa.ChunkedArray)) else np.asarray(col)
        vals, inv = np.unique(np.asarray(a, np.float64), return_inverse=True)  # NaNs collapse into one value
        return cls(inv.astype(np.int32).reshape(-1), vals)

    def __len__(self): return len(self.codes)

    def rows(self)->np.ndarray:
        "The value of every row (NaN where missing)."
        return np.append(self.values, np.nan)[self.codes]

    def distinct(self, size:int)->np.ndarray:
        "A `size`-row array holding each distinct value once (row i: value i), padded with the first value; the last row is NaN where some row is missing."
        pad = self.values[0] if len(self.values) else np.nan
        out = np.r_[self.values, np.full(size - len(self.values), pad)]
        if (self.codes < 0).any(): out[-1] = np.nan
        return out


def parse_numbers(col)->np.ndarray:
    "Float64 values of a text column, NaN where missing or not a number (customer_files.parse_numeric semantics)."
    return Num.of(col).rows()


def read_columns(t:pa.Table, columns:list, numeric:set)->dict:
    "{column: Num or Cat} of the text table `t`: each column dictionary-encoded, numbers parsed once per distinct text."
    return {c: Num.of(t[c]) if c in numeric else Cat.of(t[c]) for c in columns}


def _basis(x:np.ndarray, t:np.ndarray, k:int, extrapolate:bool)->tuple:
    "(interval l, the k+1 non-zero B-spline basis values h (k+1, n)) at x, as scipy's _bspl.evaluate_spline computes them."
    n = len(t) - k - 1
    l = np.clip(np.searchsorted(t, x, side='right') - 1, k, n - 1)
    h = np.zeros((k + 1, len(x)))
    h[0] = 1.0
    for j in range(1, k + 1):  # Cox-de Boor, the same operations in the same order as scipy's _deBoor_D
        hh = h[:j].copy()
        h[0] = 0.0
        for m in range(1, j + 1):
            xb, xa = t[l + m], t[l + m - j]
            same = xb == xa
            w = np.divide(hh[m - 1], xb - xa, out=np.zeros_like(x), where=~same)
            h[m - 1] += np.where(same, 0.0, w * (xb - x))
            h[m] = np.where(same, 0.0, w * (x - xa))
    if not extrapolate:
        out = (x < t[k]) | (x > t[n]) | np.isnan(x)
        h[:, out] = np.nan
    return l, h


def bspline(x:np.ndarray, t:np.ndarray, c:np.ndarray, k:int, extrapolate:bool)->np.ndarray:
    "scipy.interpolate.BSpline(t, c, k, extrapolate)(x) for 2-D c: sum_a c[l-k+a] * h[a], a = 0..k, in that order."
    l, h = _basis(x, t, k, extrapolate)
    out = np.zeros((len(x), c.shape[1]))
    for a in range(k + 1): out += c[l - k + a] * h[a][:, None]
    return out


def _spline_block(X:np.ndarray, s:dict, A:dict)->np.ndarray:
    "SplineTransformer.transform (dense) of X (n, features) from the exported knots."
    k, ext, outs = s['degree'], s['extrapolation'], []
    if s['handle_missing'] == 'error' and np.isnan(X).any(): raise ValueError('Input X contains NaN (spline)')
    for i, f in enumerate(s['features']):
        x, t, c = X[:, i], A[f['knots']], A[f['coef']]
        nb = c.shape[1]
        if ext in ('continue', 'error'):
            B = bspline(np.where(np.isnan(x), t[k], x), t, c, k, ext == 'continue')
            if ext == 'error' and np.isnan(B).any(): raise ValueError('`X` contains values beyond the limits of the knots.')
            B[np.isnan(x)] = 0.0
        else:
            xmin, xmax = t[k], t[-k - 1]
            inside = (xmin <= x) & (x <= xmax)
            B = np.zeros((len(x), nb))
            B[inside] = bspline(x[inside], t, c, k, False)
            below, above = x < xmin, x > xmax
            if ext == 'constant':
                B[np.ix_(below, np.arange(k))] = A[f['f_min']][:k]
                B[np.ix_(above, np.arange(nb - k, nb))] = A[f['f_max']][-k:]
            else:  # linear: the first and last `degree` bases continue with their slope at the boundary
                fmin, fmax, dmin, dmax = (A[f[n]] for n in ('f_min', 'f_max', 'fp_min', 'fp_max'))
                for j in range(max(k, 2) if k <= 1 else k):
                    B[below, j] = fmin[j] + (x[below] - xmin) * dmin[j]
                    jj = nb - 1 - j
                    B[above, jj] = fmax[jj] + (x[above] - xmax) * dmax[jj]
        outs.append(B if s['include_bias'] else B[:, :-1])
    return np.hstack(outs)


def _eval_block(b:dict, val, A:dict, n:int)->tuple:
    """(values (n, width), src): block `b`'s steps on `val` (numbers (n, m), or a list of m Cat columns); src[j] is the
    input column that output j depends on. Every exported step is column-wise, which is what lets `Scorer.transform`
    evaluate it once per distinct value."""
    src = np.arange(len(b['columns']))
    if b['kind'] == 'numeric' and np.isinf(val).any(): raise ValueError(f"Input X contains infinity ({b['name']})")  # as scikit-learn
    for s in b['steps']:
        op = s['op']
        if op == 'impute' and isinstance(val, list):
            val = [(v, f) for v, f in zip(val, s['fill'])]  # applied by the encoder: a missing text becomes `fill`
        elif op == 'impute':
            miss = np.isnan(val)
            ind = miss[:, s['indicator']]
            val = np.where(miss, A[s['fill']], val)
            if s['indicator']:
                val = np.hstack([val, ind.astype(np.float64)])
                src = np.r_[src, src[s['indicator']]]
        elif op == 'scale':
            val = (val - A[s['mean']]) / A[s['scale']]
        elif op == 'onehot':
            width = sum(map(len, s['categories']))
            res, col0, srcs = np.zeros((n, width)), 0, []
            for i, ((v, fill), cats) in enumerate(zip(_filled(val), s['categories'])):
                code = v.lookup(cats, cats.index(fill) if fill in cats else -1)
                rows = np.flatnonzero(code >= 0)
                res[rows, col0 + code[rows]] = 1  # one-hot by index assignment
                col0 += len(cats); srcs += [src[i]] * len(cats)
            val, src = res, np.asarray(srcs)
        elif op == 'ordinal':
            res = np.empty((n, len(val)))
            for i, ((v, fill), cats) in enumerate(zip(_filled(val), s['categories'])):
                if s['unknown_value'] == 'error': raise ParamsError('ordinal handle_unknown=error is not evaluated')
                unk = np.nan if s['unknown_value'] is None else s['unknown_value']
                missv = np.nan if s['missing_value'] is None else s['missing_value']
                pos = v.lookup(cats, -2)  # -2: missing, -1: unknown
                if fill is not None:  # an imputer before the encoder: missing -> fill text
                    pos = np.where(pos == -2, cats.index(fill) if fill in cats else -1, pos)
                res[:, i] = np.append(np.arange(len(cats), dtype=np.float64), [missv, unk])[pos]  # index -2, -1
            val = res
        elif op == 'spline':
            nb = A[s['features'][0]['coef']].shape[1] - (0 if s['include_bias'] else 1)
            val = _spline_block(val, s, A)
            src = np.repeat(src, nb)
        else: raise ParamsError(f'unknown step {op!r}')
    return val, src


def _filled(val:list)->list:
    "[(Cat, fill text or None)] whether or not an imputer came first."
    return [v if isinstance(v, tuple) else (v, None) for v in val]


def _block_input(b:dict, cols:list, how:str, size:int=0):
    "The block's input: every row (how='rows') or each column's distinct values once, padded to `size` rows ('distinct')."
    if b['kind'] == 'categorical': return [c.rows() if how == 'rows' else c.distinct(size) for c in cols]
    return np.column_stack([c.rows() if how == 'rows' else c.distinct(size) for c in cols])


def _softmax_(z:np.ndarray)->np.ndarray:
    "In place, as TensorFlow's CPU kernel: exp(z - max), times the reciprocal of its sum."
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z *= np.float32(1) / z.sum(axis=1, keepdims=True)
    return z


def _softmax_rows(z:np.ndarray, r:np.ndarray)->np.ndarray:
    "In place, the softmax of each column of z (classes, m), as TensorFlow's kernel: exp(z - max) times 1 / sum; r: (2, m) scratch."
    mx, sm = r[0], r[1]
    np.maximum(z[0], z[1] if len(z) > 1 else z[0], out=mx)
    for i in range(2, len(z)): np.maximum(mx, z[i], out=mx)
    z -= mx
    np.exp(z, out=z)
    sm[:] = z[0]
    for i in range(1, len(z)): sm += z[i]
    np.divide(np.float32(1), sm, out=sm)
    z *= sm
    return z


_ACT = {'linear': lambda z: z, 'relu': lambda z: np.maximum(z, np.float32(0), out=z), 'softmax': _softmax_,
        'tanh': lambda z: np.tanh(z, out=z), 'sigmoid': lambda z: np.divide(1, 1 + np.exp(-z), out=z)}


class Scorer:
    "The exported model, ready to evaluate: `transform`, `forward`, `predict_proba`."
    def __init__(self, params:dict, threads:int=2, batch:int=2048):
        self.spec, self.arrays = params['spec'], params['arrays']
        pre, net = self.spec['preprocessing'], self.spec['network']
        self.columns, self.n_inputs, self.blocks = pre['columns'], pre['n_inputs'], pre['blocks']
        self.numeric = {c for b in self.blocks if b['kind'] == 'numeric' for c in b['columns']}
        self.threads, self.batch = threads, batch
        A = self.arrays
        # per copy: the hidden layers (rows x units), then the output layer evaluated transposed (units x rows), so that
        # the softmax over 4 classes works on 4 contiguous rows instead of reducing along a 4-wide axis
        self.copies = []
        for c in net['copies']:
            layers = [(A[l['kernel']], A[l['bias']], l['activation']) for l in c]
            w, b, act = layers[-1]
            self.copies.append((layers[:-1], (np.ascontiguousarray(w.T), b[:, None].copy(), act)))
        self.n_outputs = net['n_outputs']
        self._pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self._local = threading.local()

    # -- preprocessing ------------------------------------------------------------------------------------------------
    def transform(self, cols, dtype=np.float32, how:str='distinct')->np.ndarray:
        """The network's inputs (n, n_inputs) for `cols`: an Arrow table of text (as read from the CSV) or {column: array}.
        how='distinct' (default): each block is evaluated once per distinct value of each column (a lookup table of a few
        dozen rows), then gathered into the rows by the column's dictionary codes; how='rows': evaluated on every row."""
        if isinstance(cols, pa.Table): cols = read_columns(cols, self.columns, self.numeric)
        cols = {c: (Num.of(cols[c]) if c in self.numeric else Cat.of(cols[c])) for c in self.columns}
        n = len(cols[self.columns[0]])
        if how == 'rows':
            out = np.empty((n, self.n_inputs), dtype)
            for b in self.blocks:
                lo, hi = b['out']
                out[:, lo:hi], _ = _eval_block(b, _block_input(b, [cols[c] for c in b['columns']], 'rows'), self.arrays, n)
            return out
        # built transposed: each input of the network is one contiguous row filled by one np.take; the result is the
        # (n, n_inputs) Fortran-ordered view, which BLAS reads as it is
        outT = np.empty((self.n_inputs, n), dtype)
        for b in self.blocks:
            lo = b['out'][0]
            bc = [cols[c] for c in b['columns']]
            size = max(len(c.values if isinstance(c, Num) else c.dictionary) for c in bc) + 1  # + a missing row
            lut, src = _eval_block(b, _block_input(b, bc, 'distinct', size), self.arrays, size)
            lutT = np.ascontiguousarray(lut.T, dtype=dtype)
            for j, i in enumerate(src):  # code -1 (missing) wraps to the table's last row, the missing one
                np.take(lutT[j], bc[i].codes, out=outT[lo + j], mode='wrap')
        return outT.T

    def tables(self, cols:dict, dtype=np.float32)->list:
        "[(lookup table (distinct values + 1, width), output columns, codes)] per block column: the preprocessing of this chunk's distinct values."
        out = []
        for b in self.blocks:
            lo = b['out'][0]
            bc = [cols[c] for c in b['columns']]
            size = max(len(c.values if isinstance(c, Num) else c.dictionary) for c in bc) + 1  # + a missing row
            lut, src = _eval_block(b, _block_input(b, bc, 'distinct', size), self.arrays, size)
            for i, c in enumerate(bc):
                j = np.flatnonzero(src == i)
                codes = np.where(c.codes < 0, size - 1, c.codes) if (c.codes < 0).any() else c.codes
                sl = slice(lo + j[0], lo + j[-1] + 1) if len(j) == j[-1] - j[0] + 1 else lo + j
                out.append((np.ascontiguousarray(lut[:, j], dtype=dtype), sl, codes))
        return out

    def score_columns(self, cols:dict)->np.ndarray:
        """Probabilities (n, classes) float32 of parsed columns, batch by batch on the calling thread: each batch's inputs
        are gathered from the chunk's lookup tables into a small buffer, so no (n, n_inputs) matrix is ever made."""
        cols = {c: (Num.of(cols[c]) if c in self.numeric else Cat.of(cols[c])) for c in self.columns}
        n, bs = len(cols[self.columns[0]]), self.batch
        tabs = self.tables(cols)
        out = np.empty((n, self.n_outputs), np.float32)
        ws = self._buffers()
        for i in range(0, n, bs):
            m = min(bs, n - i)
            X = ws['x'][:m]
            for lut, sl, codes in tabs: X[:, sl] = lut[codes[i:i + m]]
            self._forward(X, out[i:i + m])
        return out

    # -- network ------------------------------------------------------------------------------------------------------
    def _buffers(self)->dict:
        "This thread's work arrays for one batch, allocated once (a fresh large array costs page faults on every batch)."
        ws = getattr(self._local, 'ws', None)
        if ws is None:
            bs = self.batch
            ws = {'h': [[np.empty((bs, w.shape[1]), np.float32) for w, _, _ in hidden] for hidden, _ in self.copies],
                  'z': np.empty((self.n_outputs, bs), np.float32), 'acc': np.empty((self.n_outputs, bs), np.float32),
                  'r': np.empty((2, bs), np.float32), 'x': np.empty((bs, self.n_inputs), np.float32)}
            self._local.ws = ws
        return ws

    def _forward(self, X:np.ndarray, out:np.ndarray|None=None)->np.ndarray:
        "The ensemble's output for one batch X (m <= batch rows), into `out` (m, classes)."
        X = np.asarray(X, dtype=np.float32)  # C or Fortran order: BLAS takes either
        m = len(X)
        if m > self.batch: raise ValueError(f'a batch of {m} rows; at most {self.batch}')
        out = np.empty((m, self.n_outputs), np.float32) if out is None else out
        ws = self._buffers()
        if not X.flags.c_contiguous:  # e.g. a slice of transform's Fortran-ordered result: one small transposing copy
            X = np.copyto(ws['x'][:m], X) or ws['x'][:m]
        acc = ws['acc'][:, :m]
        for s, (hidden, (wT, bT, act)) in enumerate(self.copies):
            h = X
            for (w, b, a), buf in zip(hidden, ws['h'][s]):
                h = np.matmul(h, w, out=buf[:m])
                h += b
                _ACT[a](h)
            z = np.matmul(wT, h.T, out=ws['z'][:, :m])  # (classes, m)
            z += bT
            if act == 'softmax': _softmax_rows(z, ws['r'][:, :m])
            else: _ACT[act](z)
            if s == 0: acc[:] = z
            else: acc += z  # Keras' Average: ((p0 + p1) + p2) / k
        if len(self.copies) > 1: acc /= np.float32(len(self.copies))
        out[:] = acc.T
        return out

    def forward(self, X:np.ndarray)->np.ndarray:
        "The averaged softmax outputs (n, classes) in float32, batches spread over `threads` threads (BLAS releases the GIL)."
        n, bs = len(X), self.batch
        out = np.empty((n, self.n_outputs), np.float32)
        def run(i): self._forward(X[i:i + bs], out[i:i + bs])
        starts = range(0, n, bs)
        if self._pool is None or n <= bs:
            for i in starts: run(i)
        else: list(self._pool.map(run, starts))
        return out

    def predict_proba(self, cols)->np.ndarray:
        "Probabilities (n, classes) in float64, rows renormalised to sum to 1 (as SegmentPredictor.predict_proba)."
        p = self.forward(self.transform(cols)).astype(np.float64)
        return p / p.sum(1, keepdims=True)


def skip_pandas_probe():
    """Let pyarrow's one-time lazy probe for pandas find none, in a process that never hands pandas objects to pyarrow
    (the scoring CLI): any pa.array()/to_numpy() call otherwise imports pandas, about 0.25 s. pandas still imports
    normally for code that asks for it; but pyarrow then no longer recognises pandas objects passed to pa.array, so a
    process that mixes both (a notebook) must not call this."""
    import sys
    if 'pandas' in sys.modules: return
    class _NoPandas:  # import pandas -> ImportError, for the probe only
        def find_spec(self, name, path=None, target=None):
            if name == 'pandas' or name.startswith('pandas.'): raise ModuleNotFoundError("No module named 'pandas'")
    blocker = _NoPandas()
    sys.meta_path.insert(0, blocker)
    try: pa.array([0])
    finally: sys.meta_path.remove(blocker)


def blas_threads(n:int):
    "A context limiting BLAS to `n` threads (threadpoolctl), or a no-op without threadpoolctl."
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(limits=n, user_api='blas')
    except ImportError:
        from contextlib import nullcontext
        return nullcontext()


# ======================================================================================================================
# Checking the export against the fitted objects
# ======================================================================================================================

def probe_frame(spec:dict, rows=None, seed:int=0)->dict:
    "{column: list of cells} of a probe: `rows` (e.g. training rows, {column: list}) then edge cases from the spec itself."
    pre = spec['preprocessing']
    rng = np.random.default_rng(seed)
    cats, nums = {}, {}
    for b in pre['blocks']:
        for s in b['steps']:
            if s['op'] in ('onehot', 'ordinal'):
                for c, v in zip(b['columns'], s['categories']): cats.setdefault(c, set()).update(v)
    for b in pre['blocks']:
        for s in b['steps']:
            if s['op'] == 'spline': nums.setdefault('spline', []).append((b, s))
    edge_num = {}
    for b in pre['blocks']:
        if b['kind'] != 'numeric': continue
        for c in b['columns']: edge_num.setdefault(c, {np.nan, 0.0, 1.0, 0.5, -1.0, 1e6, -1e6, 1e-300, 2.5})
    for b, s in nums.get('spline', []):
        for c, f in zip(b['columns'], s['features']):
            edge_num[c] |= {'knots:' + f['knots']}
    out = {c: [] for c in pre['columns']}
    n_edge = 600
    for c in pre['columns']:
        if c in edge_num: out[c] = _num_edges(edge_num[c], n_edge, rng)
        else:
            vals = sorted(cats.get(c, set())) + [None, 'missing', 'UNSEEN', ' ' + (sorted(cats.get(c, {'x'}))[0]), '', 'nan']
            out[c] = [vals[i] for i in rng.integers(0, len(vals), n_edge)]
    if rows is not None:
        for c in out: out[c] = list(rows[c]) + out[c]
    return out


_KNOTS = {}  # filled by check_params with the arrays, for the 'knots:' placeholders


def _num_edges(vals:set, n:int, rng)->list:
    pts = []
    for v in vals:
        if isinstance(v, str):
            t = _KNOTS[v[6:]]
            pts += list(t) + list((t[1:] + t[:-1]) / 2) + list(t + 1e-9) + list(t - 1e-9) + [t.min() - 7, t.max() + 7]
        else: pts.append(v)
    pts = np.asarray(pts, np.float64)
    return list(pts) + list(pts[rng.integers(0, len(pts), max(n - len(pts), 0))])[: max(n - len(pts), 0)]


def check_params(params:dict, # from export_params or load_params
                 preprocessor, # the fitted ColumnTransformer
                 network=None, # the Keras model, or None to check the preprocessing only
                 rows:dict|None=None, # extra probe rows, e.g. the training rows ({column: list of typed values})
                 tol:float=1e-9, # preprocessing: max |difference|
                 ptol:float=1e-6, # probabilities: max |difference|
                )->dict:
    "Compare the export with the fitted objects on a probe; returns the differences, raises ParamsError beyond `tol`/`ptol`."
    import pandas as pd
    spec, A = params['spec'], params['arrays']
    names = [str(x) for x in preprocessor.get_feature_names_out()]
    if names != spec['preprocessing']['input_names']: raise ParamsError('the input names differ from the preprocessor\'s')
    _KNOTS.clear(); _KNOTS.update(A)
    probe = probe_frame(spec, rows)
    numeric = {c for b in spec['preprocessing']['blocks'] if b['kind'] == 'numeric' for c in b['columns']}
    df = pd.DataFrame({c: (pd.Series(v, dtype='float64') if c in numeric else
                           pd.Series([np.nan if x is None else x for x in v], dtype=object)) for c, v in probe.items()})
    ref = np.asarray(preprocessor.transform(df), dtype=np.float64)
    sc = Scorer(params, threads=1)
    # a typed probe: '' and 'nan' are real texts here (unseen values), as they are for scikit-learn on a typed frame
    cols = {c: (df[c].to_numpy() if c in numeric else _typed_cat(df[c])) for c in df.columns}
    diff = 0.0
    for how in ('distinct', 'rows'):  # the run-time path (per distinct value) and the row-wise one
        got = sc.transform(cols, dtype=np.float64, how=how)
        diff = max(diff, float(np.max(np.abs(got - ref))) if got.size else 0.0)
    res = {'probe_rows': len(df), 'transform_max_diff': diff}
    if not (diff <= tol): raise ParamsError(f'the exported preprocessing differs from the fitted one by {diff:.3g} (> {tol:g})')
    if network is not None:
        import keras
        if isinstance(network, (str, Path)): network = keras.models.load_model(network, safe_mode=True, compile=False)
        for c in spec['network']['copies']:
            for l in c:
                w = network.get_layer(l['layer']).get_weights()
                if not (np.array_equal(w[0], A[l['kernel']]) and np.array_equal(w[1], A[l['bias']])):
                    raise ParamsError(f"layer {l['layer']}: exported weights differ from the network's")
        X = ref.astype(np.float32)
        pk = np.asarray(network(X, training=False), np.float64)
        pf = Scorer(params).forward(X).astype(np.float64)
        pdiff = float(np.max(np.abs(pf / pf.sum(1, keepdims=True) - pk / pk.sum(1, keepdims=True))))
        res['proba_max_diff'] = pdiff
        if not (pdiff <= ptol): raise ParamsError(f'the exported network differs from the model by {pdiff:.3g} (> {ptol:g})')
    return res


def _typed_cat(s)->Cat:
    "A Cat of a typed object column (NaN missing; every text, '' included, a value) as scikit-learn sees it."
    a = pa.array(s.to_numpy(dtype=object), pa.string(), from_pandas=True)
    d = pc.dictionary_encode(a)
    return Cat(d.indices.fill_null(-1).to_numpy().astype(np.int32), d.dictionary)


# ======================================================================================================================
# Golden probe: a load-time check without scikit-learn
# ======================================================================================================================

def add_golden(params:dict, preprocessor, network=None)->dict:
    "Store a synthetic probe (no customer rows) and the fitted preprocessor's (and network's) outputs on it in `params`."
    import pandas as pd
    spec, A = params['spec'], params['arrays']
    _KNOTS.clear(); _KNOTS.update(A)
    probe = probe_frame(spec, None, seed=1)
    numeric = {c for b in spec['preprocessing']['blocks'] if b['kind'] == 'numeric' for c in b['columns']}
    df = pd.DataFrame({c: (pd.Series(v, dtype='float64') if c in numeric else
                           pd.Series([np.nan if x is None else x for x in v], dtype=object)) for c, v in probe.items()})
    A['golden/X'] = np.asarray(preprocessor.transform(df), np.float64)
    for c in df.columns:
        if c in numeric: A[f'golden/in/{c}'] = df[c].to_numpy(np.float64)
        else:
            v = df[c].to_numpy(dtype=object)
            A[f'golden/missing/{c}'] = np.array([x is np.nan or (isinstance(x, float) and math.isnan(x)) for x in v])
            A[f'golden/in/{c}'] = np.array(['' if isinstance(x, float) else x for x in v], dtype=str)  # fixed-width unicode
    if network is not None:
        A['golden/p'] = np.asarray(network(A['golden/X'].astype(np.float32), training=False), np.float32)
    spec['golden'] = {'rows': len(df)}
    return params


def check_golden(params:dict, tol:float=1e-9, ptol:float=1e-6)->dict:
    "Re-run the stored probe with this code; ParamsError if it no longer gives the fitted model's recorded outputs."
    spec, A = params['spec'], params['arrays']
    if 'golden' not in spec: raise ParamsError('no golden probe in the parameters')
    cols = {}
    for c in spec['preprocessing']['columns']:
        v = A[f'golden/in/{c}']
        if v.dtype.kind == 'f': cols[c] = v
        else:
            a = pa.array(v.tolist(), pa.string(), mask=A[f'golden/missing/{c}'])
            d = pc.dictionary_encode(a)
            cols[c] = Cat(d.indices.fill_null(-1).to_numpy().astype(np.int32), d.dictionary)
    sc = Scorer(params, threads=1)
    X = sc.transform(cols, dtype=np.float64)
    res = {'transform_max_diff': float(np.max(np.abs(X - A['golden/X'])))}
    if not res['transform_max_diff'] <= tol: raise ParamsError(f"golden probe: preprocessing differs by {res['transform_max_diff']:.3g}")
    if 'golden/p' in A:
        p = sc.forward(A['golden/X'].astype(np.float32))
        res['proba_max_diff'] = float(np.max(np.abs(p.astype(np.float64) - A['golden/p'])))
        if not res['proba_max_diff'] <= ptol: raise ParamsError(f"golden probe: probabilities differ by {res['proba_max_diff']:.3g}")
    return res


def file_sha256(path)->str:
    import hashlib
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''): h.update(block)
    return h.hexdigest()


def bind(params:dict, model_dir:str|Path, files=('preprocessor.skops', 'model.keras'))->dict:
    "Record in the spec the sha256 of the fitted files these parameters were exported from and checked against."
    params['spec']['source_files'] = {f: file_sha256(Path(model_dir)/f) for f in files}
    return params


def check_binding(params:dict, model_dir:str|Path)->None:
    "ParamsError unless the model folder's fitted files are the ones the parameters were exported from (a retrained model with stale parameters)."
    for f, sha in params['spec'].get('source_files', {}).items():
        got = file_sha256(Path(model_dir)/f) if (Path(model_dir)/f).is_file() else None
        if got != sha: raise ParamsError(f'{model_dir}/{f}: sha256 {got}, the scoring parameters were exported from {sha}; export them again')
    if not params['spec'].get('source_files'): raise ParamsError('the parameters record no source files')


def load_checked(path:str|Path, model_dir:str|Path)->Scorer:
    "The load-time path without scikit-learn: read the .npz, check the binding to the fitted files and the golden probe."
    params = load_params(path)
    check_binding(params, model_dir)
    check_golden(params)
    return Scorer(params)


# ======================================================================================================================
# A streaming file job: read (Arrow) -> transform -> forward -> write (Arrow), chunks overlapped on a thread pool
# ======================================================================================================================

def id_hashes(ids)->np.ndarray:
    "64-bit hashes of the texts of an Arrow string column, vectorized over its bytes (no Python loop, no pandas): a polynomial hash per text."
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    ids = ids.cast(pa.large_string()) if ids.type != pa.large_string() else ids
    ids = pc.fill_null(ids, '')
    off = np.frombuffer(ids.buffers()[1], np.int64)[ids.offset:ids.offset + len(ids) + 1]
    data = np.frombuffer(ids.buffers()[2], np.uint8)[off[0]:off[-1]].astype(np.uint64)
    off = off - off[0]
    lengths = np.diff(off)
    if not len(data): return np.zeros(len(ids), np.uint64) + lengths.astype(np.uint64)
    pos = np.arange(len(data)) - np.repeat(off[:-1], lengths)
    with np.errstate(over='ignore'):
        powers = np.cumprod(np.full(int(lengths.max()), np.uint64(1099511628211)), dtype=np.uint64)  # FNV prime powers
        h = np.zeros(len(ids), np.uint64)
        nz = lengths > 0
        h[nz] = np.add.reduceat((data + np.uint64(1)) * powers[pos], off[:-1][nz])
        h ^= lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return h


class IdSpill:
    """Duplicate IDs over a stream of chunks in bounded memory: (hash, line) pairs go to `buckets` temporary files by
    their hash's top bits; at the end each bucket is sorted on its own (memory: 1/buckets of 16 bytes a row)."""
    def __init__(self, buckets:int=16, dir=None):
        import tempfile
        self._dir = tempfile.TemporaryDirectory(prefix='custseg-ids-', dir=dir)
        self.buckets, self.shift = buckets, np.uint64(64 - int(np.log2(buckets)))
        self.files = [open(Path(self._dir.name)/f'{i}.bin', 'wb') for i in range(buckets)]

    def add(self, h:np.ndarray, lines:np.ndarray):
        b = (h >> self.shift).astype(np.intp)
        order = np.argsort(b, kind='stable')
        rec = np.empty(len(h), dtype=[('h', '<u8'), ('line', '<i8')])
        rec['h'], rec['line'] = h[order], lines[order]
        ends = np.cumsum(np.bincount(b, minlength=self.buckets))
        for i, (a, e) in enumerate(zip(np.r_[0, ends[:-1]], ends)):
            if e > a: rec[a:e].tofile(self.files[i])

    def report(self)->tuple:
        "(IDs that occur more than once, rows holding them, the first lines of the repeats (up to 5, sorted))."
        n_ids = n_rows = 0
        first = np.zeros(0, np.int64)
        for f in self.files:
            f.close()
            rec = np.fromfile(f.name, dtype=[('h', '<u8'), ('line', '<i8')])
            if not len(rec): continue
            rec.sort(order=['h', 'line'])
            same = rec['h'][1:] == rec['h'][:-1]
            if same.any():
                n = int((same & ~np.r_[False, same[:-1]]).sum())
                n_ids += n; n_rows += n + int(same.sum())
                first = np.sort(np.r_[first, rec['line'][1:][same]])[:5]
        self._dir.cleanup()
        return n_ids, n_rows, first.tolist()


def chunk_checks(cols:dict, scorer:Scorer, categories:dict, offset:int=0)->dict:
    "Raise ValueError for a non-numeric or negative number (with file lines), as data.check_numeric; returns {column: {unseen text: count}}."
    for c in scorer.numeric:
        v = cols[c]
        if v.bad.any():  # decided per distinct text; only then a pass over the rows
            rows = np.flatnonzero(np.isin(v.codes, np.flatnonzero(v.bad)))
            raise ValueError(f'{c}: {len(rows):,} refused value(s) (not a number, infinite, negative or too large) at line(s) {", ".join(map(str, rows[:5] + offset + 2))}')
    unseen = {}
    for c, cats in categories.items():
        v = cols[c]
        d = v.dictionary.to_pylist()
        na = set(NA_VALUES)
        new = [i for i, x in enumerate(d) if x not in cats and x not in na]  # a loop over the distinct texts, not the rows
        if new:
            n = np.bincount(v.codes[v.codes >= 0], minlength=len(d))
            unseen[c] = {d[i]: int(n[i]) for i in new if n[i]}
    return unseen


def score_file(inp:str|Path, out:str|Path, scorer:Scorer, classes=('A', 'B', 'C', 'D'), chunk_rows:int=65536,
               timings:dict|None=None, checks:bool=True, id_check:bool=True, block_bytes:int=1 << 20,
               reader_threads:bool=True)->dict:
    """Score CSV `inp` into `out` (input columns + Segmentation + prob_*); chunks are parsed, checked, transformed and
    forwarded on a pool of 2 threads (BLAS 1 thread each) while the main thread reads and writes in order. Returns a summary."""
    import time, pyarrow.csv as pacsv
    from collections import deque, Counter
    tm = timings if timings is not None else {}
    for k in ('read', 'compute', 'write'): tm.setdefault(k, 0.0)
    with open(inp, 'rb') as f: header = f.readline().decode('utf-8-sig').rstrip('\r\n').split(',')
    # small blocks: Arrow's streaming reader reads up to 32 blocks ahead in the background, so the block size bounds
    # memory when the computing lags behind the reading; batches are gathered into chunks of `chunk_rows`
    ro = pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=block_bytes, use_threads=reader_threads)
    co = pacsv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=False, quoted_strings_can_be_null=False)
    reader = pacsv.open_csv(str(inp), read_options=ro, convert_options=co)
    labels = pa.array(list(classes), pa.string())
    cats = {b['columns'][i]: set(s['categories'][i]) for b in scorer.blocks for s in b['steps'] if s['op'] == 'onehot'
            for i in range(len(b['columns']))}
    pool = ThreadPoolExecutor(2)
    unseen, counts = {}, np.zeros(len(classes), np.int64)
    ids = IdSpill() if id_check else None
    def compute(t, offset):
        t0 = time.perf_counter()
        cols = read_columns(t, scorer.columns, scorer.numeric)
        u = chunk_checks(cols, scorer, cats, offset) if checks else {}
        h = id_hashes(t[header[0]]) if id_check else None  # 8 bytes a row, kept to the end: the one memory cost that grows
        p = scorer.score_columns(cols)
        p64 = p.astype(np.float64)
        p = (p64 / p64.sum(1, keepdims=True)).astype(np.float32)  # as deploy._predict
        best = p.argmax(1)
        t = t.append_column('Segmentation', pc.take(labels, pa.array(best)))
        for i, c in enumerate(classes): t = t.append_column(f'prob_{c}', pa.array(p[:, i]))
        tm['compute'] += time.perf_counter() - t0
        return t, u, h, np.bincount(best, minlength=len(classes))
    rows, pending, offset = 0, deque(), 0
    tmp = Path(out).with_name(f'.{Path(out).name}.part')
    def write_csv(t, f):  # as customer_files.csv_bytes: unquoted, or every text quoted if some value needs it
        for q in ('none', 'needed'):
            try:
                buf = pa.BufferOutputStream()
                pacsv.write_csv(t, buf, pacsv.WriteOptions(include_header=False, quoting_style=q))
                return f.write(buf.getvalue())
            except pa.ArrowInvalid:
                if q == 'needed': raise
    try:
        with open(tmp, 'wb') as fo, blas_threads(1):
            fo.write((','.join(header + ['Segmentation'] + [f'prob_{c}' for c in classes]) + '\n').encode())
            def drain(k):
                nonlocal rows, counts
                while len(pending) > k:
                    t, u, h, cnt = pending.popleft().result()
                    for c, d in u.items(): unseen.setdefault(c, Counter()).update(d)
                    if h is not None: ids.add(h, np.arange(rows, rows + len(h)) + 2)  # file lines: the header is line 1
                    counts += cnt
                    t0 = time.perf_counter(); write_csv(t, fo); tm['write'] += time.perf_counter() - t0
                    rows += t.num_rows
            batches, nb, done = [], 0, False
            while not done:
                t0 = time.perf_counter()
                try: b = reader.read_next_batch(); batches.append(b); nb += b.num_rows
                except StopIteration: done = True
                tm['read'] += time.perf_counter() - t0
                if batches and (nb >= chunk_rows or done):
                    pending.append(pool.submit(compute, pa.Table.from_batches(batches), offset))
                    offset += nb; batches, nb = [], 0
                    drain(2)  # at most 3 chunks in flight: memory stays flat in the file's size
            drain(0)
        os.replace(tmp, out)
    finally:
        pool.shutdown(cancel_futures=True)
        if tmp.exists(): tmp.unlink()
    dup = ids.report() if ids is not None else None
    return {'rows': rows, 'segments': dict(zip(classes, counts.tolist())), 'unseen': {c: dict(d) for c, d in unseen.items()},
            'repeated_ids': dup and {'ids': dup[0], 'rows': dup[1], 'first_repeat_lines': dup[2]}}


def _serial_forward(scorer:Scorer, X:np.ndarray)->np.ndarray:
    "The forward pass of one chunk on the calling thread (the file job already runs two chunks at once)."
    out = np.empty((len(X), scorer.n_outputs), np.float32)
    for i in range(0, len(X), scorer.batch): scorer._forward(X[i:i + scorer.batch], out[i:i + scorer.batch])
    return out


# ======================================================================================================================
# Self-test
# ======================================================================================================================

def _spline_modes_test():
    "Every exported extrapolation mode, bias or not, quantile knots with ties, against SplineTransformer itself."
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import SplineTransformer
    rng = np.random.default_rng(0)
    x = np.r_[rng.integers(18, 90, 500), [30] * 200].astype(float)  # ties: repeated quantile knots
    fit = pd.DataFrame({'a': x, 'b': rng.normal(3, 2, len(x))})
    probe = pd.DataFrame({'a': np.r_[x, -50, 0, 17.999, 18, 89, 89.0001, 500, np.linspace(-20, 120, 301)],
                          'b': np.r_[fit.b, -9, 0, 1, 2, 3, 30, 1e4, np.linspace(-10, 16, 301)]})
    worst = 0.0
    for ext in ('constant', 'linear', 'continue', 'error'):
        for bias in (True, False):
            for knots, deg in (('quantile', 3), ('uniform', 2), ('uniform', 1)):
                st = SplineTransformer(n_knots=7, degree=deg, knots=knots, extrapolation=ext, include_bias=bias)
                ct = ColumnTransformer([('s', st, ['a', 'b'])]).fit(fit)
                arrays = _Arrays()
                try: spec = {'preprocessing': _export_preprocessor(ct, arrays)}
                except ParamsError:
                    assert ext == 'linear' and deg == 1; continue  # refused, see _export_spline
                sc = Scorer.__new__(Scorer)
                sc.arrays, sc.blocks, sc.n_inputs = dict(arrays), spec['preprocessing']['blocks'], spec['preprocessing']['n_inputs']
                sc.columns, sc.numeric = ['a', 'b'], {'a', 'b'}
                pr = probe if ext != 'error' else probe[(probe.a.between(x.min(), x.max())) & probe.b.between(fit.b.min(), fit.b.max())]
                for how in ('distinct', 'rows'):
                    got = sc.transform({c: pr[c].to_numpy() for c in pr}, dtype=np.float64, how=how)
                    worst = max(worst, float(np.max(np.abs(got - ct.transform(pr)))))
    assert worst <= 1e-9, worst
    print(f'spline modes (constant/linear/continue/error x bias x degree 1-3, ties in knots): max diff {worst:.3g}')


def _selftest(model_dir:str|Path=Path(__file__).parent/'model_snapshot', data=Path('/work/main/dataset/train.csv')):
    import sys, tempfile, time, warnings
    sys.path.insert(0, str(Path(__file__).parent/'pkg_snapshot'))
    warnings.simplefilter('ignore')
    from customer_segmentation.preprocess import load_preprocessor
    import pandas as pd
    pre = load_preprocessor(Path(model_dir)/'preprocessor.skops')
    t = time.perf_counter()
    params = export_params(pre, Path(model_dir)/'model.keras', classes=['A', 'B', 'C', 'D'])
    print(f'export: {len(params["arrays"])} arrays, {sum(a.nbytes for a in params["arrays"].values()):,} bytes, {time.perf_counter() - t:.2f} s')
    train = pd.read_csv(data, dtype=str, keep_default_na=False, na_values=list(NA_VALUES))
    numeric = {c for b in params['spec']['preprocessing']['blocks'] if b['kind'] == 'numeric' for c in b['columns']}
    rows = {c: (pd.to_numeric(train[c]).tolist() if c in numeric else train[c].tolist()) for c in params['spec']['preprocessing']['columns']}
    r = check_params(params, pre, None, rows=rows)
    print('check_params (preprocessing, train rows + edge cases):', r)
    add_golden(params, pre, None)
    with tempfile.TemporaryDirectory() as d:
        save_params(params, Path(d)/'scoring.npz')
        back = load_params(Path(d)/'scoring.npz')
        size = (Path(d)/'scoring.npz').stat().st_size
    assert json.dumps(back['spec'], sort_keys=True) == json.dumps(params['spec'], sort_keys=True)
    assert all(np.array_equal(back['arrays'][k], v, equal_nan=v.dtype.kind == 'f') for k, v in params['arrays'].items())
    print(f'save/load round trip ok ({size:,} bytes); golden check:', check_golden(back))
    # refusals
    bad = {'spec': {**back['spec'], 'format_version': 99}, 'arrays': back['arrays']}
    with tempfile.TemporaryDirectory() as d:
        save_params(bad, Path(d)/'x.npz')
        try: load_params(Path(d)/'x.npz'); raise AssertionError('version not refused')
        except ParamsError as e: print('refused:', str(e)[-60:])
    tampered = {'spec': back['spec'], 'arrays': {**back['arrays']}}
    k = next(k for k in tampered['arrays'] if k.endswith('/scale/scale'))
    tampered['arrays'][k] = tampered['arrays'][k] * (1 + 1e-6)
    try: check_golden(tampered); raise AssertionError('tampering not detected')
    except ParamsError as e: print('tampered scale detected:', e)
    _spline_modes_test()
    print('self-test passed')


if __name__ == '__main__':
    _selftest()
