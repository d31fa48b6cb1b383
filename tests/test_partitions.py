"""Scoring folders of partitions on Dask: a LocalCluster of two worker processes and an existing cluster (a `dask scheduler`
and two `dask worker` processes started here on 127.0.0.1, used through `custseg score --scheduler`) give the rows of
one-file scoring; a failing partition fails the run by name and commits nothing; a cluster that loses its workers or its
scheduler in the middle of a run ends it with a ClusterError (one line, exit 2, from the CLI) within seconds, nothing
written. Every cluster is bounded in time and closed."""
import os, shutil, signal, socket, subprocess, sys, threading, time, warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from customer_segmentation.data import CustomerDataError, project_path
from customer_segmentation.deploy import score_csv
from customer_segmentation.files import PathError
from customer_segmentation.partitions import LOST_WORKERS_TIMEOUT, ClusterError, score_partitions

BIN = Path(sys.executable).parent
NEW = project_path('dataset', 'new_customers.csv')
PARTS = 4


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    "(the new customers cut into Parquet partitions, into CSV partitions (one gzipped), the one-file scores of the same rows)."
    d = tmp_path_factory.mktemp('partitions')
    df = pd.read_csv(NEW, dtype=str, keep_default_na=False)
    (d/'pq').mkdir(); (d/'csv').mkdir()
    for i in range(PARTS):
        part = df.iloc[i::PARTS]
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), d/'pq'/f'part-{i}.parquet')
        part.to_csv(d/'csv'/(f'part-{i}.csv.gz' if i == 0 else f'part-{i}.csv'), index=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        score_csv(NEW, d/'whole.csv', drift_report=False)
    return d/'pq', d/'csv', pd.read_csv(d/'whole.csv', dtype={'ID': str}).set_index('ID')


def scored_rows(folder):
    "The scored partitions of `folder` as one frame indexed by ID (Parquet or CSV)."
    read = lambda p: pd.read_parquet(p) if p.suffix == '.parquet' else pd.read_csv(p, dtype={'ID': str})
    return pd.concat([read(p) for p in sorted(folder.iterdir())]).set_index('ID')


def same_scores(folder, whole):
    got = scored_rows(folder)
    assert sorted(got.index) == sorted(whole.index) and len(got) == len(whole)
    got = got.loc[whole.index]
    assert (got['Segmentation'] == whole['Segmentation']).all()
    probs = [c for c in whole.columns if c.startswith('prob_')]
    assert np.abs(got[probs].to_numpy(np.float64) - whole[probs].to_numpy(np.float64)).max() <= 1e-6


def run(*kw, **kws):
    with warnings.catch_warnings(record=True):
        warnings.simplefilter('always')
        return score_partitions(*kw, **kws)


def test_local_cluster_scores_parquet_and_csv_partitions_as_one_file(folders, tmp_path):
    pq_dir, csv_dir, whole = folders
    s = run(pq_dir, tmp_path/'scored_pq', workers=2)
    assert sorted(p.name for p in (tmp_path/'scored_pq').iterdir()) == [f'part-{i}.parquet' for i in range(PARTS)]
    assert s.rows == len(whole) and sum(s.segment_counts.values()) == len(whole) and s.drift['rows'] == len(whole)
    same_scores(tmp_path/'scored_pq', whole)
    s = run(csv_dir, tmp_path/'scored_csv', workers=2, format='parquet')
    assert sorted(p.name for p in (tmp_path/'scored_csv').iterdir()) == [f'part-{i}.parquet' for i in range(PARTS)]
    same_scores(tmp_path/'scored_csv', whole)
    assert (tmp_path/'scored_csv_drift.json').is_file()


def test_a_failing_partition_fails_the_run_by_name_and_commits_nothing(folders, tmp_path):
    pq_dir, _, _ = folders
    bad = tmp_path/'bad'; shutil.copytree(pq_dir, bad)
    t = pq.read_table(bad/'part-2.parquet'); ages = t['Age'].to_pylist(); ages[3] = 'forty'
    pq.write_table(t.set_column(t.schema.get_field_index('Age'), 'Age', pa.array(ages)), bad/'part-2.parquet')
    before = {p.name: p.read_bytes() for p in bad.iterdir()}
    with pytest.raises(CustomerDataError, match=r"part-2\.parquet: column Age must be numeric.*\('forty'\) at line\(s\) 5"):
        run(bad, tmp_path/'out', workers=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bad']  # no output folder, no temporary one, no report
    assert {p.name: p.read_bytes() for p in bad.iterdir()} == before  # the input untouched


def test_in_process_glob_with_rejects_folder(folders, tmp_path):
    _, csv_dir, whole = folders
    s = run(str(csv_dir/'part-[12].csv'), tmp_path/'two', format='csv', rejects_path=tmp_path/'rejects')
    assert sorted(p.name for p in (tmp_path/'two').iterdir()) == ['part-1.csv', 'part-2.csv']
    assert s.rows == len(scored_rows(tmp_path/'two')) and s.rejected == 0 and (tmp_path/'rejects').is_dir()


def test_output_inside_the_input_is_refused(folders):
    pq_dir, _, _ = folders
    with pytest.raises(CustomerDataError, match='holds the input partitions'): run(pq_dir, pq_dir)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    """A `dask scheduler` and two `dask worker` processes on 127.0.0.1 (address, scheduler, workers), each in its own process group
    (a worker's nanny and its worker process are killed together), stopped afterwards."""
    address = f'tcp://127.0.0.1:{free_port()}'
    env = {**os.environ, 'DASK_DISTRIBUTED__WORKER__DAEMON': 'False'}
    start = lambda *cmd: subprocess.Popen([BIN/'dask', *cmd, '--no-dashboard'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          env=env, cwd=tmp_path, start_new_session=True)
    procs = [start('scheduler', '--host', '127.0.0.1', '--port', address.rsplit(':', 1)[1])]
    try:
        from distributed import Client
        client = Client(address, timeout=60)
        procs += [start('worker', address, '--nthreads', '1', '--nworkers', '1') for _ in range(2)]
        client.wait_for_workers(2, timeout=90)
        client.close()
        yield SimpleNamespace(address=address, scheduler=procs[0], workers=procs[1:])
    finally:
        for p in procs[::-1]: p.terminate()
        for p in procs[::-1]:
            try: p.wait(timeout=20)
            except subprocess.TimeoutExpired: kill(p)


def kill(p):
    "SIGKILL the process group of `p` (a nanny and its worker, or the scheduler), if it still runs."
    try: os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError: pass


def test_existing_cluster_through_the_cli(folders, tmp_path, cluster):
    pq_dir, _, whole = folders
    r = subprocess.run([BIN/'custseg', 'score', pq_dir, '-o', tmp_path/'scored', '--scheduler', cluster.address], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith(f'Scored {len(whole):,} rows of ')
    same_scores(tmp_path/'scored', whole)


def test_unreachable_scheduler_and_single_file_options_are_clear_errors(tmp_path):
    r = subprocess.run([BIN/'custseg', 'score', tmp_path, '-o', tmp_path/'o', '--scheduler', f'tcp://127.0.0.1:{free_port()}'],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'holds no partitions' in r.stderr, r.stderr  # the input is checked before any cluster
    (tmp_path/'p.csv').write_bytes(NEW.read_bytes())
    r = subprocess.run([BIN/'custseg', 'score', tmp_path, '-o', tmp_path/'o', '--scheduler', f'tcp://127.0.0.1:{free_port()}'],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'cannot reach the Dask scheduler' in r.stderr and not (tmp_path/'o').exists(), r.stderr
    r = subprocess.run([BIN/'custseg', 'score', NEW, '-o', tmp_path/'x.csv', '--workers', '2'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'are for a folder or glob of partitions' in r.stderr, r.stderr


def test_papermill_scores_a_folder_on_a_local_cluster(folders, tmp_path):
    "`papermill nbs/06_deploy.ipynb ... -p input_path FOLDER -p workers 2`: the job's own parameters, the same rows."
    pq_dir, _, whole = folders
    cmd = [BIN/'papermill', '--cwd', project_path('nbs'), '--log-level', 'WARNING', project_path('nbs', '06_deploy.ipynb'), tmp_path/'run.ipynb',
           '-p', 'input_path', pq_dir, '-p', 'output_path', tmp_path/'scored', '-p', 'workers', '2', '-p', 'labeled_path', '']
    r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, env={**os.environ, 'IN_TEST': ''}, timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path/'scored').iterdir()) == [f'part-{i}.parquet' for i in range(PARTS)]
    same_scores(tmp_path/'scored', whole)
    assert f'Scored {len(whole):,} customers of' in (tmp_path/'run.ipynb').read_text()
    assert (tmp_path/'scored_drift.json').is_file() and (tmp_path/'scored_segment_mix.png').is_file()


def test_nothing_is_lost_to_a_folder_run(folders, tmp_path):
    "An output folder holding other files, a rejects folder inside the output, two partitions of one name: refused, nothing written."
    pq_dir, csv_dir, _ = folders
    (tmp_path/'out').mkdir(); (tmp_path/'out'/'precious.txt').write_text('mine')
    with pytest.raises(CustomerDataError, match=r'holds files other than scored partitions \(precious.txt\)'): run(pq_dir, tmp_path/'out')
    assert (tmp_path/'out'/'precious.txt').read_text() == 'mine'
    with pytest.raises(CustomerDataError, match='must be apart from the output folder'): run(pq_dir, tmp_path/'o2', rejects_path=tmp_path/'o2'/'rej')
    for d in ('b', 'c'): (tmp_path/d).mkdir(); shutil.copy(csv_dir/'part-1.csv', tmp_path/d/'part-1.csv')
    with pytest.raises(CustomerDataError, match='would both be written as part-1.csv'): run(str(tmp_path/'*'/'part-1.csv'), tmp_path/'o3')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['b', 'c', 'out']


def test_a_file_whose_name_looks_like_a_glob_is_one_file(tmp_path):
    shutil.copy(NEW, tmp_path/'cust[2024].csv')
    r = subprocess.run([BIN/'custseg', 'score', 'cust[2024].csv', '-o', 'out.csv'], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and (tmp_path/'out.csv').is_file(), r.stderr


def test_options_are_checked_before_anything_is_written(folders, tmp_path):
    "As for one file: a drift report that cannot be a file, or --reject-out-of-range without rejects, is refused first."
    pq_dir, _, _ = folders
    (tmp_path/'a_file').write_text('mine')
    with pytest.raises(PathError, match='a_file: is a file, so'): run(pq_dir, tmp_path/'o', drift_report=tmp_path/'a_file'/'d.json')
    with pytest.raises(CustomerDataError, match='needs a rejects file'): run(pq_dir, tmp_path/'o', reject_out_of_range=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a_file']


def test_a_drift_report_that_cannot_be_written_commits_no_partitions(folders, tmp_path, monkeypatch):
    "The scored folder and the drift report are one transaction: a report that fails leaves no output folder."
    import customer_segmentation.scoring.drift as drift
    pq_dir, _, _ = folders
    def broken(*a, **k): raise OSError(28, 'No space left on device')
    monkeypatch.setattr(drift, 'plot_drift', broken)
    with pytest.raises(PathError, match='the disk is full'): run(pq_dir, tmp_path/'o', drift_figure=True)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope='module')
def big(tmp_path_factory):
    "Four Parquet partitions of 500,000 customers each (the new customers repeated, with fresh IDs): seconds of scoring each, at one thread."
    d = tmp_path_factory.mktemp('big')
    t = pa.Table.from_pandas(pd.read_csv(NEW, dtype=str, keep_default_na=False), preserve_index=False)
    ids, n = t['ID'].to_numpy().astype(np.int64), 500_000
    reps = -(-n // len(t))
    for i in range(PARTS):
        ids_i = np.concatenate([ids + (i * reps + k) * 10**7 for k in range(reps)])[:n].astype(str)
        pq.write_table(pa.concat_tables([t] * reps).slice(0, n).set_column(0, 'ID', pa.array(ids_i)), d/f'part-{i}.parquet')
    return d


def scoring(out, running, timeout=60):
    "Wait until the run into `out` writes its first partition (a file in its hidden temporary folder) while `running()`."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running():
        try:
            if any(any(d.iterdir()) for d in out.parent.glob(f'.{out.name}.*.part')): return
        except FileNotFoundError: pass
        time.sleep(0.05)
    pytest.fail(f'the run into {out} did not start scoring')


def kill_mid_run(big, out, procs, **kw):
    "(the error of `score_partitions(big, out, **kw)` when `procs` are killed while it scores, the seconds from the kill to the run's end)."
    ended = {}
    out.parent.mkdir()
    def go():
        try: run(big, out, **kw)
        except Exception as e: ended['error'] = e
    th = threading.Thread(target=go, daemon=True)  # (a run that hangs fails the test, not the session)
    th.start(); scoring(out, th.is_alive)
    t = time.monotonic()
    for p in procs: kill(p)
    th.join(timeout=120)
    assert not th.is_alive(), 'the run did not end within 120 s of the kill'
    return ended.get('error'), time.monotonic() - t


def test_a_cluster_that_loses_its_workers_stops_the_run(big, tmp_path, cluster):
    e, seconds = kill_mid_run(big, tmp_path/'run'/'scored', cluster.workers, scheduler=cluster.address, lost_workers_timeout=3)
    assert isinstance(e, ClusterError) and f'the Dask cluster at {cluster.address} lost all its workers' in str(e), repr(e)
    assert seconds < 15, seconds
    assert list((tmp_path/'run').iterdir()) == []  # no output folder, no temporary one


def test_a_cluster_that_loses_its_scheduler_stops_the_run(big, tmp_path, cluster):
    e, seconds = kill_mid_run(big, tmp_path/'run'/'scored', [cluster.scheduler], scheduler=cluster.address)
    assert isinstance(e, ClusterError) and f'lost the Dask scheduler at {cluster.address}' in str(e), repr(e)
    assert seconds < 15, seconds
    time.sleep(4)  # the surviving workers finish the partitions they were scoring, and write none of them
    assert list((tmp_path/'run').iterdir()) == []
    for p in cluster.workers: kill(p)  # (faster than stopping workers that have no scheduler)


@pytest.mark.parametrize('lost', ['workers', 'scheduler'])
def test_a_lost_cluster_is_one_line_from_the_cli(big, tmp_path, cluster, lost):
    (tmp_path/'run').mkdir()
    cli = subprocess.Popen([BIN/'custseg', 'score', big, '-o', tmp_path/'run'/'scored', '--scheduler', cluster.address],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        scoring(tmp_path/'run'/'scored', lambda: cli.poll() is None)
        t = time.monotonic()
        for p in cluster.workers if lost == 'workers' else [cluster.scheduler]: kill(p)
        out, err = cli.communicate(timeout=120)
    finally:
        cli.kill(); cli.wait(timeout=20)
        for p in cluster.workers: kill(p)  # (faster than stopping workers that have no scheduler)
    assert time.monotonic() - t < LOST_WORKERS_TIMEOUT + 15 and cli.returncode == 2, (cli.returncode, err)
    assert len(err.splitlines()) == 1 and err.startswith('custseg: error: ') and 'nothing was written' in err, err
    assert list((tmp_path/'run').iterdir()) == []
