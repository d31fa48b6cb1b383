"""The cold-start path of the prototype, as a `custseg score` built on engine.py would run it:
python fast_cli.py INPUT OUTPUT [--no-skip-pandas] [--no-id-check]. Prints a JSON line with the phases' seconds."""
import time; T0 = time.perf_counter()
import sys, json, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engine as E
if '--no-skip-pandas' not in sys.argv: E.skip_pandas_probe()
T1 = time.perf_counter()
here = os.path.dirname(os.path.abspath(__file__))
meta = json.load(open(os.path.join(here, 'model_snapshot', 'metadata.json')))  # the package's read_metadata checks go here
scorer = E.load_checked(os.path.join(here, 'scoring.npz'), os.path.join(here, 'model_snapshot'))
T2 = time.perf_counter()
tm = {}
s = E.score_file(sys.argv[1], sys.argv[2], scorer, classes=tuple(meta['classes']), timings=tm, id_check='--no-id-check' not in sys.argv)
T3 = time.perf_counter()
print(json.dumps({'import_s': round(T1 - T0, 3), 'load_check_s': round(T2 - T1, 3), 'score_s': round(T3 - T2, 3),
                  'rows': s['rows'], 'pandas_imported': 'pandas' in sys.modules, 'busy': {k: round(v, 3) for k, v in tm.items()}}))
