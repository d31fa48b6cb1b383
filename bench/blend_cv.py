"""What would averaging the network with gradient boosting score? (not a test; the blend is not what ships)

Cross-validates the shipped network recipe (`NetConfig()`) and the regularised gradient boosting (`HGB_TUNED`) on the
same folds with the package's own learners, then scores the average of their out-of-fold probabilities, with weight `w`
on gradient boosting and `1 - w` on the network, at 5-fold (the leaderboard's folds) and 10-fold (models trained on 90% of
the rows, closer to the shipped model). Per-fold scores are averaged over folds and repeats, and each blend is paired with
the network on the same folds. Writes results/blend_cv.json, which nbs/research/expected_accuracy.ipynb renders. About 4
minutes.

    .venv/bin/python bench/blend_cv.py              # 5- and 10-fold, 2 repeats, seed 42
    .venv/bin/python bench/blend_cv.py --k 10 --seed 43
"""
from __future__ import annotations
import os, time
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')
import numpy as np
from cv_common import fold_parser, parse_checked, training_data, write_json  # bench/ is the script's directory, so on sys.path

WEIGHTS = (0, 0.25, 0.5, 0.75, 1)


def main(argv=None):
    ap = fold_parser(__doc__)
    ap.add_argument('--seed', type=int, default=42, help="the network's training seed (NetConfig.seed)")
    from customer_segmentation.files import project_path
    a = parse_checked(ap, argv, project_path('results', 'blend_cv.json'))
    import dataclasses
    from customer_segmentation.fit.evaluate import HGB_TUNED, blend, cross_validate, cv_folds, hgb_learner, leaderboard, paired_differences
    from customer_segmentation.fit.model import NetConfig, network_learner
    train, y, data = training_data()
    config = dataclasses.replace(NetConfig(), seed=a.seed)
    schemes = []
    for k in sorted(a.k):
        folds = cv_folds(y, n_splits=k, n_repeats=a.repeats, seed=42)
        t0 = time.time()
        net = cross_validate(network_learner(config), train, y, folds, 'network', n_splits=k)
        hgb = cross_validate(hgb_learner(**HGB_TUNED), train, y, folds, 'gradient boosting (regularised)', n_splits=k)
        blends = [blend(net, hgb, y, folds, w, f'gradient boosting weight {w:g}', n_splits=k) for w in WEIGHTS]
        board = leaderboard(blends)
        diffs = paired_differences(blends, blends[0].name)[['d_accuracy', 'd_accuracy_se', 'd_log_loss']].reindex(board.index, fill_value=0.0)  # the network against itself: 0
        rows = []
        for w, b in zip(WEIGHTS, blends):
            rows.append({'hgb_weight': w, **{c: float(board.loc[b.name, c]) for c in board.columns if c.endswith(('_mean', '_std'))},
                         'd_accuracy_vs_network': float(diffs.loc[b.name, 'd_accuracy']), 'd_accuracy_se': float(diffs.loc[b.name, 'd_accuracy_se']),
                         'd_log_loss_vs_network': float(diffs.loc[b.name, 'd_log_loss']),
                         'folds_better_accuracy': int((b.folds['accuracy'] > net.folds['accuracy']).sum())})
            print(f"{k:2d}-fold x{a.repeats}, gradient boosting weight {w:4.2f}: accuracy {rows[-1]['accuracy_mean']:.4f} "
                  f"({rows[-1]['d_accuracy_vs_network']:+.4f} ± {rows[-1]['d_accuracy_se']:.4f} vs network)  "
                  f"log loss {rows[-1]['log_loss_mean']:.4f}", flush=True)
        schemes.append({'k': k, 'repeats': a.repeats, 'train_share': 1 - 1 / k, 'seconds': round(time.time() - t0, 1), 'blends': rows})
    doc = {'command': ' '.join(['bench/blend_cv.py', *(argv or [])]), 'data': data,
           'network_config': config.to_dict(), 'hgb_params': HGB_TUNED, 'folds_seed': 42, 'schemes': schemes}
    write_json(a.out, doc)


if __name__ == '__main__':
    import sys
    main(sys.argv[1:])
