"""Build the docs site into _docs/ (`make docs`).

Where Quarto is installed this is nbdev's own pipeline (nbdev_docs, less its README step: README.md is written by
tests/readme.py). Where it is not (this project's machines), it takes the notebooks as nbdev processes them for Quarto
(`nbdev.serve.proc_nbs` into _proc/: directives applied, `#| hide` cells removed, `show_doc` rendered) and renders those
with Sphinx + MyST-NB (stored outputs, never re-executed), adds an API reference from the package (autodoc), and writes a
static site that needs no network. Usage: `python docs/build.py [--offline] [--out DIR]`.
"""
import argparse, html, importlib, json, os, posixpath, re, shutil, subprocess, sys, time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _cfg():
    from nbdev.config import get_config
    return get_config(path=ROOT)


def build_quarto(out: Path):
    "nbdev_docs without its README step (README.md comes from tests/readme.py, and nbdev_readme would overwrite it)."
    from nbdev.quarto import _pre_docs
    from customer_segmentation.files import atomic_path
    cache, cfg, _ = _pre_docs()
    subprocess.run(['quarto', 'render', '--no-cache'], cwd=cache, check=True)
    with atomic_path(out) as tmp: shutil.copytree(cache/cfg.doc_path.name, tmp)


# ---------------------------------------------------------------- staging: nbdev's _proc notebooks -> MyST-NB sources
_re_md_link = re.compile(r'(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)(\{[^}\n]*\})?')
_re_heading = re.compile(r'^(#{1,6})\s+(.+?)\s*#*\s*$', re.M)
_re_nb_link = re.compile(r'^(?![a-z][\w+.-]*:|/)([^#?]+\.ipynb)(#.*)?$', re.I)  # a relative link to a notebook


def _src(cell): return ''.join(cell.get('source', '')) if isinstance(cell.get('source'), list) else cell.get('source', '')


def _directives(src):
    "Split `#| key: value` lines off the top of a code cell: (directives, remaining source)."
    lines, d = src.splitlines(), {}
    i = 0
    while i < len(lines) and (lines[i].startswith('#|') or not lines[i].strip()):
        if lines[i].startswith('#|'):
            k, _, v = lines[i][2:].strip().partition(':')
            d[k.strip()] = v.strip().strip('"\'')
        i += 1
    return d, '\n'.join(lines[i:]).rstrip()


def _md_cell(text): return {'cell_type': 'markdown', 'metadata': {}, 'source': text}


def _link_html(text, href, cls='reference internal'):
    "Inline HTML for a link whose markdown text is `code` or plain (used where MyST cannot resolve the target itself)."
    m = re.fullmatch(r'`([^`]+)`', text.strip())
    inner = f'<code class="docutils literal notranslate"><span class="pre">{html.escape(m.group(1))}</span></code>' if m else html.escape(text)
    return f'<a class="{cls}" href="{html.escape(href)}">{inner}</a>'


class Stager:
    """Turns nbdev's processed notebooks into MyST-NB sources, with every nbdev/Quarto link pointed inside the site.

    A page is named by its docname: the Quarto output name, in the notebook's folder (`01_data.ipynb` -> `data`,
    `research/x.ipynb` -> `research/x`). A link in one notebook to another (`[Data](01_data.ipynb)`, `../05_modelling.ipynb#x`)
    becomes a link to that page, relative to the page it is on."""
    def __init__(self, proc: Path, dst: Path, pages):
        self.proc, self.dst, self.pages = proc, dst, pages  # pages: [(source notebook name, docname)]
        cfg = _cfg()
        self.doc_url = (cfg.get('doc_host', '') + cfg.get('doc_baseurl', '')).rstrip('/') + '/'
        self.src_url = f"{cfg.get('git_url', '').rstrip('/')}/blob/{cfg.get('branch', 'main')}/"
        self.lib = cfg.lib_name
        self.doc_of = {nb: doc for nb, doc in pages}
        self.docs = {doc for _, doc in pages}
        self.modidx = importlib.import_module(f'{self.lib}._modidx').d
        self.anchors = {}  # docname -> heading anchors on that page
        self.cur = None    # (notebook name, docname) of the page being rewritten

    def rel(self, doc, suffix='.ipynb'):
        "Link from the current page to page `doc` (a docname, or 'api')."
        here = posixpath.dirname(self.cur[1]) if self.cur else ''
        return posixpath.relpath(doc, here or '.') + suffix

    def unresolved(self, text, url):
        "A link to a notebook that is not a page of the site: shown as its text, and reported."
        self.missing.append(f'{self.cur[0] if self.cur else "?"}: [{text}]({url})')
        return text

    def symbol_for(self, page, anchor):
        "Fully qualified name of the public symbol (one the API page documents) that nbdev links as `page.html#anchor`."
        for mod, syms in self.modidx['syms'].items():
            for full, (url, _) in syms.items():
                if url != f'{page}.html#{anchor}': continue
                parts = full[len(mod)+1:].split('.')
                try: public = parts[0] in getattr(importlib.import_module(mod), '__all__', ())
                except Exception: public = False
                if public and not any(p.startswith('_') for p in parts): return full

    def link(self, m):
        bang, text, url, attrs = m.groups()
        if bang: return m.group(0)
        if url.startswith(self.src_url) and url.split('#')[0].endswith('.py'):  # show_doc's [source] -> local highlighted source
            path = url[len(self.src_url):].split('#')[0]
            return f'\x00SRC{path}\x00'
        if url.startswith(self.doc_url):  # nbdev doc link to one of our pages
            rest = url[len(self.doc_url):]
            page, _, anchor = rest.partition('#')
            doc = page[:-5] if page.endswith('.html') else page
            if doc in self.docs:
                if not anchor: return f'[{text}]({self.rel(doc)})'
                if anchor in self.anchors.get(doc, ()): return f'[{text}]({self.rel(doc)}#{anchor})'
                full = self.symbol_for(doc, anchor)
                if full: return _link_html(text, self.rel('api', '.html') + f'#{full}')
                return text  # a private helper: documented nowhere, so shown without a link
            return m.group(0)
        nm = _re_nb_link.match(url)
        if nm:  # [..](02_eda.ipynb#x), [..](../05_modelling.ipynb) between notebooks
            here = posixpath.dirname(self.cur[0]) if self.cur else ''
            name = posixpath.normpath(posixpath.join(here, nm.group(1)))
            if name not in self.doc_of: return self.unresolved(text, url)
            return f'[{text}]({self.rel(self.doc_of[name])}{nm.group(2) or ""})'
        return m.group(0) if not attrs else f'[{text}]({url})'

    def rewrite(self, md, cur=None):
        self.cur = cur
        md = _re_md_link.sub(self.link, md)
        # a [source] link belongs to the show_doc heading that follows it: point it at viewcode's block for that object
        def src(m):
            path, rest = m.group(1), md[m.end():]
            h = _re_heading.search(rest)
            href = self.rel(f'_modules/{path[:-3]}', '.html') + (f'#{h.group(2).strip()}' if h else '')
            return f'<a class="reference internal nbdev-source" href="{html.escape(href)}">[source]</a>'
        return re.sub('\x00SRC([^\x00]+)\x00', src, md)

    def convert(self, nb_name, stem):
        nb = json.loads((self.proc/nb_name).read_text(encoding='utf-8'))
        cells, said = [], ''  # `said`: the first sentence of the latest prose, which introduces the figure that follows it
        for c in nb['cells']:
            src = _src(c)
            if c['cell_type'] == 'markdown' and src.strip(): said = _first_sentence(src) or said
            if c['cell_type'] == 'raw' and src.lstrip().startswith('---'):  # nbdev frontmatter -> title + summary
                fm = yaml.safe_load(src.strip().strip('-')) or {}
                text = f"# {fm.get('title', stem)}"
                if fm.get('description'): text += '\n\n{.description}\n' + ' '.join(str(fm['description']).split())
                cells.append(_md_cell(text))
            elif c['cell_type'] == 'markdown':
                if src.strip().startswith('<!-- WARNING: THIS FILE WAS AUTOGENERATED'): continue
                cells.append(_md_cell(src))
            elif c['cell_type'] == 'code':
                d, code = _directives(src)
                outs = c.get('outputs', [])
                if d.get('include') == 'false': continue
                if d.get('output') == 'false': outs = []
                if d.get('output') == 'asis':  # Quarto: the markdown output is part of the page (show_doc)
                    if code and d.get('echo') != 'false': cells.append({**c, 'source': code, 'outputs': []})
                    for o in outs:
                        md = o.get('data', {}).get('text/markdown')
                        if md is not None: cells.append(_md_cell(''.join(md) if isinstance(md, list) else md))
                    continue
                if not code and not outs: continue
                tags = list(c.get('metadata', {}).get('tags', []))
                if d.get('echo') == 'false': tags.append('remove-input')
                meta = {'tags': tags} if tags else {}
                if any(k.startswith('image/') for o in outs for k in o.get('data', {})):  # alt text: what the figure shows, not its hash
                    meta['mystnb'] = {'image': {'alt': f'Figure: {said}' if said else f'Figure of {stem}'}}
                cells.append({'cell_type': 'code', 'execution_count': None, 'id': c.get('id'), 'metadata': meta, 'outputs': outs, 'source': code})
        for i, c in enumerate(cells):
            if 'id' not in c or not c['id']: c['id'] = f'{stem.replace("/", "-")}-{i}'
        nb['cells'] = cells
        nb['metadata'] = {k: v for k, v in nb.get('metadata', {}).items() if k in ('kernelspec', 'language_info')}
        return nb

    def stage(self):
        if self.dst.exists(): shutil.rmtree(self.dst)
        self.dst.mkdir(parents=True)
        self.missing = []
        nbs = {doc: self.convert(nb, doc) for nb, doc in self.pages}
        from sitehooks import pandoc_slug
        for doc, nb in nbs.items():  # headings first, so links can be checked against the anchors that exist
            for c in nb['cells']:
                if c['cell_type'] == 'markdown':
                    self.anchors.setdefault(doc, set()).update(pandoc_slug(h) for _, h in _re_heading.findall(_src(c)))
        for (name, doc), nb in zip(self.pages, nbs.values()):
            for c in nb['cells']:
                if c['cell_type'] == 'markdown': c['source'] = self.rewrite(_src(c), (name, doc))
                for o in c.get('outputs', []):
                    md = o.get('data', {}).get('text/markdown')
                    if md is not None: o['data']['text/markdown'] = self.rewrite(''.join(md) if isinstance(md, list) else md, (name, doc))
            out = self.dst/f'{doc}.ipynb'
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')
        self.cur = None
        return nbs


def _first_sentence(md:str, n:int=200)->str:
    "The first sentence of Markdown `md` as plain text (headings, links, code marks and bold dropped), at most `n` characters."
    text = ' '.join(l for l in md.splitlines() if l.strip() and not l.lstrip().startswith(('#', '|', '```', '<', '!')))
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', text)
    text = re.sub(r'[`*]', '', text).strip()
    m = re.match(r'(.+?[.:!?])(\s|$)', text)
    text = (m.group(1) if m else text).rstrip(':').strip()
    return text if len(text) <= n else text[:n - 1].rsplit(' ', 1)[0] + '…'


def _pages(cfg, proc):
    "(processed notebook, docname) in nbdev's sidebar order; the docname is the Quarto output name in the notebook's folder."
    sb = yaml.safe_load((cfg.nbs_path/'sidebar.yml').read_text())['website']['sidebar']['contents']
    flat = []
    def walk(items):
        for it in items:
            if isinstance(it, str): flat.append(it)
            elif isinstance(it, dict): walk(it.get('contents', []))
    walk(sb)
    res = []
    for name in flat:
        if not name.endswith('.ipynb') or not (proc/name).exists(): continue
        nb = json.loads((proc/name).read_text(encoding='utf-8'))
        stem = Path(name).stem
        first = _src(nb['cells'][0]) if nb['cells'] else ''
        if first.lstrip().startswith('---'):
            fm = yaml.safe_load(first.strip().strip('-')) or {}
            stem = Path(fm.get('output-file', name)).stem
        res.append((name, posixpath.join(posixpath.dirname(name), stem)))
    return res


def _sections(cfg, pages):
    "(caption, [docname]) for each section of the committed sidebar (nbs/sidebar.yml), in its order; the API reference ends the first."
    sb = yaml.safe_load((cfg.nbs_path/'sidebar.yml').read_text())['website']['sidebar']['contents']
    doc = dict(pages)
    res = [(it['section'], [doc[n] for n in it.get('contents', []) if n in doc]) for it in sb if isinstance(it, dict)]
    if res: res[0][1].append('api')
    return res


def _api_page(pages, nbs):
    "api.md: autodoc of every module in the package index, in notebook order, each linked to its chapter."
    cfg = _cfg()
    modidx = importlib.import_module(f'{cfg.lib_name}._modidx').d
    mods = list(modidx['syms'])
    chapter = {}
    for nb_name, stem in pages:
        src = json.loads((cfg.nbs_path/nb_name).read_text(encoding='utf-8'))
        m = next((re.search(r'^#\|\s*default_exp\s+(\S+)', _src(c), re.M) for c in src['cells'] if c['cell_type'] == 'code'
                  and re.search(r'^#\|\s*default_exp', _src(c), re.M)), None)
        if m: chapter[f'{cfg.lib_name}.{m.group(1)}'] = (stem, nbs[stem]['cells'][0]['source'].splitlines()[0].lstrip('# '))
    order = [m for m, _ in sorted(chapter.items(), key=lambda kv: [s for _, s in pages].index(kv[1][0])) if m in mods]
    order += sorted(m for m in mods if m not in order)
    out = ['# API reference', '',
           '{.description}', 'Everything the package exports, module by module: signatures and docstrings come from the package '
           'itself, parameter notes from the docments comments in the notebooks. Each module is generated from one notebook.', '']
    for mod in order:
        out += [f'## `{mod}`', '']
        if mod in chapter: out += [f'Written in the chapter [{chapter[mod][1]}]({chapter[mod][0]}.ipynb).', '']
        out += ['```{eval-rst}', f'.. automodule:: {mod}', '```', '']
    return '\n'.join(out)


_DOC_CELLS = ("docs: nbdev's docs processing runs every cell that exports or imports (an import anywhere in it, even inside a def) "
              "and no other, so an import must sit in a cell of its own (with the notebook's other imports, in a `#| hide` cell near the top). "
              "Cells that fail that way:\n")


def check_doc_cells(nbs_path: Path):
    "Every cell, in every notebook, that nbdev's docs processing executes and that fails; one line each."
    import nbdev.processors as P
    from execnb.nbio import read_nb
    bad = []
    def call(self, cell):  # exec_show_docs.__call__, recording failures instead of stopping at the first
        if not self.nb.has_docs_ or not hasattr(self, 'k') or not P._do_eval(cell): return
        self.k.cell(cell)
        if self.k.exc:
            first = cell.source.strip().splitlines()[0][:70]
            bad.append(f'  {self.nb.path_name}: the cell starting {first!r}: {type(self.k.exc).__name__}: {str(self.k.exc)[:100]}')
            self.k.exc = None
    P.exec_show_docs.__call__ = call
    os.environ['IN_TEST'] = '1'
    for p in sorted(Path(nbs_path).rglob('*.ipynb')):
        if any(part.startswith(('_', '.')) for part in p.relative_to(nbs_path).parts): continue
        nb = read_nb(p)
        nb.path_name = str(p.relative_to(nbs_path))
        try: P.FilterDefaults()(nb)
        except Exception as e: bad.append(f'  {p.name}: {type(e).__name__}: {str(e)[:150]}')
    return bad


def build_offline(out: Path, work: Path):
    from nbdev.quarto import refresh_quarto_yml
    from nbdev.serve import proc_nbs
    cfg = _cfg()
    t0 = time.time()
    refresh_quarto_yml()                     # nbs/nbdev.yml from settings.ini, as nbdev_docs does
    try: proc = proc_nbs(cfg.nbs_path)       # _proc/: nbdev's own processing (executes import/export cells only)
    except Exception as e:
        print(f"docs: nbdev's notebook processing failed: {str(e).splitlines()[0]}", file=sys.stderr)
        sys.exit(_DOC_CELLS + '\n'.join(check_doc_cells(cfg.nbs_path)))
    t1 = time.time()
    sys.path.insert(0, str(HERE))
    pages = _pages(cfg, proc)
    src = work/'src'
    stager = Stager(proc, src, pages)
    nbs = stager.stage()
    if stager.missing:
        sys.exit('docs: links to notebooks that are not in nbs/ (renamed?); link to an existing one, e.g. [Data](01_data.ipynb):\n  '
                 + '\n  '.join(stager.missing))
    (src/'api.md').write_text(_api_page(pages, nbs), encoding='utf-8')
    home = next(doc for _, doc in pages if doc == 'index')
    for caption, docs in _sections(cfg, pages):  # the sidebar's sections: the story (and the API), then each folder
        nbs[home]['cells'].append(_md_cell(f'```{{toctree}}\n:hidden:\n:maxdepth: 2\n:caption: {caption}\n\n' + '\n'.join(docs) + '\n```'))
    (src/f'{home}.ipynb').write_text(json.dumps(nbs[home], indent=1, ensure_ascii=False), encoding='utf-8')
    tmp_out = work/'html'
    shutil.rmtree(tmp_out, ignore_errors=True)
    warn = work/'warnings.txt'
    r = subprocess.run([sys.executable, '-m', 'sphinx', '-b', 'html', '-E', '-q', '-c', str(HERE), '-d', str(work/'doctrees'),
                        '-w', str(warn), str(src), str(tmp_out)], cwd=ROOT)
    if r.returncode: sys.exit(f'sphinx-build failed ({r.returncode}); see {warn}')
    (tmp_out/'.nojekyll').touch()
    for f in ('.buildinfo', 'objects.inv'): (tmp_out/f).unlink(missing_ok=True)
    _fix_source_links(tmp_out)
    _check_offline(tmp_out)
    from customer_segmentation.files import atomic_path
    with atomic_path(out) as tmp: shutil.copytree(tmp_out, tmp)  # a reader of _docs/ never sees half a site
    w = [l for l in warn.read_text().splitlines() if l.strip()] if warn.exists() else []
    for l in w: print('  sphinx:', l)
    print(f'docs: {len(pages)} notebooks + API reference -> {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} '
          f'(nbdev processing {t1-t0:.0f}s, total {time.time()-t0:.0f}s, {len(w)} Sphinx warnings)')


_re_source_link = re.compile(r'(<a class="reference internal nbdev-source" href=")([^"#]+)#([^"]+)(")')


def _fix_source_links(site: Path):
    "A [source] link to an object viewcode has no anchor for (a method added with fastcore's `@patch`) points at its class, or the module."
    ids = {p.resolve(): set(re.findall(r'\bid="([^"]+)"', p.read_text(encoding='utf-8'))) for p in (site/'_modules').rglob('*.html')}
    for page in site.rglob('*.html'):
        text = page.read_text(encoding='utf-8')
        def fix(m):
            have = ids.get((page.parent/m.group(2)).resolve())
            if have is None or m.group(3) in have: return m.group(0)
            parts = m.group(3).split('.')
            while parts and '.'.join(parts) not in have: parts.pop()
            return m.group(1) + m.group(2) + ('#' + '.'.join(parts) if parts else '') + m.group(4)
        new = _re_source_link.sub(fix, text)
        if new != text: page.write_text(new, encoding='utf-8')


_re_remote = re.compile(r'''<(?:script|link|img|iframe|source|video|audio)\b[^>]*?\b(?:src|href)\s*=\s*["']?(?:https?:)?//''', re.I)


def _check_offline(site: Path):
    "Fail the build if any page loads an asset from another host (the site must render with no network)."
    bad = [f'{p.relative_to(site)}: {m.group(0)[:120]}' for p in site.rglob('*.html') for m in _re_remote.finditer(p.read_text(encoding='utf-8'))]
    if bad: sys.exit('docs reference remote assets:\n  ' + '\n  '.join(bad[:20]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--offline', action='store_true', help='use the offline Sphinx path even where Quarto is installed')
    p.add_argument('--out', default=None, help='output folder (default: doc_path from settings.ini, _docs/)')
    p.add_argument('--check', action='store_true', help="only run the cells nbdev's docs processing runs, and list those that fail")
    a = p.parse_args(argv)
    os.chdir(ROOT)
    cfg = _cfg()
    if a.check:
        bad = check_doc_cells(cfg.nbs_path)
        if bad: sys.exit(_DOC_CELLS + '\n'.join(bad))
        return print("docs: every cell nbdev's docs processing runs succeeds")
    out = Path(a.out).resolve() if a.out else cfg.config_path/cfg.doc_path.name
    if shutil.which('quarto') and not a.offline:
        print('docs: Quarto found, building with nbdev (nbdev_docs pipeline)')
        return build_quarto(out)
    print(f'docs: {"--offline" if a.offline else "Quarto not installed"}: rendering nbdev\'s processed notebooks with Sphinx + MyST-NB (offline) into {out.name}/')
    build_offline(out, cfg.config_path/'build'/'docs')


if __name__ == '__main__':
    main()
