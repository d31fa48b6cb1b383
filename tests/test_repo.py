"""The repository's own rules: generated files in step with their sources, notebooks clean and short, no run result typed by
hand, data never committed, and nbdev's hooks installed by `make setup`.

The figures these rules judge are defined once, in tests/nbmetrics.py (`python tests/nbmetrics.py` prints them).
"""
import json, os, re, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LIB = 'customer_segmentation'
sys.path.insert(0, str(ROOT/'tests'))
from readme import render_readme, markdown_outputs, directives
import nbmetrics as M

PRODUCT = M.product_notebooks(ROOT)
ALL_NBS = M.all_notebooks(ROOT)
_id = lambda p: str(p.relative_to(ROOT/'nbs'))
PAGES = PRODUCT + M.home_pages(ROOT)  # the chapters and the pages that introduce them


def _copy_project(tmp_path):
    "A scratch copy of what nbdev reads and writes, so checks never touch the working tree."
    dst = tmp_path/'proj'
    dst.mkdir()
    for f in ('settings.ini', 'setup.py', 'README.md'): shutil.copy(ROOT/f, dst/f)
    if (ROOT/'pyproject.toml').exists(): shutil.copy(ROOT/'pyproject.toml', dst/'pyproject.toml')
    shutil.copytree(ROOT/'nbs', dst/'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_proc', '_docs'))
    shutil.copytree(ROOT/LIB, dst/LIB, ignore=shutil.ignore_patterns('__pycache__'))
    return dst


def _diff(a, b, pattern):
    "Relative paths matching `pattern` whose contents differ between trees a and b (or exist in one only)."
    fa = {p.relative_to(a) for p in a.glob(pattern)}
    fb = {p.relative_to(b) for p in b.glob(pattern)}
    return sorted(str(p) for p in fa ^ fb) + sorted(str(p) for p in fa & fb if (a/p).read_bytes() != (b/p).read_bytes())


def _where(nb, i, cell):
    "`nb` cell `i` and the first words of the cell, so a failure can be found in JupyterLab."
    first = next((l.strip() for l in M.source(cell).splitlines() if l.strip() and not l.startswith('#|')), '')
    return f'{_id(nb)} cell {i} ({first[:50]!r})'


# ------------------------------------------------------------------------------------------------ generated files
def test_package_matches_notebooks(tmp_path):
    "nbdev_export on the committed notebooks reproduces the committed package exactly."
    proj = _copy_project(tmp_path)
    subprocess.run([str(BIN/'nbdev_export')], cwd=proj, check=True, capture_output=True)
    changed = _diff(ROOT/LIB, proj/LIB, '**/*.py')
    assert not changed, f"package out of step with notebooks: {changed}. Run .venv/bin/nbdev_export and commit."


def test_notebooks_are_clean(tmp_path):
    "nbdev_clean changes no notebook (execution counts and kernel metadata stripped, outputs and papermill's tags kept)."
    proj = _copy_project(tmp_path)
    subprocess.run([str(BIN/'nbdev_clean')], cwd=proj, check=True, capture_output=True)
    changed = _diff(ROOT/'nbs', proj/'nbs', '**/*.ipynb')
    assert not changed, f"notebooks not clean: {changed}. Run .venv/bin/nbdev_clean and commit."


def test_readme_matches_index():
    assert (ROOT/'README.md').read_text(encoding='utf-8') == render_readme(), "README.md differs from nbs/index.ipynb: run `make readme`."


def test_index_outputs_are_current():
    """The figures the home page (and so the README) renders from results/ are what its cells render from them now:
    nbs/index.ipynb is executed afresh and every code cell's Markdown output compared with the stored one."""
    r = subprocess.run([str(BIN/'jupyter'), 'nbconvert', '--to', 'notebook', '--execute', '--stdout', 'index.ipynb'],
                       cwd=ROOT/'nbs', capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f'nbs/index.ipynb does not execute:\n{r.stderr[-3000:]}'
    fresh = json.loads(r.stdout)['cells']
    stored = M.cells(ROOT/'nbs'/'index.ipynb')
    stale = [_where(ROOT/'nbs'/'index.ipynb', i, c) for i, (c, f) in enumerate(zip(stored, fresh))
             if c['cell_type'] == 'code' and markdown_outputs(c) != markdown_outputs(f)]
    assert not stale, (f"the stored outputs of {stale} are not what they render from results/ now: run `make readme` "
                       "(it re-executes nbs/index.ipynb and writes README.md) and commit both.")


def test_readme_has_the_two_commands():
    text = (ROOT/'README.md').read_text(encoding='utf-8')
    assert 'make run' in text and 'make test' in text


def test_readme_links_every_notebook():
    "The home page's chapter table names each notebook, product and research, as a link to it."
    text = (ROOT/'README.md').read_text(encoding='utf-8')
    missing = [_id(p) for p in PRODUCT + M.research_notebooks(ROOT) if f'](nbs/{_id(p)})' not in text]
    assert not missing, f"README.md does not link {missing}: run `make readme` (the chapter table lists nbs/ as it is)."


def test_ci_runs_the_readme_test_command():
    lines = [l.strip() for l in (ROOT/'.ci'/'run').read_text().splitlines() if l.strip() and not l.startswith('#')]
    assert 'make test' in lines


def test_no_data_files_tracked():
    files = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    data = [f for f in files if f.endswith(('.csv', '.parquet', '.feather')) and not f.startswith('tests/fixtures/')]
    assert not data, f"data files are committed: {data}"


def test_docs_processing_runs_every_cell():
    "The cells nbdev's docs processing runs (exports, and any cell with an import) run on their own: `make docs` can build."
    r = subprocess.run([sys.executable, str(ROOT/'docs'/'build.py'), '--check'], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    assert r.returncode == 0, r.stderr[-4000:]


# ------------------------------------------------------------------------------------------------ notebook layout
@pytest.mark.parametrize('nb', [_id(p) for p in PRODUCT])
def test_notebook_opens_with_default_exp_title_and_summary(nb):
    cells = json.loads((ROOT/'nbs'/nb).read_text(encoding='utf-8'))['cells']
    first = ''.join(cells[0]['source'])
    assert first.startswith('#| default_exp '), f"{nb}: first cell must be `#| default_exp MODULE`"
    md = ''.join(cells[1]['source']).splitlines()
    assert md[0].startswith('# ') and any(l.startswith('> ') for l in md[1:3]), f"{nb}: second cell must be an H1 title and a `>` summary"


@pytest.mark.parametrize('nb', [_id(p) for p in PAGES])
def test_notebook_is_short(nb):
    "A chapter reads in one sitting: at most 2,500 words of markdown (code and outputs not counted)."
    n = M.md_words(M.cells(ROOT/'nbs'/nb))
    assert n <= M.MAX_MD_WORDS, (f"{nb}: {n} markdown words, over {M.MAX_MD_WORDS}. Keep the product's story here; move studies "
                                 "to a notebook in nbs/research/ and let code cells render the figures.")


# ----------------------------------------------------------------------------------- rule 1: no result typed by hand
HAND_TYPED = {'a decimal number': r'\d\.\d', 'a percentage': r'\d%', 'a thousands separator': r'\d,\d\d\d', 'a ±': '±',
              'a time': r'\d+ ?(?:ms|s|sec|seconds|min|minutes)\b'}
_re_hand = re.compile('|'.join(f'(?:{r})' for r in HAND_TYPED.values()))
_re_fence = re.compile(r'^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[`~]*[ \t]*$', re.M | re.S)
_re_inline_code = re.compile(r'(`+)(?!`).+?(?<!`)\1(?!`)', re.S)
_re_link_target = re.compile(r'\]\([^)]*\)')
_re_comment = re.compile(r'<!--.*?-->', re.S)


def prose(md):
    "What a reader takes as prose in a markdown cell: code fences, `inline code`, link targets and HTML comments removed."
    for r, rep in ((_re_fence, ''), (_re_comment, ''), (_re_inline_code, '``'), (_re_link_target, ']')): md = r.sub(rep, md)
    return md


def hand_typed(md):
    "Each run result typed by hand in markdown `md`, with a little context: decimals, percentages, thousands, ±, times."
    text = prose(md)
    return [text[max(0, m.start()-30):m.end()+10].replace('\n', ' ') for m in _re_hand.finditer(text)]


def test_hand_typed_rule_itself():
    "The rule catches results and leaves design facts, code and links alone."
    assert hand_typed('accuracy 53.7% ± 1.4 on 6,068 rows in 5 s') and len(hand_typed('a 53.7% b 6,068 c ± d 5 s e 1.04')) == 5
    assert hand_typed('log loss 1.043') and hand_typed('takes 3 minutes') and hand_typed('12 ms per row')
    assert not hand_typed('two hidden layers of 128 and 64 units, 5-fold, 2 repeats, 3 seeds, segments A-D')
    assert not hand_typed('dropout `0.5`, ``a `1.5` b``, [Data](01_data.ipynb#v1.2), <!-- 1.5 -->\n```\nx = 0.25\n```\n~~~\n50%\n~~~')


@pytest.mark.parametrize('nb', [_id(p) for p in PAGES])
def test_no_run_result_typed_by_hand(nb):
    """Markdown states no run result by hand. Outside code fences and `inline code`, no decimal number (`\\d\\.\\d`),
    percentage (`\\d%`), number with a thousands separator (`\\d,\\d\\d\\d`), `±` or time (`\\d+ ?(ms|s|sec|seconds|min|minutes)`)
    appears; research notebooks (nbs/research/) are exempt. Results are rendered by a code cell (`#| echo: false`) whose output
    is Markdown, from `results/` or from the run, with `customer_segmentation.report` (`md`, `md_table`, `pct`, `num`, `count`)."""
    path = ROOT/'nbs'/nb
    bad = [f'  {_where(path, i, c)}: ' + ' | '.join(repr(h) for h in hits[:6]) + (f' (+{len(hits)-6} more)' if len(hits) > 6 else '')
           for i, c in enumerate(M.cells(path)) if c['cell_type'] == 'markdown' and (hits := hand_typed(M.source(c)))]
    assert not bad, (f"{nb}: run results typed by hand in markdown ({len(bad)} cells):\n" + '\n'.join(bad) +
                     "\nRender them with a `#| echo: false` code cell: `md(f'... {pct(m[\"accuracy_mean\"])} ...')` from "
                     "load_results() or the run; a design constant goes in `code` or is rendered from the config.")


# ------------------------------------------------------------------------------ rule 5: chapters named are linked
def unlinked_chapters(md, names):
    "Mentions in markdown `md` of a notebook in `names` (its stem, or file name) that are not links: `06_deploy`, 06_deploy.ipynb."
    text = re.sub(r'\[(?:[^\[\]]|\[[^\]]*\])*\]\([^)]*\)', '', _re_comment.sub('', _re_fence.sub('', md)))  # links go whole
    alt = '|'.join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    code = re.findall(rf'`(?:nbs/)?(?:research/)?({alt})(?:\.ipynb)?`', text)
    bare = re.findall(rf'(?<![\w/`.-])(?:nbs/)?(?:research/)?({alt})\.ipynb\b', _re_inline_code.sub('``', text))
    return code + bare


def test_unlinked_chapters_rule_itself():
    names = ['06_deploy', '02_eda', 'expected_accuracy']
    assert unlinked_chapters('see notebook `06_deploy` and 02_eda.ipynb, or `research/expected_accuracy.ipynb`', names) == [
        '06_deploy', 'expected_accuracy', '02_eda']
    assert not unlinked_chapters('[Deployment](06_deploy.ipynb), `papermill nbs/06_deploy.ipynb out.ipynb`, [`06_deploy`](06_deploy.ipynb)', names)


@pytest.mark.parametrize('nb', [_id(p) for p in PAGES])
def test_chapters_named_in_prose_are_links(nb):
    "Prose that names another notebook links to it (`[Deployment](06_deploy.ipynb)`); the docs turn such links into page links."
    names = [p.stem for p in PRODUCT + M.research_notebooks(ROOT)]
    path = ROOT/'nbs'/nb
    bad = [f'  {_where(path, i, c)}: {hits}' for i, c in enumerate(M.cells(path))
           if c['cell_type'] == 'markdown' and (hits := unlinked_chapters(M.source(c), names))]
    assert not bad, (f"{nb}: notebooks named without a link:\n" + '\n'.join(bad) +
                     "\nWrite each as a Markdown link to the notebook file, e.g. [Deployment](06_deploy.ipynb) or "
                     "[Expected accuracy](research/expected_accuracy.ipynb).")


# ------------------------------------------------------------------------------------ rule 2: short export cells, shown
def test_export_cells_are_short_and_shown():
    """Export cells hold one idea and each is shown or tested, over all product notebooks (nbs/*.ipynb but the index).
    An export cell is a code cell with a `#| export` (or `exports`, `exporti`) directive; its length is its non-blank lines
    less the `#|` directives; the median length is at most 12. It is shown or tested when some code cell that is not an export
    cell and holds code (a test, a displayed example, a hidden check) follows it before the next export cell or the end of the
    notebook; markdown in between does not count either way. At least 90% of export cells are shown or tested."""
    ex = [(nb, i, n, s) for nb in PRODUCT for i, n, s in M.export_cells(M.cells(nb))]
    if not ex: pytest.skip('no export cells')
    n, median, share = M.export_summary(ROOT)
    cs = {nb: M.cells(nb) for nb in PRODUCT}
    longest = sorted(ex, key=lambda e: -e[2])[:12]
    unshown = [e for e in ex if not e[3]]
    msg = []
    if median > M.MAX_MEDIAN_EXPORT_LINES:
        msg.append(f"the median export cell has {median:g} lines, over {M.MAX_MEDIAN_EXPORT_LINES}. Split cells that hold several "
                   "functions, one idea each; the longest:\n" + '\n'.join(f'  {_where(nb, i, cs[nb][i])}: {l} lines' for nb, i, l, _ in longest))
    if share < M.MIN_SHOWN:
        msg.append(f"{len(ex)-len(unshown)} of {len(ex)} export cells ({share:.0%}) are shown or tested before the next export, under "
                   f"{M.MIN_SHOWN:.0%}. After each of these, add a cell that uses it (test_eq, test_fail, a displayed example):\n" +
                   '\n'.join(f'  {_where(nb, i, cs[nb][i])}' for nb, i, _, _ in unshown))
    assert not msg, '\n'.join(msg)


# ------------------------------------------------------------------------------------------ rule 3: clean outputs
NOISE = {
    'a TensorFlow/absl/CUDA log line': re.compile(r'cuInit|(?i:\bcuda\b)|absl::|tensorflow/|oneDNN|^[IWEF]\d{4} \d\d:\d\d:\d\d', re.M),
    'a machine or temporary path': re.compile(r"(?<![\w.~-])(?:/work/|/tmp/|/root/|/home/|/var/folders/)|PosixPath\('/"),
    'an ANSI escape code': re.compile(r'\x1b'),
    'a bare timing line': re.compile(r'^\s*(?:CPU times|Wall time)\b|\btook \d+(?:\.\d+)? ?(?:ms|s|sec|seconds|min|minutes)\b|\bin \d+\.\d+ ?s\b', re.M),
    'a Keras progress bar': re.compile(r'\d+m?s/step|━'),
}
_TEXT_MIMES = ('text/plain', 'text/markdown', 'text/html', 'text/latex', 'application/json')


def output_texts(cell):
    "(kind, text) of each stored output of a code cell that a reader sees as text (images left out: base64 is not text)."
    for o in cell.get('outputs', []):
        if 'text' in o: yield o.get('name', 'stream'), ''.join(o['text'])
        for mime in _TEXT_MIMES:
            v = o.get('data', {}).get(mime)
            if v is not None: yield mime, v if isinstance(v, str) else ''.join(v) if isinstance(v, list) else json.dumps(v)
        if o.get('output_type') == 'error': yield 'error', '\n'.join([o.get('evalue', ''), *o.get('traceback', [])])


def output_noise(cell):
    "What in a cell's stored outputs is noise: (what, the line it is on)."
    res = []
    for kind, text in output_texts(cell):
        for what, r in NOISE.items():
            for m in r.finditer(text):
                line = text[text.rfind('\n', 0, m.start())+1:].split('\n', 1)[0]
                res.append((what, f'{kind}: {line.strip()[:110]!r}'))
    return res


def test_noise_rule_itself():
    dirty = {'stream': 'I0000 00:00:1733 cuda_dnn.cc:8] x', 'e': 'WARNING: All log messages before absl::InitializeLog()',
             'p': "PosixPath('/work/main/results')", 't': '/tmp/tmpab12/out.csv', 'a': '\x1b[31mred', 'c': 'CPU times: user 3 s',
             'w': 'Wall time: 1.2 s', 'k': 'took 3.2 s', 'i': 'scored 10 rows in 0.42 s', 'b': '1/1 ━━━━ 0s 30ms/step'}
    for k, v in dirty.items(): assert output_noise({'outputs': [{'output_type': 'stream', 'name': 'stdout', 'text': v}]}), v
    clean = 'scored 2,627 rows: results/new_customers_scored.csv; 5-fold CV took two passes; dataset/train.csv; ~/tmp/ no'
    assert not output_noise({'outputs': [{'output_type': 'execute_result', 'data': {'text/plain': clean, 'image/png': 'A/tmp/B'}}]})


@pytest.mark.parametrize('nb', [_id(p) for p in ALL_NBS])
def test_stored_outputs_are_clean(nb):
    """No stored output (of any notebook, research included) carries TensorFlow/absl/CUDA log lines, machine or temporary paths
    (/work/, /tmp/, /root/, /home/, /var/folders, PosixPath('/...')), ANSI colour codes, bare timing lines (CPU times, Wall time,
    took N s, in N.N s) or Keras progress bars."""
    path = ROOT/'nbs'/nb
    bad = [f'  {_where(path, i, c)}: {what}: {line}' for i, c in enumerate(M.cells(path)) if c['cell_type'] == 'code'
           for what, line in output_noise(c)]
    assert not bad, (f"{nb}: noise in stored outputs:\n" + '\n'.join(bad[:25]) + (f'\n  ... {len(bad)-25} more' if len(bad) > 25 else '') +
                     "\nSilence TensorFlow before it is imported (the package's model module does), print paths relative to the "
                     "project or a temporary folder, pass verbose=0 to Keras, drop %%time, then re-execute the notebook.")


# ------------------------------------------------------------------------------ quiet imports, small modules
MODULES = [LIB] + [f'{LIB}.' + '.'.join(p.relative_to(ROOT/LIB).with_suffix('').parts) for p in sorted((ROOT/LIB).rglob('*.py'))
                    if p.stem != '__init__']


@pytest.mark.parametrize('mod', MODULES)
def test_importing_prints_nothing(mod, tmp_path):
    "Importing each module in a fresh CPU-only python, with none of TensorFlow's environment variables set, prints nothing."
    env = {k: v for k, v in os.environ.items() if not k.startswith(('TF_', 'ABSL', 'GLOG'))}
    r = subprocess.run([sys.executable, '-c', f'import {mod}'], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 0 and not out, (f"`import {mod}` in a fresh python (TF_* unset) printed:\n{out[-2000:]}\n"
                                           "Set TF_CPP_MIN_LOG_LEVEL etc. with os.environ.setdefault before TensorFlow is "
                                           "imported, and silence absl, in the module that imports it.")


def test_modules_are_small():
    "Each concern has one home of a readable size: no module of the package over 350 lines (nbdev's _modidx.py aside)."
    big = {m: n for m, n in M.module_lines(ROOT).items() if n > M.MAX_MODULE_LINES}
    assert not big, (f"modules over {M.MAX_MODULE_LINES} lines: {big}. Split the notebook that exports each into notebooks "
                     "(modules) named for what they hold.")


def test_one_atomic_write_helper():
    "Every writer goes through `files.atomic_path`/`atomic_write`: no other rename into place, temporary file or umask helper."
    others = [f'{f}:{i}: {l}' for f, i, l in M.rename_sites(ROOT) if f != f'{LIB}/files.py']
    for d in (LIB, 'bench', 'docs'):
        for p in sorted((ROOT/d).rglob('*.py')):
            if p.name == 'files.py' and d == LIB: continue
            others += [f'{p.relative_to(ROOT)}:{i}: {l.strip()}' for i, l in enumerate(p.read_text(encoding='utf-8').splitlines(), 1)
                       if re.search(r'\bmkstemp\(|\b_umask\b', l.split('#')[0])]
    assert not others, ("files written outside customer_segmentation.files (use `with atomic_path(p) as tmp:` or "
                        "`with atomic_write(p) as f:`):\n  " + '\n  '.join(others))


# ----------------------------------------------------------------------------------- the Makefile's notebook lists
def _make_var(name):
    m = re.search(rf'^{name}\s*:?=\s*(.*)$', (ROOT/'Makefile').read_text().replace('\\\n', ' '), re.M)  # continued lines joined
    assert m, f'Makefile: no {name} variable'
    return m.group(1).split()


def test_make_run_covers_every_product_notebook():
    "Every product notebook is either run by `make run` (NOTEBOOKS, in order) or named as a chapter it skips (LIBRARY_NOTEBOOKS)."
    run, lib = _make_var('NOTEBOOKS'), _make_var('LIBRARY_NOTEBOOKS')
    names = [_id(p).removesuffix('.ipynb') for p in PRODUCT]
    assert run == sorted(run), f'Makefile NOTEBOOKS is not in notebook order: {run}'
    unknown = [n for n in run + lib if n not in names]
    assert not unknown, f'Makefile names notebooks that do not exist: {unknown} (renamed?); nbs/ has {names}'
    missing = [n for n in names if n not in run + lib]
    assert not missing, f'Makefile: {missing} are in neither NOTEBOOKS (make run) nor LIBRARY_NOTEBOOKS: add each to one'
    assert not set(run) & set(lib), f'in both NOTEBOOKS and LIBRARY_NOTEBOOKS: {set(run) & set(lib)}'


def test_nbdev_test_skips_research_notebooks():
    "`make test`'s nbdev_test selects every product notebook and no research notebook."
    from nbdev.doclinks import nbglob
    mk = (ROOT/'Makefile').read_text()
    assert re.search(r"nbdev_test .*--skip_folder_re '\$\(NBTEST_SKIP\)'", mk), "Makefile: nbdev_test is not given --skip_folder_re '$(NBTEST_SKIP)'"
    skip = ' '.join(_make_var('NBTEST_SKIP')).replace('$$', '$')
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        picked = {Path(p).resolve() for p in nbglob(str(ROOT/'nbs'), skip_folder_re=skip)}
    finally: os.chdir(cwd)
    assert not picked & {p.resolve() for p in M.research_notebooks(ROOT)}, 'nbdev_test would run research notebooks'
    assert {p.resolve() for p in PRODUCT} <= picked, 'nbdev_test would skip product notebooks'


# --------------------------------------------------------------------------------------------- nbdev's hooks
def _git(cwd, *args, **kw):
    return subprocess.run(['git', *args], cwd=cwd, capture_output=True, text=True, check=True, **kw)


def _hooked_checkout(tmp_path):
    "A scratch git checkout with the project's Makefile and settings, `make hooks` run in it with a scratch HOME."
    proj, home = tmp_path/'proj', tmp_path/'home'
    proj.mkdir(); home.mkdir()
    for f in ('Makefile', 'settings.ini', 'tests/nbclean.py'): (proj/f).parent.mkdir(exist_ok=True); shutil.copy(ROOT/f, proj/f)
    env = {**os.environ, 'HOME': str(home), 'PATH': f'{BIN}{os.pathsep}{os.environ["PATH"]}',
           'GIT_CONFIG_GLOBAL': str(home/'.gitconfig'), 'GIT_CONFIG_NOSYSTEM': '1'}
    _git(proj, 'init', '-q', env=env)
    for k, v in (('user.name', 'test'), ('user.email', 'test@example.com'), ('commit.gpgsign', 'false')): _git(proj, 'config', k, v, env=env)
    r = subprocess.run(['make', '-s', 'hooks', f'BIN={BIN}'], cwd=proj, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f'make hooks failed:\n{r.stdout}\n{r.stderr}'
    return proj, home, env


def _dirty_nb():
    "A notebook as JupyterLab saves it: execution counts, kernel metadata, cell metadata nbdev drops; an output and a tag."
    return {'cells': [{'cell_type': 'code', 'execution_count': 7, 'id': 'x1', 'metadata': {'collapsed': False, 'scrolled': True, 'tags': ['parameters']},
                       'outputs': [{'output_type': 'execute_result', 'execution_count': 7, 'metadata': {}, 'data': {'text/plain': '2'}}],
                       'source': '1 + 1'}],
            'metadata': {'kernelspec': {'display_name': 'Python 3 (ipykernel)', 'language': 'python', 'name': 'python3'},
                         'language_info': {'name': 'python', 'version': '3.11.7'}, 'widgets': {}},
            'nbformat': 4, 'nbformat_minor': 5}


def _assert_clean(nb):
    c = nb['cells'][0]
    assert c['execution_count'] is None and c['outputs'][0].get('execution_count') is None, c
    assert c['metadata'] == {'tags': ['parameters']}, c['metadata']
    assert 'language_info' not in nb['metadata'] and nb['metadata']['kernelspec']['display_name'] == 'python3', nb['metadata']
    assert c['outputs'][0]['data'] == {'text/plain': '2'}, 'outputs are kept (the docs show them)'


def test_make_hooks_cleans_notebooks_at_commit(tmp_path):
    "After `make hooks`, a notebook committed as JupyterLab saved it is stored cleaned (outputs kept), merges use nbdev_merge."
    proj, home, env = _hooked_checkout(tmp_path)
    (proj/'nbs').mkdir()
    (proj/'nbs'/'x.ipynb').write_text(json.dumps(_dirty_nb(), indent=1))
    _git(proj/'nbs', 'add', 'x.ipynb', env=env)  # from a subfolder, as in a terminal opened in nbs/
    _git(proj, 'commit', '-q', '-m', 'x', env=env)
    committed = _git(proj, 'show', 'HEAD:nbs/x.ipynb', env=env).stdout
    _assert_clean(json.loads(committed))
    assert committed == subprocess.run([str(BIN/'python'), 'tests/nbclean.py'], cwd=proj, input=json.dumps(_dirty_nb()),
                                       capture_output=True, text=True).stdout
    assert json.loads((proj/'nbs'/'x.ipynb').read_text()) == _dirty_nb(), 'the working copy is left as it was'
    attrs = _git(proj, 'check-attr', 'merge', 'filter', '--', 'nbs/x.ipynb', env=env).stdout
    assert 'merge: nbdev-merge' in attrs and 'filter: nbdev-clean' in attrs, attrs
    assert _git(proj, 'config', '--get', 'merge.nbdev-merge.driver', env=env).stdout.startswith(f'{BIN}/nbdev_merge ')
    assert f'{BIN}/nbdev_trust' in (proj/'.git'/'hooks'/'post-merge').read_text()


def test_make_hooks_installs_the_jupyter_save_hook(tmp_path):
    "JupyterLab (its server reads ~/.jupyter) cleans a notebook of this project when it saves it: settings.ini turns the hook on."
    proj, home, _ = _hooked_checkout(tmp_path)
    from traitlets.config import Config
    c = Config()
    exec((home/'.jupyter'/'jupyter_server_config.py').read_text(), {'c': c})
    nb = _dirty_nb()
    (proj/'nbs').mkdir()
    (proj/'nbs'/'x.ipynb').write_text(json.dumps(nb))  # the file JupyterLab is saving over
    c.ContentsManager.pre_save_hook(path=str(proj/'nbs'/'x.ipynb'), model={'type': 'notebook', 'content': nb})
    _assert_clean(nb)


def test_make_hooks_outside_a_git_checkout(tmp_path):
    "Where there is no .git (an unpacked archive), `make hooks` (and so `make setup`) says so and succeeds."
    for f in ('Makefile', 'settings.ini'): shutil.copy(ROOT/f, tmp_path/f)
    r = subprocess.run(['make', '-s', 'hooks', f'BIN={BIN}'], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                       env={**os.environ, 'HOME': str(tmp_path), 'GIT_CEILING_DIRECTORIES': str(tmp_path.parent)})
    assert r.returncode == 0 and 'not a git checkout' in r.stdout + r.stderr, r


# ----------------------------------------------------------------------------------- the wall between fitting and scoring
TRAINING_LIBRARIES = ('sklearn', 'skops', 'keras', 'tensorflow', 'scipy', 'h5py', 'seaborn')
TRAINING_PACKAGE = 'fit'  # the save-time side of the package: all that fits lives in customer_segmentation.fit
OLD_PATHS = ('model', 'preprocess', 'evaluate', 'eda')  # thin re-exports of fit/ kept for users' imports (issue #27)
# The one place the run-time side hands over to the training side: `custseg train`, whose command imports the trainer only when it
# runs, after checking that the [train] extra is installed (so `custseg score`, `evaluate` and `info` never import it).
HANDOVERS = {(f'{LIB}.cli', f'{LIB}.fit.retrain')}


def test_import_graph_reads_imports_inside_functions():
    g = M.import_graph(ROOT)
    assert (f'{LIB}.scoring.engine', f'{LIB}.scoring.spec') in {(m, i) for m, deps in M.internal_imports(g).items() for i in deps}
    assert any(i.startswith('tqdm') for i, _ in g[f'{LIB}.scoring.customer_files'])  # imported inside `progress_bar`


def test_no_import_cycles():
    "No module of the package imports itself back, directly or through others (lazy imports inside functions count)."
    cycles = M.import_cycles(ROOT)
    assert not cycles, 'import cycles:\n  ' + '\n  '.join(sorted(set(cycles)))


def test_the_run_time_side_imports_nothing_of_the_training_side():
    "One rule: nothing outside fit/ imports fit/ or a training library, but the `custseg train` hand-over and the old paths' re-exports."
    fit = lambda i: i == f'{LIB}.{TRAINING_PACKAGE}' or i.startswith(f'{LIB}.{TRAINING_PACKAGE}.')
    training = lambda i: i.split('.')[0] in TRAINING_LIBRARIES or fit(i) or i in {f'{LIB}.{m}' for m in OLD_PATHS}
    g = M.import_graph(ROOT)
    runtime = [m for m in g if not training(m)]
    assert f'{LIB}.scoring.engine' in runtime and f'{LIB}.deploy' in runtime and f'{LIB}.fit.export_params' not in runtime
    bad = sorted(f'{m} imports {i} (line {n})' for m in runtime for i, n in g[m] if training(i) and not any(m == a and (i == b or i.startswith(b + '.')) for a, b in HANDOVERS))
    assert not bad, ('the run-time side imports the training side (fitting happens at save time; scoring reads scoring.npz '
                     'with numpy and pyarrow only):\n  ' + '\n  '.join(bad))


# ----------------------------------------------------------------------------------- the layout: the story, then the internals
FOLDERS = ('foundations', 'scoring', 'fit')  # the internals, in the sidebar's order; research/ comes last


def test_no_module_imports_a_later_chapter():
    "The numbers follow the dependencies: no module imports one generated from a chapter later in the reading order."
    nbs = M.module_notebooks(ROOT)
    assert nbs[f'{LIB}.scoring.engine'] == 'scoring/04h_numpy_engine.ipynb'
    assert M.notebook_rank('scoring/04h_numpy_engine.ipynb') < M.notebook_rank('05_modelling.ipynb') < M.notebook_rank('05a_x.ipynb')
    late = M.later_chapter_imports(ROOT)
    assert not late, 'modules that import a later chapter (renumber, or move the code to where it is first needed):\n  ' + '\n  '.join(late)


def test_story_on_top_internals_in_folders():
    "The top of nbs/ holds at most ten story chapters, numbered 01, 02, ... in reading order; every other chapter is in a folder with an index page."
    story = [p.name for p in PRODUCT if p.parent == ROOT/'nbs']
    assert len(story) <= 10 and [M.notebook_rank(n) for n in story] == [(i, '') for i in range(1, len(story) + 1)], story
    folders = sorted({p.parent.name for p in PRODUCT if p.parent != ROOT/'nbs'})
    assert folders == sorted(FOLDERS), f'chapters in folders {folders}; the layout has {FOLDERS}'


@pytest.mark.parametrize('folder', FOLDERS)
def test_each_folder_index_links_its_chapters(folder):
    "A folder's index page says what it holds and links each of its chapters, in order."
    text = '\n'.join(M.source(c) for c in M.cells(ROOT/'nbs'/folder/'index.ipynb') if c['cell_type'] == 'markdown')
    nbs = sorted(p.name for p in (ROOT/'nbs'/folder).glob('[0-9]*.ipynb'))
    links = re.findall(r'\]\(([0-9]\w*\.ipynb)\)', text)
    assert links == nbs, f'nbs/{folder}/index.ipynb links {links}; the folder holds {nbs}'


def test_sidebar_lists_the_story_then_each_folder():
    "nbs/sidebar.yml (committed; custom_sidebar = True) lists index, the story in order, then each folder's pages, then research."
    import yaml
    sb = yaml.safe_load((ROOT/'nbs'/'sidebar.yml').read_text())['website']['sidebar']['contents']
    got = [it if isinstance(it, str) else (it['section'], it['contents']) for it in sb]
    title = lambda p: next(l[2:] for l in M.source(M.cells(p)[0]).splitlines() if l.startswith('# '))
    want = ['index.ipynb', ('The story', [p.name for p in PRODUCT if p.parent == ROOT/'nbs'])]
    want += [(title(ROOT/'nbs'/d/'index.ipynb'), [f'{d}/index.ipynb'] + [_id(p) for p in PRODUCT if p.parent.name == d]) for d in FOLDERS]
    want += [('Research', [_id(p) for p in M.research_notebooks(ROOT)])]
    assert got == want, f'nbs/sidebar.yml is out of step with nbs/:\n  has  {got}\n  want {want}'


def test_every_json_the_product_keeps_is_strict_json():
    "Results and saved-model files parse with a strict parser: no NaN or Infinity (issue #26; reports are checked in test_no_harm)."
    def no(c): raise ValueError(f'not JSON: {c}')
    files = sorted([*(ROOT/'results').glob('*.json'), *(ROOT/'saved_model').glob('*.json')])
    assert len(files) >= 5
    for p in files: json.loads(p.read_text(), parse_constant=no)


def test_every_error_of_the_package_is_a_custseg_error():
    "One error base (issue #27): every exception class the package defines derives from errors.CustsegError, so the CLI has one exit-2 path."
    import ast
    found, bad = [], []
    for p in sorted((ROOT/LIB).rglob('*.py')):
        for node in ast.walk(ast.parse(p.read_text(encoding='utf-8'))):
            if isinstance(node, ast.ClassDef) and node.name.endswith('Error') and node.name != 'CustsegError':
                found.append(node.name)
                if 'CustsegError' not in [getattr(b, 'id', getattr(b, 'attr', '')) for b in node.bases]: bad.append(f'{p.name}: {node.name}')
    assert len(found) >= 7 and not bad, bad


def test_the_scoring_core_has_one_home_in_scoring():
    "Chunk probabilities and the rejects table live in scoring/ (issue #27): evaluation imports them from there, not from deploy."
    g = M.import_graph(ROOT)
    assert not [i for i, _ in g[f'{LIB}.labels'] if i == f'{LIB}.deploy'], 'labels imports deploy'
    from customer_segmentation import deploy, labels
    from customer_segmentation.scoring import customer_files, engine
    assert deploy.chunk_probabilities is labels.chunk_probabilities is engine.chunk_probabilities
    assert deploy.REJECT_COL is labels.REJECT_COL is customer_files.REJECT_COL
