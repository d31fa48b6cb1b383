"""What the cross-validation scripts (cv_estimate.py, blend_cv.py) share: fold arguments checked before any compute,
the labeled training data, and atomic JSON output. Imports no TensorFlow."""
from __future__ import annotations
import argparse, json, os
import numpy as np


def fold_parser(doc:str)->argparse.ArgumentParser:
    "An argument parser (described by the first line of `doc`) with the fold arguments --k, --repeats and --out."
    ap = argparse.ArgumentParser(description=doc.split('\n')[0])
    ap.add_argument('--k', type=int, nargs='+', default=[5, 10], help='folds of each scheme (each model trains on 1 - 1/k of the rows)')
    ap.add_argument('--repeats', type=int, default=2, help='repeats of each k-fold scheme')
    ap.add_argument('--out', default=None, help='JSON file to write (default: results/<script name>.json)')
    return ap


def parse_checked(ap:argparse.ArgumentParser, argv, default_out:str)->argparse.Namespace:
    "Parse `argv`, refusing bad arguments before any minutes of compute (k < 2, a value given twice, no folder for --out); `out` is filled in."
    a = ap.parse_args(argv)
    if min(a.k) < 2: ap.error(f'--k: each scheme needs at least 2 folds, got {min(a.k)}')
    if a.repeats < 1: ap.error(f'--repeats: at least 1, got {a.repeats}')
    for name in ('k', 'seeds'):
        v = getattr(a, name, None)
        if v is not None and len(set(v)) != len(v): ap.error(f'--{name}: each value once, got {" ".join(map(str, v))}')
    a.out = a.out or default_out
    folder = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(folder): ap.error(f'--out: folder {folder} does not exist; create it or write elsewhere')
    return a


def training_data()->tuple:
    "(customer frame, integer labels, facts about the file for the JSON record) of dataset/train.csv."
    from customer_segmentation.data import CLASSES, TARGET, file_sha256, load_customers
    from customer_segmentation.files import project_path
    path = project_path('dataset', 'train.csv')
    train = load_customers(path)
    return train, np.searchsorted(CLASSES, train[TARGET].to_numpy()), {'file': 'dataset/train.csv', 'sha256': file_sha256(path), 'rows': len(train)}


def write_json(path, doc:dict):
    "Write `doc` as strict JSON to `path` atomically (`files.write_json`: nothing is left behind on failure) and say so."
    from customer_segmentation.files import write_json
    write_json(doc, path)
    print(f'written: {path}')
