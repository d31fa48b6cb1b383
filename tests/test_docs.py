"""The docs site as a reader meets it: built by `docs/build.py` (what `make docs` runs), served from 127.0.0.1, read in headless Chromium.

Debian's chromium (/usr/bin/chromium, installed by `make browser`, a prerequisite of `make test`) is driven through Playwright's
Python package with `executable_path`; Playwright never downloads a browser here. Every request that leaves the local server
is blocked and counted as a failure, so the pages are checked to render with no network at all. Scrollbars are drawn as in a
reader's browser (Playwright's `--hide-scrollbars` is dropped), so the tests can see that wide tables scroll visibly; they also
check that figures open at full size, that chapter names link to their pages, that `#| echo: false` cells render their
Markdown as prose, and that the CLI and Data chapters show `custseg --help` and rows of the data.
"""
import importlib, inspect, json, re, subprocess, sys, threading, time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urlparse, unquote
from urllib.request import urlopen

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path('/usr/bin/chromium')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync']
SHOTS = ROOT/'results'/'screenshots'
TIMEOUT_MS = 30_000
LIB = 'customer_segmentation'


def _modidx():
    return importlib.import_module(f'{LIB}._modidx').d['syms']


def _public_functions(mod):
    "Top-level public callables nbdev indexed for `mod` that the module exports (functions and classes, not methods)."
    syms = _modidx().get(f'{LIB}.{mod}', {})
    m = importlib.import_module(f'{LIB}.{mod}')
    names = [k.rsplit('.', 1)[1] for k in syms if k.count('.') == mod.count('.') + 2 and not k.rsplit('.', 1)[1].startswith('_')]
    return [n for n in names if n in getattr(m, '__all__', names) and callable(getattr(m, n, None))]


def _stem(nb): return re.sub(r'^\d+[a-zA-Z0-9]*_', '', Path(nb).stem)


FOLDERS = ('foundations', 'scoring', 'fit')  # the internals, after the story, in the sidebar's order


def _pages_in_order():
    "Page stems the chapters get, in the sidebar's order: index, the story by file name, then each folder's index and chapters; numbers dropped (`01_data` -> `data`)."
    nbs = ROOT/'nbs'
    story = sorted(p.name for p in nbs.glob('[0-9]*.ipynb'))
    return ['index'] + [_stem(n) for n in story] + [f'{d}/{_stem(n)}' for d in FOLDERS
                                                    for n in ['index'] + sorted(p.name for p in (nbs/d).glob('[0-9]*.ipynb'))]


def _research_pages():
    "Pages of the research notebooks (nbs/research/x.ipynb -> research/x.html), after the chapters."
    return [f'research/{_stem(p)}' for p in sorted((ROOT/'nbs'/'research').glob('*.ipynb'))]


# ------------------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The site, built from a clean output folder with the offline path (the one this project's machines and CI have)."
    out = tmp_path_factory.mktemp('docs')/'site'
    t0 = time.time()
    r = subprocess.run([sys.executable, str(ROOT/'docs'/'build.py'), '--offline', '--out', str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f'docs build failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}'
    print(f'docs build: {time.time()-t0:.1f}s')
    assert (out/'index.html').is_file()
    return out


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a): pass


@pytest.fixture(scope='module')
def server(site):
    "A static file server on a free localhost port, stopped at the end."
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), partial(_Quiet, directory=str(site)))
    th = threading.Thread(target=httpd.serve_forever, kwargs={'poll_interval': 0.1}, daemon=True)
    th.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}/'
    httpd.shutdown(); httpd.server_close(); th.join(10)


@pytest.fixture(scope='module')
def browser(server, tmp_path_factory):
    "Headless Debian chromium with a fresh profile; any request not to the local server is aborted and recorded."
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium) first")
    from playwright.sync_api import sync_playwright
    host = urlparse(server).netloc
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(  # scrollbars drawn as a reader's browser draws them (Playwright hides them)
            str(tmp_path_factory.mktemp('chromium-profile')), executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            ignore_default_args=['--hide-scrollbars'], viewport={'width': 1280, 'height': 900}, timeout=60_000)
        ctx.set_default_timeout(TIMEOUT_MS); ctx.set_default_navigation_timeout(TIMEOUT_MS)
        ctx.offsite = []
        def route(r):
            u = urlparse(r.request.url)
            if u.scheme in ('data', 'blob') or u.netloc == host: r.continue_()
            else: ctx.offsite.append(r.request.url); r.abort()
        ctx.route('**/*', route)
        try: yield ctx
        finally: ctx.close()


def _visit(ctx, url):
    "Open `url` in a new tab; what a reader would see go wrong: console errors, page errors, failed or 4xx/5xx requests."
    page = ctx.new_page()
    probs = []
    page.on('console', lambda m: m.type == 'error' and probs.append(f'console: {m.text}'))
    page.on('pageerror', lambda e: probs.append(f'page error: {e}'))
    page.on('requestfailed', lambda r: probs.append(f'request failed: {r.url} ({r.failure})'))
    page.on('response', lambda r: r.status >= 400 and probs.append(f'HTTP {r.status}: {r.url}'))
    resp = page.goto(url, wait_until='load')
    if resp is None or resp.status != 200: probs.append(f'HTTP {resp.status if resp else "?"}: {url}')
    page.wait_for_load_state('networkidle', timeout=TIMEOUT_MS)
    return page, probs


_TABLES_JS = """() => {
  const art = document.querySelector('article'), ar = art.getBoundingClientRect();
  return [...art.querySelectorAll('table')].map(t => {
    const r = t.getBoundingClientRect();
    let sc = t.parentElement;
    while (sc && sc !== art && !['auto', 'scroll'].includes(getComputedStyle(sc).overflowX)) sc = sc.parentElement;
    const box = sc && sc !== art ? sc : null, b = box ? box.getBoundingClientRect() : null, cs = box ? getComputedStyle(box) : null;
    return {head: t.innerText.slice(0, 60), right: r.right, art: ar.right, box: b ? b.right : null,
            overflows: box ? box.scrollWidth > box.clientWidth + 1 : false,
            bar: box ? box.offsetHeight - box.clientHeight - parseFloat(cs.borderTopWidth) - parseFloat(cs.borderBottomWidth) : 0};
  });
}"""
_IMGS_JS = ("() => [...document.querySelectorAll('article img')].map((i, n) => ({n, src: i.src, alt: i.getAttribute('alt') || '', "
            "href: i.closest('a') ? i.closest('a').href : null, w: i.width, nw: i.naturalWidth}))")


@pytest.fixture(scope='module')
def crawl(browser, server):
    "Every page reachable from the home page by internal links: its problems, its links and the ids its anchors can target."
    t0 = time.time()
    todo, seen, pages = [server + 'index.html'], set(), {}
    while todo and len(seen) < 300:
        url = todo.pop(0)
        if url in seen: continue
        seen.add(url)
        page, probs = _visit(browser, url)
        links = page.eval_on_selector_all('a[href]', 'els => els.map(e => e.href)')
        ids = set(page.evaluate("() => [...document.querySelectorAll('[id]')].map(e => e.id)"
                                ".concat([...document.querySelectorAll('a[name]')].map(e => e.name))"))
        pages[url] = dict(problems=probs, links=links, ids=ids, title=page.title(), tables=page.evaluate(_TABLES_JS),
                          imgs=page.evaluate(_IMGS_JS))
        page.close()
        for l in links:
            base, _ = urldefrag(l)
            if base.startswith(server) and base not in seen and (base.endswith('.html') or base.endswith('/')):
                todo.append(base)
    print(f'browser crawl: {len(pages)} pages in {time.time()-t0:.1f}s')
    return pages


# --------------------------------------------------------------------------------------------------------------- tests
def test_every_page_loads_with_no_error_and_no_network(crawl, browser):
    assert len(crawl) >= len(_pages_in_order()) + 1, sorted(crawl)
    bad = {u: p['problems'] for u, p in crawl.items() if p['problems']}
    assert not bad, f'pages with console errors or failed requests: {json.dumps(bad, indent=1)}'
    assert not browser.offsite, f'requests that left the local server (the site must work offline): {browser.offsite}'


def test_every_internal_link_resolves(crawl, server):
    broken, checked = [], {}
    for src, p in crawl.items():
        for l in p['links']:
            if not l.startswith(server): continue
            base, frag = urldefrag(l)
            if base in crawl:
                if frag and unquote(frag) not in crawl[base]['ids']: broken.append(f'{src} -> {l} (no #{frag} on the page)')
                continue
            if base not in checked:
                try:
                    with urlopen(base, timeout=10) as r: checked[base] = r.status
                except Exception as e: checked[base] = str(e)
            if checked[base] != 200: broken.append(f'{src} -> {l} ({checked[base]})')
    assert not broken, 'broken internal links:\n' + '\n'.join(sorted(set(broken)))


def test_one_page_per_notebook_in_order_with_navigation_and_api(browser, server):
    page, probs = _visit(browser, server + 'index.html')
    nav = page.eval_on_selector_all('.sidebar-tree a.reference', 'els => els.map(e => e.getAttribute("href"))')
    captions = page.eval_on_selector_all('.sidebar-tree p.caption', 'els => els.map(e => e.textContent.trim())')  # as written, not as CSS cases it
    page.close()
    assert captions == ['The story', 'Foundations', 'Scoring internals', 'The training side', 'Research'], f'sidebar sections {captions}'
    expected = [s for s in _pages_in_order() if s != 'index'] + _research_pages()
    got = [urlparse(h).path.removesuffix('.html') for h in nav if h and not h.startswith('#')]
    assert [s for s in got if s in expected] == expected, f'sidebar {got}, notebooks {expected}'
    assert 'api' in got, f'no API reference in the navigation: {got}'


def test_home_page_is_the_readme(browser, server):
    page, _ = _visit(browser, server + 'index.html')
    h1 = page.inner_text('article h1')
    text = page.inner_text('article')
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS/'docs_home.png'), full_page=True)
    page.close()
    readme = (ROOT/'README.md').read_text(encoding='utf-8')
    assert h1.strip().rstrip('#¶ ').strip() in readme.splitlines()[2], (h1, readme.splitlines()[2])
    for cmd in ('make run', 'make test', 'make docs'): assert cmd in text, f'home page lacks `{cmd}`'


def test_eda_page_shows_its_figures(browser, server):
    eda = [s for s in _pages_in_order() if 'eda' in s]
    if not eda: pytest.skip('no EDA notebook in nbs/ yet')
    page, probs = _visit(browser, server + f'{eda[0]}.html')
    imgs = page.evaluate("() => [...document.querySelectorAll('article img')].map(i => ({src: i.getAttribute('src'), "
                         "complete: i.complete, w: i.naturalWidth, h: i.naturalHeight}))")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS/'docs_eda.png'), full_page=True)
    if imgs:  # and one screen as a reader first meets a figure
        page.locator('article img').first.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS/'docs_eda_figure.png'))
    page.close()
    assert not probs, probs
    assert imgs, 'the EDA page shows no figure (are its outputs committed?)'
    blank = [i for i in imgs if not (i['complete'] and i['w'] > 0 and i['h'] > 0)]
    assert not blank, f'figures that did not load: {blank}'


def _api_entries(browser, server):
    page, probs = _visit(browser, server + 'api.html')
    entries = page.evaluate("() => Object.fromEntries([...document.querySelectorAll('dl.py > dt[id]')]"
                            ".map(d => [d.id, d.innerText]))")
    page.close()
    assert not probs, probs
    return entries


@pytest.mark.parametrize('mod,kind,pattern', [('deploy', 'scoring', r'score'), ('fit.model', 'training', r'train|fit')])
def test_api_page_lists_the_exported_functions(browser, server, mod, kind, pattern):
    "The API page has every public exported function of the scoring and training modules, with its signature."
    if f'{LIB}.{mod}' not in _modidx(): pytest.skip(f'{LIB}.{mod} is not written yet')
    names = _public_functions(mod)
    assert any(re.search(pattern, n) for n in names), f'no {kind} function among {LIB}.{mod} exports: {names}'
    entries = _api_entries(browser, server)
    missing = [n for n in names if f'{LIB}.{mod}.{n}' not in entries]
    assert not missing, f'API page lacks {missing} from {LIB}.{mod}'
    m = importlib.import_module(f'{LIB}.{mod}')
    for n in names:
        sig = entries[f'{LIB}.{mod}.{n}']
        assert n in sig, f'{n}: not named on the API page: {sig!r}'
        if inspect.isfunction(getattr(m, n)): assert re.search(rf'{n}\s*\(', sig), f'{n}: no signature on the API page: {sig!r}'


def test_api_page_covers_every_module(browser, server):
    entries = _api_entries(browser, server)
    for full in _modidx():
        mod = full.split('.', 1)[1]
        missing = [n for n in _public_functions(mod) if f'{full}.{n}' not in entries]
        assert not missing, f'API page lacks {missing} from {full}'


def test_search_finds_a_function(browser, server):
    page, probs = _visit(browser, server + 'search.html?q=load_customers')
    page.wait_for_selector('#search-results li a', timeout=TIMEOUT_MS)
    hits = page.eval_on_selector_all('#search-results li a', 'els => els.map(e => e.getAttribute("href"))')
    page.close()
    assert not probs, probs
    assert any('data.html' in h or 'api.html' in h for h in hits), hits


# ------------------------------------------------------------------------------------- what a reader of a chapter sees



def test_wide_tables_scroll_visibly(crawl, browser):
    "On every page, a table fits the text column or scrolls sideways inside it, under a scrollbar that is drawn (not an overlay)."
    bad = []
    for url, p in crawl.items():
        for t in p['tables']:
            if t['right'] <= t['art'] + 4: continue  # fits
            if t['box'] is None or t['box'] > t['art'] + 4: bad.append(f"{url}: table {t['head']!r} is cut off at the column's edge")
            elif t['overflows'] and t['bar'] <= 0: bad.append(f"{url}: table {t['head']!r} scrolls, but with no scrollbar drawn")
    assert not bad, 'wide tables a reader cannot read (docs/_static/site.css):\n' + '\n'.join(bad)


def test_figures_open_at_full_size(crawl, browser, server):
    "Every figure is a link to its own image file; a click on one shown smaller than it is opens it at its full size."
    bad, clicked = [], 0
    for url, p in crawl.items():
        bad += [f"{url}: {i['src']} is not a link to itself (href {i['href']})" for i in p['imgs'] if i['href'] != i['src']]
        small = [i for i in p['imgs'] if i['href'] == i['src'] and i['nw'] > i['w'] + 10]
        if small and clicked < 2:
            page, _ = _visit(browser, url)
            with page.expect_navigation():
                page.locator('article img').nth(small[0]['n']).click()
            assert page.url == small[0]['src'], (page.url, small[0])
            assert page.evaluate('() => document.images.length && document.images[0].naturalWidth') == small[0]['nw']
            page.close()
            clicked += 1
    assert not bad, 'figures that do not open at full size:\n' + '\n'.join(bad)
    assert clicked, 'no page has a figure shown smaller than its full size to try (are the EDA outputs committed?)'


def test_chapter_names_link_to_chapters(crawl, browser, server):
    "The home page links every chapter (and research notebook); no link on any page is left pointing at a notebook file."
    page, _ = _visit(browser, server + 'index.html')
    links = {urlparse(h).path.lstrip('/') for h in page.eval_on_selector_all('article a[href]', 'els => els.map(e => e.href)')}
    page.close()
    missing = [s for s in _pages_in_order()[1:] + _research_pages() if f'{s}.html' not in links]
    assert not missing, f'the home page does not link the chapters {missing}'
    raw = [f'{u} -> {l}' for u, p in crawl.items() for l in p['links'] if urldefrag(l)[0].endswith('.ipynb')]
    assert not raw, 'links to .ipynb files (docs/build.py turns [Data](01_data.ipynb) into page links):\n' + '\n'.join(raw)


def test_markdown_outputs_render_as_prose(browser, server):
    "Cells marked `#| echo: false` that render Markdown show as prose and tables, not as code or as Markdown source."
    page, probs = _visit(browser, server + 'index.html')
    code = page.eval_on_selector_all('article .cell_input', 'els => els.map(e => e.innerText)')
    tables = page.eval_on_selector_all('article table', 'els => els.map(e => e.innerText)')
    pres = page.eval_on_selector_all('article pre', 'els => els.map(e => e.innerText)')
    page.close()
    assert not code, f'the home page shows code: {code[:2]}'
    assert any('accuracy' in t and 'log loss' in t for t in tables), f'no model table on the home page: {[t[:80] for t in tables]}'
    src = [p[:80] for p in pres if re.search(r'^\|.*\|\s*$|\*\*\w', p, re.M)]
    assert not src, f'Markdown shown as source on the home page: {src}'


def test_cli_page_shows_the_help(browser, server):
    "The Command line chapter shows what `custseg --help` and `custseg score --help` print."
    cli = [s for s in _pages_in_order() if s == 'cli']
    if not cli: pytest.skip('no CLI chapter')
    page, probs = _visit(browser, server + 'cli.html')
    text = page.inner_text('article')
    page.close()
    assert re.search(r'usage: custseg \[', text) or 'usage: custseg [-h]' in text, 'the CLI page does not show `custseg --help`'
    assert 'usage: custseg score' in text, 'the CLI page does not show `custseg score --help`'


def test_data_page_shows_rows_of_the_data(browser, server):
    "The Data chapter shows a few rows of the customer file as a table."
    page, probs = _visit(browser, server + 'data.html')
    rows = page.evaluate("() => [...document.querySelectorAll('article table')].map(t => ({head: t.tHead ? t.tHead.innerText : '', "
                         "rows: t.tBodies.length ? t.tBodies[0].rows.length : 0}))")
    page.close()
    shown = [r for r in rows if all(c in r['head'] for c in ('Gender', 'Age', 'Profession')) and r['rows'] >= 3]
    assert shown, f'the Data page shows no rows of the data (a table with Gender, Age, Profession and 3+ rows): {rows}'


def _on_screen(browser, server, stem:str, js:str):
    "What script `js` finds on page `stem` as a reader's 1280x900 screen shows it (the page loaded with no problem)."
    page, probs = _visit(browser, server + f'{stem}.html')
    page.set_viewport_size({'width': 1280, 'height': 900})
    found = page.evaluate(js)
    page.close()
    assert not probs, probs
    return found


@pytest.mark.parametrize('stem', ['eda', 'modelling', 'deploy', 'drift'])
def test_story_chapters_open_with_their_findings(browser, server, stem):
    "EDA, Modelling, Deployment and Drift state what they found (a table rendered from results/) on their first screen, before any definition."
    top = _on_screen(browser, server, stem, "() => { const a = document.querySelector('article'); const r = e => e.getBoundingClientRect().top + window.scrollY;"
                        " const t = a.querySelector('table'); const h = [...a.querySelectorAll('h2')];"
                        " return {table: t ? r(t) : null, first_h2: h.length ? h[0].innerText : null,"
                        " second_h2: h.length > 1 ? r(h[1]) : null}; }")
    assert top['table'] is not None and top['table'] < 900, f'{stem}: the first table (the findings) starts at {top["table"]} px, below the first screen'
    assert top['first_h2'].lower().startswith('what '), f'{stem}: the first section is {top["first_h2"]!r}, not the findings'
    assert top['second_h2'] is None or top['table'] < top['second_h2'], f'{stem}: definitions come before the findings'


def test_deployment_shows_the_scored_columns(browser, server):
    "Deployment's first table of scored customers shows Segmentation and prob_A..prob_D without scrolling sideways."
    seen = _on_screen(browser, server, 'deploy', "() => { const a = document.querySelector('article'), right = a.getBoundingClientRect().right;"
                         " const t = [...a.querySelectorAll('table')].find(t => t.innerText.includes('prob_D') && t.innerText.includes('Segmentation'));"
                         " if (!t) return null; return [...t.querySelectorAll('th')].filter(h => /^(Segmentation|prob_[A-D])$/.test(h.innerText.trim()))"
                         ".map(h => ({name: h.innerText.trim(), visible: h.getBoundingClientRect().right <= right + 1})); }")
    assert seen, 'Deployment shows no table of scored customers'
    assert {s['name'] for s in seen} >= {'Segmentation', 'prob_A', 'prob_D'} and all(s['visible'] for s in seen), seen


def test_figures_have_alt_texts_that_say_what_they_show(crawl):
    "Every figure's alt text is a sentence about it (the prose that introduces it), never its hashed file name."
    imgs = [(u, i) for u, p in crawl.items() for i in p['imgs']]
    assert imgs, 'no figures on the site'
    bad = [f"{u} #{i['n']}: {i['alt']!r}" for u, i in imgs
           if len(i['alt'].split()) < 4 or re.search(r'[0-9a-f]{32}|\.(png|jpe?g|svg)\b', i['alt'])]
    assert not bad, 'figures without a real alt text:\n  ' + '\n  '.join(bad[:10])
