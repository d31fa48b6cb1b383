"""Where a scoring run's CPU goes (not a test): `score_csv` on the benchmark's 10^6 generated customers, in this process,
under cProfile: the main thread (reading, merging, writing) and every `score_chunk` call on the worker threads, each
profiled on its own thread and added up. Prints the wall time of an unprofiled run beside it, then the top entries.

    .venv/bin/python bench/profile_scoring.py [--rows 1000000] [--top 25]
"""
from __future__ import annotations
import argparse, cProfile, io, pstats, sys, tempfile, time, warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from score_speed import make_input  # the benchmark's synthetic customers, cached in bench/out/


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--rows', type=int, default=10**6)
    ap.add_argument('--top', type=int, default=25)
    a = ap.parse_args(argv)
    if a.rows < 1 or a.top < 1: ap.error('--rows and --top must be positive')
    from customer_segmentation.deploy import ScoringRun, load_scoring_model, score_csv
    inp, model = make_input(a.rows), load_scoring_model()
    warnings.simplefilter('ignore')
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter(); score_csv(inp, Path(d)/'o.csv', model=model, progress=False); wall2 = time.perf_counter() - t
        chunk_profiles, score_chunk = [], ScoringRun.score_chunk
        def profiled(self, *args, **kw):  # cProfile sees one thread: each chunk gets a profile of its own
            p = cProfile.Profile(); p.enable()
            try: return score_chunk(self, *args, **kw)
            finally: p.disable(); chunk_profiles.append(p)
        ScoringRun.score_chunk, main_profile = profiled, cProfile.Profile()
        try:
            t = time.perf_counter(); main_profile.enable(); score_csv(inp, Path(d)/'o1.csv', model=model, progress=False)
            main_profile.disable(); wall1 = time.perf_counter() - t
        finally: ScoringRun.score_chunk = score_chunk
    print(f'{a.rows:,} rows: {wall2:.2f} s unprofiled, {wall1:.2f} s profiled (two threads both times)')
    out = io.StringIO()
    for name, profs in (('main thread (read, merge, write)', [main_profile]), ('worker threads (score_chunk)', chunk_profiles)):
        st = pstats.Stats(*profs, stream=out)
        out.write(f'\n== {name}: {st.total_tt:.2f} s of CPU\n')
        st.sort_stats('tottime').print_stats(a.top)
    print(out.getvalue())


if __name__ == '__main__': main()
