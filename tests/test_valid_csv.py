"""Valid CSVs are scored (issue #19, nothing the user owns is harmed): what pandas and pyarrow read, the scorer reads too,
here a field longer than Arrow's block, a header-only file without a final line break; and a header the scorer must refuse
(names with spaces around them) is refused with a message that shows the spaces and says how to fix them."""
import gzip, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

from customer_segmentation.cli import main
from customer_segmentation.data import CustomerDataError, required_columns
from customer_segmentation.deploy import PROB_COLS, load_scoring_model, score_csv

ROOT = Path(__file__).resolve().parents[1]
CUSTSEG = str(Path(sys.executable).parent/'custseg')
REQUIRED = required_columns(labeled=False)
ROW = dict(Gender='Female', Ever_Married='Yes', Age='36', Graduated='Yes', Profession='Engineer', Work_Experience='1.0',
           Spending_Score='Low', Family_Size='2.0', Var_1='Cat_6')
BIG = 'x' * 5_000_000  # longer than two of Arrow's largest default blocks (1 MiB)


@pytest.fixture(scope='module')
def model():
    return load_scoring_model(ROOT/'saved_model')


def customers(path, notes, sep=',', head=None):
    "Write a CSV at `path`: the required columns and a Note column holding `notes` (one row each; None: a blank line)."
    lines = [head or sep.join([*REQUIRED, 'Note'])]
    for i, n in enumerate(notes):
        lines.append('' if n is None else sep.join([str(900001 + i), *(ROW[c] for c in REQUIRED[1:]), n]))
    Path(path).write_text('\n'.join(lines) + '\n')
    return Path(path)


def read_text(path):
    "A CSV (plain or gzip) as pandas reads it, every cell as its text."
    return pd.read_csv(path, dtype=str, keep_default_na=False)


# --- a field longer than Arrow's block -------------------------------------------------------------------------------

@pytest.mark.parametrize('note', [BIG, f'"{BIG[:10]}\n{BIG}"', f'"{BIG}, ""quoted"""'], ids=['plain', 'quoted-newline', 'quoted-comma'])
def test_a_field_over_a_block_scores(tmp_path, model, note):
    inp = customers(tmp_path/'in.csv', ['n', note, 'n'])
    s = score_csv(inp, tmp_path/'o.csv', model=model, drift_report=False)
    out = read_text(tmp_path/'o.csv')
    assert s.rows == 3 and out['Note'].tolist() == read_text(inp)['Note'].tolist()
    assert len(out['Note'][1]) >= len(BIG)


@pytest.mark.parametrize('compress', [False, True], ids=['plain', 'gzip'])
def test_a_long_row_amid_blank_lines_and_line_breaks_comes_once(tmp_path, model, compress):
    "Small chunks (64 KiB blocks): read again twice with larger blocks, rows before the long one are not repeated."
    notes = ['a', '"two\n\nlines"', None, 'b', None, BIG, 'c', None, '"d\ne"', *map(str, range(20))]
    inp = customers(tmp_path/'in.csv', notes)
    short = customers(tmp_path/'short.csv', [n if n != BIG else 'long' for n in notes])
    if compress: (tmp_path/'in.csv.gz').write_bytes(gzip.compress(inp.read_bytes())); inp = tmp_path/'in.csv.gz'
    s = score_csv(inp, tmp_path/'o.csv', model=model, chunk_size=2, drift_report=False)
    score_csv(short, tmp_path/'ref.csv', model=model, chunk_size=2, drift_report=False)
    out, ref = read_text(tmp_path/'o.csv'), read_text(tmp_path/'ref.csv')
    assert s.rows == len(ref) == 26
    assert out['ID'].tolist() == ref['ID'].tolist() and out['Note'].tolist() == read_text(inp)['Note'].tolist()
    assert out[['Segmentation', *PROB_COLS]].equals(ref[['Segmentation', *PROB_COLS]])


# --- a header and no row ---------------------------------------------------------------------------------------------

def test_a_header_only_file_scores_no_rows_with_or_without_a_final_line_break(tmp_path, model):
    for name, end in [('none.csv', ''), ('lf.csv', '\n'), ('crlf.csv', '\r\n')]:
        (tmp_path/name).write_text(','.join(REQUIRED) + end, newline='')
        s = score_csv(tmp_path/name, tmp_path/f'o_{name}', model=model, drift_report=False)
        assert s.rows == 0 and read_text(tmp_path/f'o_{name}').columns.tolist() == [*REQUIRED, 'Segmentation', *PROB_COLS, 'Segment_Set', 'Set_Size'], name


def test_a_header_only_file_scores_no_rows_from_the_cli(tmp_path):
    (tmp_path/'in.csv').write_text(','.join(REQUIRED))
    r = subprocess.run([CUSTSEG, 'score', 'in.csv', '-o', 'o.csv'], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('Scored 0 rows of in.csv into o.csv')
    assert (tmp_path/'o.csv').read_text().splitlines() == [','.join([*REQUIRED, 'Segmentation', *PROB_COLS, 'Segment_Set', 'Set_Size'])]


# --- names with spaces around them, or in another case ---------------------------------------------------------------

def cli_error(capsys, inp, out):
    "`custseg score INP -o OUT` in process: (exit code, its one stderr line)."
    code = main(['score', str(inp), '-o', str(out)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return code, lines[0]


def test_spaces_after_the_commas_are_shown_and_named(tmp_path, capsys):
    inp = customers(tmp_path/'in.csv', ['n'], head=', '.join([*REQUIRED, 'Note']))
    with pytest.raises(CustomerDataError) as e: score_csv(inp, tmp_path/'o.csv', drift_report=False)
    assert "Found columns: 'ID', ' Gender', ' Ever_Married'," in str(e.value)
    code, err = cli_error(capsys, inp, tmp_path/'o.csv')
    assert code == 2 and err.startswith('custseg: error: ') and not (tmp_path/'o.csv').exists()
    assert "Found columns: 'ID', ' Gender', ' Ever_Married'," in err
    assert "The header has spaces around its names (' Gender', ' Ever_Married', ' Age'): remove them." in err


def test_a_name_in_another_case_is_named(tmp_path, capsys):
    inp = customers(tmp_path/'in.csv', ['n'], head=','.join([*REQUIRED, 'Note']).replace('Gender', 'gender'))
    code, err = cli_error(capsys, inp, tmp_path/'o.csv')
    assert code == 2 and 'missing required column(s) Gender.' in err
    assert "only in case ('gender' for Gender): rename them." in err


def test_a_really_missing_column_gets_no_hint(tmp_path, capsys):
    inp = customers(tmp_path/'in.csv', ['n'], head=','.join([*REQUIRED, 'Note']).replace('Gender', 'Sex'))
    code, err = cli_error(capsys, inp, tmp_path/'o.csv')
    assert code == 2 and "Found columns: 'ID', 'Sex', " in err and 'remove them' not in err and 'rename them' not in err
