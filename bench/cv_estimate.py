"""How precise is the network's cross-validated accuracy, and what does it say about the shipped model? (not a test)

Re-measures the shipped recipe (`NetConfig()` defaults) by cross-validation under two schemes, for several draws of the
network's training seed (`NetConfig.seed`), with the package's own `network_learner` and `cross_validate`:

- 5-fold x R: models trained on 80% of the rows, the leaderboard's scheme (nbs/05_modelling.ipynb);
- 10-fold x R: models trained on 90% of the rows, a closer estimate of the shipped model, which trains on all rows;
- optionally 20-fold x R (`--k 20`): models trained on 95% of the rows, closer still.

The folds are the same for every draw (`cv_folds`, seed 42); only the training seed changes, so the spread between
draws is the part of the noise that comes from training. Prints one line per run and a summary, and writes everything
to results/cv_estimate.json (or `--out`). About 4 minutes per seed draw on 2 cores for 5 and 10 folds, 5 for 20 folds.

    .venv/bin/python bench/cv_estimate.py                          # seeds 42 43 44 45, 5 and 10 folds, 2 repeats (about 17 minutes)
    .venv/bin/python bench/cv_estimate.py --seeds 42 --repeats 1   # seed 42 is the leaderboard's: the same 5-fold numbers
    .venv/bin/python bench/cv_estimate.py --k 20 --out results/cv_estimate_20fold.json   # 95% of rows (about 20 minutes)
"""
from __future__ import annotations
import dataclasses, os, time
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')
import numpy as np
from cv_common import fold_parser, parse_checked, training_data, write_json  # bench/ is the script's directory, so on sys.path


def main(argv=None):
    ap = fold_parser(__doc__)
    ap.add_argument('--seeds', type=int, nargs='+', default=[42, 43, 44, 45], help='training seeds (NetConfig.seed), one run each')
    from customer_segmentation.files import project_path
    a = parse_checked(ap, argv, project_path('results', 'cv_estimate.json'))
    from customer_segmentation.fit.evaluate import METRICS, cross_validate, cv_folds
    from customer_segmentation.fit.model import NetConfig, network_learner
    train, y, data = training_data()
    schemes = {k: cv_folds(y, n_splits=k, n_repeats=a.repeats, seed=42) for k in sorted(a.k)}
    runs = []
    for seed in a.seeds:
        config = dataclasses.replace(NetConfig(), seed=seed)
        for k, folds in schemes.items():
            t0 = time.time()
            r = cross_validate(network_learner(config), train, y, folds, f'{k}-fold seed {seed}', n_splits=k)
            run = {'seed': seed, 'k': k, 'repeats': a.repeats, 'train_share': 1 - 1 / k, 'seconds': round(time.time() - t0, 1),
                   **{f'{m}_mean': float(r.folds[m].mean()) for m in METRICS}, **{f'{m}_std': float(r.folds[m].std()) for m in METRICS}}
            runs.append(run)
            print(f"seed {seed} {k:2d}-fold x{a.repeats}: accuracy {run['accuracy_mean']:.4f}  macro F1 {run['macro_f1_mean']:.4f}  "
                  f"log loss {run['log_loss_mean']:.4f}  ({run['seconds']:.0f}s)", flush=True)
    summary = {}
    for k in schemes:
        acc = np.array([r['accuracy_mean'] for r in runs if r['k'] == k])
        ll = np.array([r['log_loss_mean'] for r in runs if r['k'] == k])
        summary[f'{k}-fold'] = {'accuracy_mean_over_seeds': float(acc.mean()), 'accuracy_min': float(acc.min()), 'accuracy_max': float(acc.max()),
                                'log_loss_mean_over_seeds': float(ll.mean())}
    ks = list(schemes)
    for lo, hi in zip(ks, ks[1:]):  # each scheme against the next smaller one, paired on the training seed
        acc = {(r['seed'], r['k']): r['accuracy_mean'] for r in runs}
        d = np.array([acc[s, hi] - acc[s, lo] for s in a.seeds])
        summary[f'{hi}-fold minus {lo}-fold accuracy'] = {'mean': float(d.mean()), 'per_seed': d.tolist()}
    for k in schemes:
        s = summary[f'{k}-fold']
        print(f"{k:2d}-fold x{a.repeats} over {len(a.seeds)} seeds: accuracy {s['accuracy_mean_over_seeds']:.4f} "
              f"(from {s['accuracy_min']:.4f} to {s['accuracy_max']:.4f}), log loss {s['log_loss_mean_over_seeds']:.4f}")
    for name, v in summary.items():
        if 'minus' in name: print(f"{name}, same seed: {v['mean']:+.4f} (per seed: {', '.join(f'{x:+.4f}' for x in v['per_seed'])})")
    doc = {'command': ' '.join(['bench/cv_estimate.py', *(argv or [])]), 'data': data,
           'config': NetConfig().to_dict(), 'folds_seed': 42, 'runs': runs, 'summary': summary}
    write_json(a.out, doc)


if __name__ == '__main__':
    import sys
    main(sys.argv[1:])
