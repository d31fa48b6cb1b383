"""The repository's own rules: generated files in step with their sources, notebooks clean, data never committed."""
import json, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT/'tests'))
from readme import render_readme


def _copy_project(tmp_path):
    "A scratch copy of what nbdev reads and writes, so checks never touch the working tree."
    dst = tmp_path/'proj'
    dst.mkdir()
    for f in ('settings.ini', 'setup.py', 'README.md'): shutil.copy(ROOT/f, dst/f)
    if (ROOT/'pyproject.toml').exists(): shutil.copy(ROOT/'pyproject.toml', dst/'pyproject.toml')
    shutil.copytree(ROOT/'nbs', dst/'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_proc', '_docs'))
    shutil.copytree(ROOT/'customer_segmentation', dst/'customer_segmentation', ignore=shutil.ignore_patterns('__pycache__'))
    return dst


def _diff(a, b, pattern):
    "Relative paths matching `pattern` whose contents differ between trees a and b (or exist in one only)."
    fa = {p.relative_to(a) for p in a.glob(pattern)}
    fb = {p.relative_to(b) for p in b.glob(pattern)}
    return sorted(str(p) for p in fa ^ fb) + sorted(str(p) for p in fa & fb if (a/p).read_bytes() != (b/p).read_bytes())


def test_package_matches_notebooks(tmp_path):
    "nbdev_export on the committed notebooks reproduces the committed package exactly."
    proj = _copy_project(tmp_path)
    subprocess.run([str(BIN/'nbdev_export')], cwd=proj, check=True, capture_output=True)
    changed = _diff(ROOT/'customer_segmentation', proj/'customer_segmentation', '**/*.py')
    assert not changed, f"package out of step with notebooks: {changed}. Run .venv/bin/nbdev_export and commit."


def test_notebooks_are_clean(tmp_path):
    "nbdev_clean changes no notebook (outputs and execution counts stripped, papermill's tags kept)."
    proj = _copy_project(tmp_path)
    subprocess.run([str(BIN/'nbdev_clean')], cwd=proj, check=True, capture_output=True)
    changed = _diff(ROOT/'nbs', proj/'nbs', '**/*.ipynb')
    assert not changed, f"notebooks not clean: {changed}. Run .venv/bin/nbdev_clean and commit."


def test_readme_matches_index():
    assert (ROOT/'README.md').read_text(encoding='utf-8') == render_readme(), "README.md differs from nbs/index.ipynb: run `make readme`."


def test_readme_has_the_two_commands():
    text = (ROOT/'README.md').read_text(encoding='utf-8')
    assert 'make run' in text and 'make test' in text


def test_ci_runs_the_readme_test_command():
    lines = [l.strip() for l in (ROOT/'.ci'/'run').read_text().splitlines() if l.strip() and not l.startswith('#')]
    assert 'make test' in lines


def test_no_data_files_tracked():
    files = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    data = [f for f in files if f.endswith(('.csv', '.parquet', '.feather')) and not f.startswith('tests/fixtures/')]
    assert not data, f"data files are committed: {data}"


@pytest.mark.parametrize('nb', sorted(p.name for p in (ROOT/'nbs').glob('[0-9]*.ipynb')))
def test_notebook_opens_with_default_exp_title_and_summary(nb):
    cells = json.loads((ROOT/'nbs'/nb).read_text(encoding='utf-8'))['cells']
    first = ''.join(cells[0]['source'])
    assert first.startswith('#| default_exp '), f"{nb}: first cell must be `#| default_exp MODULE`"
    md = ''.join(cells[1]['source']).splitlines()
    assert md[0].startswith('# ') and any(l.startswith('> ') for l in md[1:3]), f"{nb}: second cell must be an H1 title and a `>` summary"
