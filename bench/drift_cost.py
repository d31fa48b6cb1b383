"""What the drift check costs a scoring run: the same file scored with the model's training profile (drift check on) and
without it (off), alternating, in one process after a warm-up; prints the medians and their ratio. `make bench-drift`.

Usage: python bench/drift_cost.py [--rows N] [--repeats K]   (a benchmark, not a test)
"""
from __future__ import annotations
import argparse, statistics, sys, tempfile, time, warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from score_speed import make_input  # the benchmark's synthetic customers, cached in bench/out/
from customer_segmentation.deploy import load_scoring_model, score_csv


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rows', type=int, default=1_000_000)
    ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args(argv)
    if a.rows < 1 or a.repeats < 1: ap.error('--rows and --repeats must be positive')
    inp, model = make_input(a.rows), load_scoring_model()
    profile, times = model.profile, {'on': [], 'off': []}
    if profile is None: sys.exit('the saved model has no training profile: retrain with `make run`')
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for i in range(a.repeats + 1):
            for mode in ('on', 'off'):
                model.profile = profile if mode == 'on' else None
                t0 = time.perf_counter()
                score_csv(inp, Path(d)/'scored.csv', model=model, drift_report=False, progress=False)
                if i: times[mode].append(time.perf_counter() - t0)  # the first round warms the caches
    on, off = statistics.median(times['on']), statistics.median(times['off'])
    print(f"{a.rows:,} rows, median of {a.repeats}: scoring with the drift check {on:.2f} s, without {off:.2f} s; "
          f"the check costs {on / off - 1:+.1%} of the scoring time")


if __name__ == '__main__': main()
