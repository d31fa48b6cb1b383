"""Nothing the user owns is ever harmed (issue #19): folders given as outputs, devices, FIFOs and links, every way a run can end
(an error, SIGINT, SIGTERM, SIGHUP, a closed pipe, SIGKILL then the next run), full disks and read-only folders. Each case runs
the `custseg` console script in a subprocess, as a user would, from a scratch folder with its own TMPDIR, and checks what is
left: every file that was there before, as it was, and nothing else."""
import json, os, shutil, signal, stat, subprocess, sys, time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from customer_segmentation.data import project_path

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT/'tests'/'fixtures'
NEW = project_path('dataset', 'new_customers.csv')
CUSTSEG = str(Path(sys.executable).parent/'custseg')
STOPPED = 'custseg: interrupted; nothing was written'


def custseg(*args, cwd, tmpdir, stdin=None, timeout=300):
    "`custseg ARGS` from `cwd` with TMPDIR `tmpdir`: (exit code, stdout bytes, stderr text)."
    r = subprocess.run([CUSTSEG, *map(str, args)], cwd=cwd, input=stdin, capture_output=True, timeout=timeout,
                       env={**os.environ, 'TMPDIR': str(tmpdir)})
    return r.returncode, r.stdout, r.stderr.decode()


def tree(folder):
    "Every path under `folder`: its kind, and the bytes of a file or the target of a link."
    def what(p):
        if p.is_symlink(): return ('link', os.readlink(p))
        if p.is_dir(): return ('folder',)
        return ('file', p.read_bytes()) if p.is_file() else ('special', stat.S_IFMT(p.lstat().st_mode))
    return {str(p.relative_to(folder)): what(p) for p in sorted(Path(folder).rglob('*'))}


def one_error(code, err, *needles):
    "Exit 2, one line `custseg: error: ...` holding each of `needles`."
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith('custseg: error: '), err
    for n in needles: assert n in lines[0], (n, lines[0])


@pytest.fixture
def box(tmp_path):
    "A scratch folder: `box/'work'` to run in, holding the customers as in.csv; `box/'tmp'` as TMPDIR (both checked empty of leftovers)."
    (work := tmp_path/'work').mkdir(); (tmp := tmp_path/'tmp').mkdir()
    (work/'in.csv').write_bytes((FIX/'customers.csv').read_bytes())
    return work, tmp


# --- folders given where a file belongs -------------------------------------------------------------------------------

def test_a_folder_as_the_output_is_refused_and_kept(box):
    work, tmp = box
    (work/'some_folder').mkdir(); (work/'some_folder'/'notes.txt').write_text('mine')
    before = tree(work)
    for out in ('some_folder', 'some_folder/', '.'):
        one_error(*custseg('score', 'in.csv', '-o', out, cwd=work, tmpdir=tmp)[::2], 'is a folder, and a file is written here')
    assert tree(work) == before and list(tmp.iterdir()) == []


def test_the_folder_holding_the_input_is_refused_and_the_input_kept(box):
    work, tmp = box
    (data := work/'project'/'data').mkdir(parents=True); (data/'in.csv').write_bytes((work/'in.csv').read_bytes())
    before = tree(work)
    one_error(*custseg('score', 'project/data/in.csv', '-o', 'project/data/', cwd=work, tmpdir=tmp)[::2], 'project/data: is a folder')
    assert tree(work) == before


def test_a_folder_as_the_rejects_file_is_refused_and_kept(box):
    work, tmp = box
    (work/'rej').mkdir(); (work/'rej'/'keep.csv').write_text('mine')
    before = tree(work)
    one_error(*custseg('score', 'in.csv', '-o', 'out.csv', '--rejects', 'rej', cwd=work, tmpdir=tmp)[::2], 'rej: is a folder')
    assert tree(work) == before


def test_a_folder_as_the_drift_report_gets_the_report_inside(box):
    work, tmp = box
    (work/'reports').mkdir(); (work/'reports'/'old.json').write_text('mine')
    code, _, err = custseg('score', NEW, '-o', 'scored.csv', '--drift-report', 'reports', cwd=work, tmpdir=tmp)
    assert code == 0, err
    assert sorted(p.name for p in (work/'reports').iterdir()) == ['old.json', 'scored_drift.json']
    assert (work/'reports'/'old.json').read_text() == 'mine' and list(tmp.iterdir()) == []


def test_a_file_where_a_folder_belongs_is_a_clear_error(box):
    work, tmp = box
    before = tree(work)
    one_error(*custseg('score', 'in.csv', '-o', 'in.csv/x.csv', cwd=work, tmpdir=tmp)[::2], 'in.csv: is a file, so in.csv/x.csv cannot be made')
    assert tree(work) == before


def test_missing_folders_are_made_and_removed_again_if_the_run_fails(box):
    work, tmp = box
    (work/'bad.csv').write_bytes((FIX/'bad_age.csv').read_bytes())
    before = tree(work)
    one_error(*custseg('score', 'bad.csv', '-o', 'new/a/b.csv', cwd=work, tmpdir=tmp)[::2], 'column Age must be numeric')
    assert tree(work) == before  # no empty new/a/ left
    code, _, err = custseg('score', 'in.csv', '-o', 'new/a/b.csv', cwd=work, tmpdir=tmp)
    assert code == 0 and (work/'new'/'a'/'b.csv').is_file(), err


# --- devices, FIFOs and links -------------------------------------------------------------------------------------------

def test_devices_are_written_into_never_replaced(box):
    work, tmp = box
    code, out, err = custseg('score', 'in.csv', '-o', '/dev/null', cwd=work, tmpdir=tmp)
    assert code == 0 and out.startswith(b'Scored 12 rows'), err
    code, out, err = custseg('score', 'in.csv', '-o', '/dev/stdout', cwd=work, tmpdir=tmp)
    assert code == 0 and out.startswith(b'ID,Gender') and out.count(b'\n') == 13 and err.startswith('Scored 12 rows'), err  # summary: stderr
    with open(tmp.parent/'redirected.csv', 'wb') as f:  # `custseg score in.csv -o /dev/stdout > redirected.csv`
        r = subprocess.run([CUSTSEG, 'score', 'in.csv', '-o', '/dev/stdout'], cwd=work, stdout=f, stderr=subprocess.PIPE,
                           env={**os.environ, 'TMPDIR': str(tmp)}, timeout=300)
    got = (tmp.parent/'redirected.csv').read_bytes()
    assert r.returncode == 0 and got.startswith(b'ID,Gender') and got.count(b'\n') == 13, got[:300]
    one_error(*custseg('score', 'in.csv', '-o', '/dev/full', cwd=work, tmpdir=tmp)[::2], '/dev/full')
    for dev in ('/dev/null', '/dev/full'): assert stat.S_ISCHR(os.stat(dev).st_mode), dev
    assert not any(Path(f'/dev/{n}_drift.json').exists() for n in ('null', 'full', 'stdout'))
    assert sorted(p.name for p in work.iterdir()) == ['in.csv'] and list(tmp.iterdir()) == []


def test_a_fifo_is_written_into_and_its_reader_gets_the_scores(box):
    work, tmp = box
    os.mkfifo(work/'pipe')
    with open(tmp.parent/'read.csv', 'wb') as f:
        reader = subprocess.Popen(['cat', str(work/'pipe')], stdout=f)
        code, _, err = custseg('score', NEW, '-o', 'pipe', cwd=work, tmpdir=tmp, timeout=120)
        reader.wait(timeout=60)
    got = (tmp.parent/'read.csv').read_bytes()
    assert code == 0, err
    assert got.startswith(b'ID,Gender') and got.count(b'\n') == 2628
    assert (work/'pipe').is_fifo() and sorted(p.name for p in work.iterdir()) == ['in.csv', 'pipe']  # no report beside a FIFO


def test_a_link_is_followed_and_its_target_replaced(box):
    work, tmp = box
    (work/'real').mkdir(); (work/'real'/'scored.csv').write_text('old')
    (work/'link.csv').symlink_to(work/'real'/'scored.csv')
    code, _, err = custseg('score', 'in.csv', '-o', 'link.csv', cwd=work, tmpdir=tmp)
    assert code == 0, err
    assert (work/'link.csv').is_symlink() and (work/'real'/'scored.csv').read_text().startswith('ID,Gender')
    assert sorted(p.name for p in (work/'real').iterdir()) == ['scored.csv']


# --- all or nothing ---------------------------------------------------------------------------------------------------

def mount_tmpfs(folder:Path, size:str, *opts)->bool:
    "Mount a small tmpfs at `folder` (as root); False where this machine does not allow it."
    folder.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', ','.join([f'size={size}', *opts]), 'tmpfs', str(folder)], capture_output=True)
    return r.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    "A folder on a 256 KiB disk that is already full."
    d = tmp_path/'full'
    if not mount_tmpfs(d, '256k'): pytest.skip('mounting a tmpfs needs root')
    try:
        with open(d/'filler', 'wb') as f:
            try: f.write(b'\0' * (1 << 20))
            except OSError: pass
        yield d
    finally: subprocess.run(['umount', '-l', str(d)])


def test_a_drift_report_that_cannot_be_written_leaves_the_previous_output(box, small_disk):
    work, tmp = box
    (work/'scored.csv').write_text('previous scores')
    before = tree(work)
    code, _, err = custseg('score', NEW, '-o', 'scored.csv', '--drift-report', small_disk/'r.json', cwd=work, tmpdir=tmp)
    one_error(code, err, f'{small_disk}/r.json: the disk is full', 'nothing was written')
    assert 'scored.csv' not in err  # the message names the output on the full disk
    assert tree(work) == before and list(tmp.iterdir()) == [] and sorted(p.name for p in small_disk.iterdir()) == ['filler']


def test_a_full_disk_names_the_output_and_the_fix(box, small_disk):
    work, tmp = box
    code, _, err = custseg('score', NEW, '-o', small_disk/'scored.csv', cwd=work, tmpdir=tmp)
    one_error(code, err, f'{small_disk}/scored.csv: the disk is full', 'Free some space')
    assert '.part' not in err and sorted(p.name for p in small_disk.iterdir()) == ['filler']


def test_a_temporary_folder_that_fills_up_is_named(box, big, tmp_path):
    work, tmp = box
    small = tmp_path/'small'
    if not mount_tmpfs(small, '256k'): pytest.skip('mounting a tmpfs needs root')
    try:  # room for Python's check that TMPDIR is writable, not for the duplicate-ID check of 4*10^5 rows
        code, _, err = custseg('score', big, '-o', 'scored.csv', cwd=work, tmpdir=small)
        one_error(code, err, str(small), 'TMPDIR')
        assert sorted(p.name for p in work.iterdir()) == ['in.csv'] and list(small.iterdir()) == []
    finally: subprocess.run(['umount', '-l', str(small)])


def test_a_read_only_folder_names_the_output_not_a_temporary_file(box, tmp_path):
    work, tmp = box
    ro = tmp_path/'ro'
    if not mount_tmpfs(ro, '64k', 'ro'): pytest.skip('mounting a tmpfs needs root')
    try:
        code, _, err = custseg('score', 'in.csv', '-o', ro/'scored.csv', cwd=work, tmpdir=tmp)
        one_error(code, err, f'{ro}/scored.csv: cannot write in {ro}')
        assert '.part' not in err
    finally: subprocess.run(['umount', '-l', str(ro)])


# --- every way a run can end ----------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def big(tmp_path_factory):
    "About 4*10^5 customers (the new customers, repeated with new IDs): a run that lasts long enough to be stopped."
    t = pacsv.read_csv(NEW, convert_options=pacsv.ConvertOptions(column_types={'ID': pa.string()}))
    reps = 150
    ids = pa.array([str(i) for i in range(10**7, 10**7 + reps * t.num_rows)])
    big = pa.concat_tables([t] * reps).set_column(0, 'ID', ids)
    p = tmp_path_factory.mktemp('big')/'big.csv'
    pacsv.write_csv(big, p)
    return p


def started(proc, folder:Path, pattern:str, timeout:float=60)->bool:
    "Wait until a file matching `pattern` appears in `folder` while `proc` runs: the run is under way."
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if any(folder.glob(pattern)): return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_leaves_nothing_behind(box, big, sig):
    work, tmp = box
    (work/'out').mkdir(); (work/'out'/'scored.csv').write_text('previous scores')
    before = tree(work)
    p = subprocess.Popen([CUSTSEG, 'score', big, '-o', 'out/scored.csv'], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, 'TMPDIR': str(tmp)})
    assert started(p, work/'out', '.scored.csv.*.part*'), p.communicate()
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 128 + sig and err.decode().strip().splitlines() == [STOPPED], err
    assert tree(work) == before and list(tmp.iterdir()) == []


def test_a_stop_signal_in_a_pipe_leaves_no_spool(box, big):
    work, tmp = box
    with open(big, 'rb') as f:
        p = subprocess.Popen([CUSTSEG, 'score', '-', '-o', '-'], cwd=work, stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, 'TMPDIR': str(tmp)})
        assert started(p, tmp, '.custseg-stdout.*'), p.communicate()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    assert p.returncode == 143 and out == b'' and err.decode().strip().splitlines() == [STOPPED], err
    assert list(tmp.iterdir()) == [] and sorted(p.name for p in work.iterdir()) == ['in.csv']


@pytest.mark.parametrize('output', ['-', '/dev/stdout'])
def test_a_reader_that_stops_early_ends_the_run_quietly(box, big, output):
    work, tmp = box
    p = subprocess.Popen([CUSTSEG, 'score', big, '-o', output], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, 'TMPDIR': str(tmp)})
    assert p.stdout.read(100).startswith(b'ID,Gender')
    p.stdout.close()
    err = p.stderr.read().decode(); p.wait(timeout=60)
    assert p.returncode == 141 and err == '', err
    assert list(tmp.iterdir()) == [] and sorted(x.name for x in work.iterdir()) == ['in.csv']


def test_what_a_killed_run_leaves_is_removed_by_the_next(box, big):
    work, tmp = box
    with open(big, 'rb') as f:
        p = subprocess.Popen([CUSTSEG, 'score', '-', '-o', '-'], cwd=work, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, 'TMPDIR': str(tmp)})
        assert started(p, tmp, '.custseg-ids.*'), 'the run did not get to its duplicate-ID check'
        p.kill(); p.wait(timeout=60)
    left = sorted(x.name for x in tmp.iterdir())
    assert any(n.startswith('.custseg-stdin.') for n in left) and any(n.startswith('.custseg-ids.') for n in left), left
    code, out, err = custseg('score', '-', '-o', '-', cwd=work, tmpdir=tmp, stdin=(FIX/'customers.csv').read_bytes())
    assert code == 0 and out.startswith(b'ID,Gender'), err
    assert list(tmp.iterdir()) == []


# --- messages -------------------------------------------------------------------------------------------------------------

def test_the_progress_bar_ends_its_line_before_an_error(box):
    work, tmp = box
    (work/'bad.csv').write_bytes((FIX/'bad_age.csv').read_bytes())
    code, _, err = custseg('score', 'bad.csv', '-o', 'out.csv', '--progress', cwd=work, tmpdir=tmp)
    last = err.split('\n')[-2] if err.endswith('\n') else err.split('\n')[-1]
    assert code == 2 and last.startswith('custseg: error: ') and '\r' not in last, repr(err)


def test_rows_without_an_id_are_named(box):
    work, tmp = box
    lines = (FIX/'customers.csv').read_text().splitlines()
    lines[3] = ',' + lines[3].split(',', 1)[1]; lines[6] = 'NA,' + lines[6].split(',', 1)[1]
    (work/'noid.csv').write_text('\n'.join(lines) + '\n')
    code, out, err = custseg('score', 'noid.csv', '-o', 'out.csv', cwd=work, tmpdir=tmp)
    assert code == 0 and 'noid.csv: 2 row(s) have no ID, at line(s) 4, 7' in err, err
    assert 'occur more than once' not in err  # two missing IDs are not one ID twice


def test_a_stopped_cluster_run_leaves_nothing_and_its_tasks_stop_writing(box, big, tmp_path):
    "SIGTERM to `custseg score FOLDER --workers 2`: exit 143, one line, no output folder, and no task writes on after the client has gone."
    pytest.importorskip('distributed')
    work, tmp = box
    t = pacsv.read_csv(big, convert_options=pacsv.ConvertOptions(column_types={'ID': pa.string()}))
    (parts := tmp_path/'parts').mkdir()
    n = -(-t.num_rows // 4)
    for i in range(4): pacsv.write_csv(t.slice(i * n, n), parts/f'part-{i}.csv')
    p = subprocess.Popen([CUSTSEG, 'score', parts, '-o', 'out', '--workers', '2'], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, 'TMPDIR': str(tmp)})
    assert started(p, work, '.out.*.part/.part-*'), p.communicate()  # tasks are writing their partitions
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 143 and err.decode().strip().splitlines() == [STOPPED], err
    time.sleep(3)  # a task that went on would write again by now
    assert sorted(x.name for x in work.iterdir()) == ['in.csv'] and list(tmp.iterdir()) == []


# --- the labels side: evaluate, train and info keep the same promise (issue #26) -----------------------------------------

SAVED = ROOT/'saved_model'
TRAIN = project_path('dataset', 'train.csv')


def strict_json(text:str):
    "Parse `text` as strict JSON: NaN, Infinity and -Infinity are refused."
    def no(c): raise ValueError(f'not JSON: {c}')
    return json.loads(text, parse_constant=no)


@pytest.fixture
def lab(tmp_path):
    "A folder of one's own: `lab.csv` (300 labeled customers with new IDs), `m/` a copy of the shipped model, TMPDIR."
    (work := tmp_path/'work').mkdir(); (tmp := tmp_path/'tmp').mkdir()
    rows = TRAIN.read_text().splitlines()
    lines = [rows[0]] + [f'n{i},' + r.split(',', 1)[1] for i, r in enumerate(rows[1:301])]
    (work/'lab.csv').write_text('\n'.join(lines) + '\n')
    shutil.copytree(SAVED, work/'m')
    return work, tmp


@pytest.mark.parametrize('args, needle', [
    (['-o', 'lab.csv'], 'is the labeled file, and the report (-o) would overwrite it'),
    (['-o', 'm/metadata.json', '--model-dir', 'm'], 'is inside the model folder'),
    (['-o', 'r.json', '--model-dir', 'm', '--figure', 'm/fig.png'], 'is inside the model folder'),
    (['-o', 'r.json', '--rejects', 'lab.csv'], 'is the labeled file, and the rejects file (--rejects) would overwrite it'),
    (['-o', 'r.json', '--rejects', 'r.json'], 'given as the report (-o) and as the rejects file (--rejects)'),
    (['-o', 'r.json', '--rejects', 'r.png'], 'given as the figure and as the rejects file (--rejects)'),
    (['-o', './lab.csv', '--rejects', 'x.csv'], 'is the labeled file'),
    (['-o', 'r.json', '--figure', '-'], 'not for standard output'),
    (['-o', 'r.json', '--rejects', '-'], 'the rejects file must be a file'),
])
def test_evaluate_never_writes_over_what_it_reads(lab, args, needle):
    work, tmp = lab
    before = tree(work)
    one_error(*custseg('evaluate', 'lab.csv', *args, cwd=work, tmpdir=tmp)[::2], needle)
    assert tree(work) == before and list(tmp.iterdir()) == []


def test_evaluate_to_standard_output_writes_json_there_and_no_file(lab):
    work, tmp = lab
    code, out, err = custseg('evaluate', 'lab.csv', '-o', '-', '--model-dir', 'm', '--no-record', cwd=work, tmpdir=tmp)
    assert code == 0, err
    assert strict_json(out.decode())['models'][0]['rows'] == 300 and 'Report: standard output' in err
    assert sorted(p.name for p in work.iterdir()) == ['lab.csv', 'm'] and list(tmp.iterdir()) == []


@pytest.mark.parametrize('edit, needle', [
    (lambda rows: rows[:1], 'has a header but no customer rows'),
    (lambda rows: [rows[0]] + [r.rsplit(',', 1)[0] + ',' for r in rows[1:]], 'no labeled customer to judge (300 row(s) read: 300 without'),
    (lambda rows: rows[:3] + [rows[1]] + rows[4:], '1 ID(s) occur more than once (2 rows; repeats at line(s) 4)'),
    (lambda rows: rows[:2] + [rows[2].rsplit(',', 1)[0] + ',' + 'Q' * 2_000_000] + rows[3:], "'QQQQQQQQQQQQQQQQQQQ...'"),
])
def test_evaluate_refuses_what_it_cannot_judge_with_one_short_line(lab, edit, needle):
    work, tmp = lab
    (work/'lab.csv').write_text('\n'.join(edit((work/'lab.csv').read_text().splitlines())) + '\n')
    before = tree(work)
    code, _, err = custseg('evaluate', 'lab.csv', '-o', 'r.json', '--model-dir', 'm', cwd=work, tmpdir=tmp)
    one_error(code, err, needle)
    assert len(err) < 1000 and tree(work) == before


def test_every_row_of_a_repeated_id_is_set_aside_with_rejects(lab):
    work, tmp = lab
    rows = (work/'lab.csv').read_text().splitlines()
    (work/'lab.csv').write_text('\n'.join(rows[:3] + [rows[1]] + rows[4:]) + '\n')
    code, _, err = custseg('evaluate', 'lab.csv', '-o', 'r.json', '--model-dir', 'm', '--no-record', '--rejects', 'rej.csv',
                           cwd=work, tmpdir=tmp)
    assert code == 0, err
    rej = (work/'rej.csv').read_text().splitlines()
    assert len(rej) == 3 and all(r.startswith('n0,') and r.endswith('ID occurs more than once in the file') for r in rej[1:])
    assert strict_json((work/'r.json').read_text())['models'][0]['rows'] == 298


def test_an_absent_segment_is_reported_absent_and_the_report_is_strict_json(lab):
    work, tmp = lab
    rows = (work/'lab.csv').read_text().splitlines()
    (work/'lab.csv').write_text('\n'.join([rows[0]] + [r for r in rows[1:] if not r.endswith(',D')]) + '\n')
    code, out, err = custseg('evaluate', 'lab.csv', '-o', 'r.json', '--model-dir', 'm', cwd=work, tmpdir=tmp)
    assert code == 0, err
    out = out.decode()
    assert 'nan' not in out.lower() and 'segment(s) D absent' in out and 'D absent' in out
    doc = strict_json((work/'r.json').read_text())
    assert doc['models'][0]['absent'] == ['D'] and doc['models'][0]['segments']['D']['recall'] is None
    strict_json((work/'m'/'latest_evaluation.json').read_text())
    assert 'Recorded for custseg info: m/latest_evaluation.json' in out


def test_one_folder_given_twice_is_judged_once(lab):
    work, tmp = lab
    code, out, err = custseg('evaluate', 'lab.csv', '-o', 'r.json', '--model-dir', 'm', '--model-dir', './m/', '--no-record',
                             cwd=work, tmpdir=tmp)
    assert code == 0, err
    assert len(strict_json((work/'r.json').read_text())['models']) == 1
    assert 'Note: ./m/ is the model folder m given again; it is judged once' in out.decode()


def test_a_read_only_model_folder_is_named_as_not_recorded(lab, tmp_path):
    work, tmp = lab
    ro = tmp_path/'ro'
    if not mount_tmpfs(ro, '16m'): pytest.skip('mounting a tmpfs needs root')
    try:
        shutil.copytree(SAVED, ro/'m')
        subprocess.run(['mount', '-o', 'remount,ro', str(ro)], check=True)
        code, out, err = custseg('evaluate', 'lab.csv', '-o', 'r.json', '--model-dir', ro/'m', cwd=work, tmpdir=tmp)
        assert code == 0, err
        assert f'Not recorded in {ro}/m: Read-only file system' in out.decode()
        assert sorted(p.name for p in (ro/'m').iterdir()) == sorted(p.name for p in SAVED.iterdir())
    finally: subprocess.run(['umount', '-l', str(ro)])


@pytest.mark.parametrize('record', ['{"file": "x.csv", "evaluated": "2026-', '{}', 'null', '{"file": 1, "evaluated": 2, "rows": 5}'])
def test_info_reads_a_broken_evaluation_record_as_absent(lab, record):
    work, tmp = lab
    (work/'m'/'latest_evaluation.json').write_text(record)
    code, out, err = custseg('info', '--model-dir', 'm', cwd=work, tmpdir=tmp)
    assert code == 0 and 'Traceback' not in err, err
    assert 'Latest evaluation: none readable (' in out.decode()


def test_info_says_unknown_for_lineage_it_does_not_have(lab):
    work, tmp = lab
    meta = json.loads((work/'m'/'metadata.json').read_text()); meta.pop('training'); meta.pop('metrics', None)
    (work/'m'/'metadata.json').write_text(json.dumps(meta))
    code, out, err = custseg('info', '--model-dir', 'm', cwd=work, tmpdir=tmp)
    assert code == 0, err
    out = out.decode()
    assert 'Trained on: unknown' in out and 'Cross-validated: unknown' in out and '0 customers' not in out and '--no-cv' not in out


@pytest.mark.parametrize('args, needle', [
    (['m/mine.csv', '-o', 'm', '--replace'], 'holds the training file'),
    (['lab.csv', '-o', 'm', '--replace'], 'holds notes.txt besides its saved model'),
    (['lab.csv', '-o', 'm/child', '--parent', 'm'], 'is inside the model folder'),
    (['lab.csv', './lab.csv', '-o', 'new'], 'given twice'),
    (['lab.csv', '-o', 'lab.csv'], 'is the training file'),
])
def test_train_never_harms_a_folder_it_does_not_own(lab, args, needle):
    work, tmp = lab
    shutil.copy(work/'lab.csv', work/'m'/'mine.csv'); (work/'m'/'notes.txt').write_text('mine')
    if args[0] != 'm/mine.csv': (work/'m'/'mine.csv').unlink()
    before = tree(work)
    one_error(*custseg('train', *args, '--no-cv', cwd=work, tmpdir=tmp)[::2], needle)
    assert tree(work) == before and list(tmp.iterdir()) == []


def test_train_refuses_two_segments_for_one_customer(lab):
    work, tmp = lab
    rows = (work/'lab.csv').read_text().splitlines()
    flip = {'A': 'B', 'B': 'C', 'C': 'D', 'D': 'A'}
    (work/'other.csv').write_text('\n'.join([rows[0]] + [r[:-1] + flip[r[-1]] for r in rows[1:4]]) + '\n')
    before = tree(work)
    one_error(*custseg('train', 'lab.csv', 'other.csv', '-o', 'new', '--no-cv', cwd=work, tmpdir=tmp)[::2],
              '3 customer(s) have different segments in different files (ID \'n0\': ', 'at line 2 of lab.csv')
    assert tree(work) == before


def _train_then(work, tmp, sig_when):
    "`custseg train lab.csv -o m --replace --no-cv`, stopped by SIGTERM when `sig_when(proc)` says so: (code, stderr)."
    p = subprocess.Popen([CUSTSEG, 'train', 'lab.csv', '-o', 'm', '--replace', '--no-cv'], cwd=work, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env={**os.environ, 'TMPDIR': str(tmp)})
    sig_when(p)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=300)
    return p.returncode, err.decode()


def test_a_signal_before_the_swap_keeps_the_old_model_and_says_so(lab):
    work, tmp = lab
    before = tree(work)
    code, err = _train_then(work, tmp, lambda p: started(p, work, '.m.*.part*', timeout=120))
    assert code == 143 and err.strip().splitlines()[-1] == f'{STOPPED} (m keeps its previous model)', err
    assert tree(work) == before and list(tmp.iterdir()) == []


def test_a_signal_during_the_swap_acts_after_it_and_says_the_model_was_written(lab, monkeypatch, capsys):
    "In process: SIGTERM arrives while the folders are being swapped; the swap completes, and the last line says so."
    from customer_segmentation import cli, files
    from customer_segmentation.fit import retrain
    work, _ = lab
    monkeypatch.chdir(work)
    real_commit = files._commit
    def commit_and_signal(tmp, path):
        os.kill(os.getpid(), signal.SIGTERM); time.sleep(0.05)  # the signal arrives mid-commit
        real_commit(tmp, path)
    monkeypatch.setattr(files, '_commit', commit_and_signal)
    monkeypatch.setattr(files, '_WRITTEN', [])
    def small_train(paths, model_dir, **kw):  # the real training writes the same way; a copy keeps the test fast
        with files.atomic_path(model_dir, folder=True) as t: shutil.copytree(SAVED, t); (t/'new.txt').write_text('new')
        return Path(model_dir)
    monkeypatch.setattr(retrain, 'train_from_files', small_train)
    assert cli.main(['train', 'lab.csv', '-o', 'm', '--replace', '--no-cv']) == 143
    assert capsys.readouterr().err.strip() == 'custseg: interrupted after the run had finished; written in full: m'
    assert (work/'m'/'new.txt').read_text() == 'new' and not list(work.glob('.m.*'))
