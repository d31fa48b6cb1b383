"""The numbers behind the repository's rules (tests/test_repo.py checks them): per notebook, its markdown words and its export cells;
per module, its lines; the places that rename a file into place; with `--site DIR`, the words on each page of a built docs site.

Usage: `python tests/nbmetrics.py [ROOT] [--site DIR]` (ROOT: a checkout, default this one). The definitions here are the ones the
tests use, so what this prints is what they judge.
"""
import argparse, ast, html.parser, json, re, statistics, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIB = 'customer_segmentation'
MAX_MD_WORDS, MAX_MEDIAN_EXPORT_LINES, MIN_SHOWN, MAX_MODULE_LINES = 2500, 12, 0.9, 350
GENERATED = {'_modidx.py', '__init__.py'}  # nbdev's index and version stub: no concern of their own
_re_export = re.compile(r'^#\|\s*export[si]?\b')
_re_rename = re.compile(r'os\.replace\(|os\.rename\(|\.rename\(|shutil\.move\(')


# ------------------------------------------------------------------------------------------------ notebooks and cells
def research_notebooks(root=ROOT):
    "Notebooks under nbs/research/: the studies behind the design, not the product's story."
    return sorted((Path(root)/'nbs'/'research').rglob('*.ipynb'))


def _notebooks(root):
    "Every notebook under nbs/ but the research ones and those in hidden or `_` folders (checkpoints, _proc)."
    nbs = Path(root)/'nbs'
    return sorted(p for p in nbs.rglob('*.ipynb') if not any(s.startswith(('.', '_')) or s == 'research' for s in p.relative_to(nbs).parts[:-1]))


def product_notebooks(root=ROOT):
    "The numbered chapters: the story at the top of nbs/ and the internals in its folders (foundations/, scoring/, fit/)."
    return [p for p in _notebooks(root) if p.name != 'index.ipynb']


def home_pages(root=ROOT):
    "The pages that introduce the chapters: nbs/index.ipynb (the README) and each folder's index.ipynb."
    return [p for p in _notebooks(root) if p.name == 'index.ipynb']


def all_notebooks(root=ROOT):
    return _notebooks(root) + research_notebooks(root)


def source(cell):
    s = cell.get('source', '')
    return ''.join(s) if isinstance(s, list) else s


def cells(nb):
    return json.loads(Path(nb).read_text(encoding='utf-8'))['cells']


def body_lines(src):
    "The non-blank lines of a code cell that are code, not `#|` directives."
    return [l for l in src.splitlines() if l.strip() and not l.lstrip().startswith('#|')]


def is_export(cell):
    "A code cell whose directives include `#| export` (or `exports`, `exporti`)."
    return cell['cell_type'] == 'code' and any(_re_export.match(l.strip()) for l in source(cell).splitlines())


def export_cells(cs):
    """(cell index, lines, shown) for each export cell. lines: its non-blank lines less the `#|` directives. shown: some code
    cell that is not an export cell and holds code (not only directives) comes after it and before the next export cell (or
    the notebook's end): a test, a displayed example, a hidden check; markdown cells in between do not matter."""
    res = []
    for i, c in enumerate(cs):
        if not is_export(c): continue
        shown = False
        for d in cs[i+1:]:
            if d['cell_type'] != 'code': continue
            if is_export(d): break
            if body_lines(source(d)): shown = True; break
        res.append((i, len(body_lines(source(c))), shown))
    return res


def md_words(cs):
    "Words (whitespace-separated) in the markdown cells, code spans and fences included: what a reader reads."
    return sum(len(source(c).split()) for c in cs if c['cell_type'] == 'markdown')


def notebook_stats(nb):
    cs = cells(nb)
    ex = export_cells(cs)
    return dict(md_words=md_words(cs), exports=len(ex), median_lines=statistics.median([n for _, n, _ in ex]) if ex else 0,
                shown=sum(s for *_, s in ex), multi_def=sum(_defs(source(cs[i])) > 1 for i, _, _ in ex))


def _defs(src): return len(re.findall(r'^(?:async\s+)?(?:def|class)\s', src, re.M))


def export_summary(root=ROOT):
    "Over all product notebooks: (export cells, median lines, share shown or tested)."
    ex = [e for nb in product_notebooks(root) for e in export_cells(cells(nb))]
    if not ex: return 0, 0, 1.0
    return len(ex), statistics.median(n for _, n, _ in ex), sum(s for *_, s in ex)/len(ex)


# ---------------------------------------------------------------------------------------------------- the package
def module_lines(root=ROOT):
    "{module file name: lines} for the package's modules, nbdev's generated index and version stub left out."
    lib = Path(root)/LIB
    return {str(p.relative_to(lib)): len(p.read_text(encoding='utf-8').splitlines()) for p in sorted(lib.rglob('*.py'))
            if p.name not in GENERATED}


def rename_sites(root=ROOT):
    "Lines that move a file into place (os.replace, os.rename, .rename(, shutil.move) in the package and bench/: [(file, line no, text)]."
    res = []
    for d in (LIB, 'bench'):
        for p in sorted((Path(root)/d).rglob('*.py')):
            for i, l in enumerate(p.read_text(encoding='utf-8').splitlines(), 1):
                if _re_rename.search(l.split('#')[0]): res.append((str(p.relative_to(root)), i, l.strip()))
    return res


# ----------------------------------------------------------------------------------------------- the built docs site
class _Text(html.parser.HTMLParser):
    "Words of a page's article: all of them, and those outside code inputs and plain/HTML/stream outputs (prose, rendered Markdown)."
    def __init__(self):
        super().__init__()
        self.stack, self.all, self.prose = [], [], []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ('br', 'img', 'hr', 'meta', 'link', 'input', 'wbr', 'col', 'source'): return
        cls = (a.get('class') or '').split()
        self.stack.append((tag, tag == 'article', 'cell_input' in cls or 'output' in cls))
    def handle_endtag(self, tag):
        if all(t[0] != tag for t in self.stack): return  # a void element or a stray end tag
        while self.stack:
            t = self.stack.pop()
            if t[0] == tag: break
    def handle_data(self, data):
        if not any(s[1] for s in self.stack) or any(s[0] in ('script', 'style') for s in self.stack): return
        self.all.append(data)
        if not any(s[2] for s in self.stack): self.prose.append(data)


def page_words(path):
    "(words in the article, words of its prose: outside code inputs and non-Markdown outputs) of one built HTML page."
    p = _Text()
    p.feed(Path(path).read_text(encoding='utf-8'))
    return len(' '.join(p.all).split()), len(' '.join(p.prose).split())


def site_words(site):
    site = Path(site)
    return {str(p.relative_to(site)): page_words(p) for p in sorted(site.rglob('*.html'))
            if not any(part.startswith('_') for part in p.relative_to(site).parts)
            and p.name not in ('genindex.html', 'search.html', 'py-modindex.html')}


# ----------------------------------------------------------------------------------------- imports and reading order
def module_name(p:Path, root=ROOT)->str:
    "The dotted name of package file `p`."
    rel = Path(p).relative_to(Path(root)/LIB).with_suffix('')
    return '.'.join((LIB, *rel.parts[:-1])) if rel.name == '__init__' else '.'.join((LIB, *rel.parts))


def import_graph(root=ROOT)->dict:
    "{module: {(imported module, line)}} of the package, from its source: every import, inside functions too, relative ones resolved."
    graph = {}
    for p in sorted((Path(root)/LIB).rglob('*.py')):
        if p.name == '_modidx.py': continue
        name = module_name(p, root)
        pkg = name if p.name == '__init__.py' else name.rsplit('.', 1)[0]
        found = set()
        for node in ast.walk(ast.parse(p.read_text(encoding='utf-8'))):
            if isinstance(node, ast.Import): found |= {(a.name, node.lineno) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    parts = pkg.split('.')
                    base = '.'.join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
                found |= {(base, node.lineno)}
                found |= {(f'{base}.{a.name}', node.lineno) for a in node.names}  # `from . import x` imports a module
        graph[name] = found
    return graph


def internal_imports(graph:dict)->dict:
    "{module: {package modules it imports}}."
    return {m: {i for i, _ in deps if i in graph and i != m} for m, deps in graph.items()}


def import_cycles(root=ROOT)->list:
    "Each import cycle of the package, as 'a -> b -> a' (imports inside functions count)."
    deps, cycles, done = internal_imports(import_graph(root)), [], set()
    def visit(m, path):
        for d in sorted(deps[m]):
            if d in path: cycles.append(' -> '.join(path[path.index(d):] + [d]))
            elif d not in done: visit(d, path + [d])
        done.add(m)
    for m in sorted(deps): visit(m, [m])
    return sorted(set(cycles))


def notebook_rank(nb:str)->tuple:
    "Where a notebook comes in the reading order, from its number: `04_evaluation` (4, ''), `scoring/04a_columns` (4, 'a')."
    m = re.match(r'(\d+)([a-z]*)_', Path(nb).name)
    assert m, f'{nb}: a chapter is named NN_name or NNx_name, its number saying where it comes in the reading order'
    return int(m.group(1)), m.group(2)


def module_notebooks(root=ROOT)->dict:
    "{module: the notebook (path in nbs/) it is generated from}, from each module's AUTOGENERATED header."
    res = {}
    for p in sorted((Path(root)/LIB).rglob('*.py')):
        m = re.search(r'File to edit: (?:\.\./)+nbs/(\S+\.ipynb)', p.read_text(encoding='utf-8')[:600])
        if m: res[module_name(p, root)] = m.group(1)
    return res


def later_chapter_imports(root=ROOT)->list:
    "'module (notebook) imports module (notebook)' for each import of a module generated from a later chapter in reading order."
    nbs, deps = module_notebooks(root), internal_imports(import_graph(root))
    return sorted(f'{m} ({nbs[m]}) imports {i} ({nbs[i]})' for m, ds in deps.items() for i in ds
                  if m in nbs and i in nbs and notebook_rank(nbs[i]) > notebook_rank(nbs[m]))


def layout_words(root=ROOT)->dict:
    "Chapters and markdown words of the story (the top of nbs/), of the internals (its folders) and of the home pages."
    nbs, prod = Path(root)/'nbs', product_notebooks(root)
    story = [p for p in prod if p.parent == nbs]
    return {'story chapters': len(story), 'story words': sum(md_words(cells(p)) for p in story),
            'internal chapters': len(prod) - len(story), 'internal words': sum(md_words(cells(p)) for p in prod if p.parent != nbs),
            'home page words': sum(md_words(cells(p)) for p in home_pages(root))}


# -------------------------------------------------------------------------------------------------------------- report
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('root', nargs='?', default=str(ROOT), help='the checkout to measure (default: this one)')
    ap.add_argument('--site', help='a built docs site (docs/build.py --out DIR) whose pages to count')
    a = ap.parse_args(argv)
    root = Path(a.root).resolve()
    print(f'{"notebook":38} {"md words":>8} {"exports":>7} {"median":>6} {"shown":>9} {"2+ defs":>7}')
    for nb in all_notebooks(root):
        s = notebook_stats(nb)
        share = f'{s["shown"]}/{s["exports"]}' if s['exports'] else '-'
        print(f'{str(nb.relative_to(root/"nbs")):38} {s["md_words"]:8} {s["exports"]:7} {s["median_lines"]:6g} {share:>9} {s["multi_def"]:7}')
    n, med, share = export_summary(root)
    print(f'product notebooks: {n} export cells, median {med:g} lines (rule: <= {MAX_MEDIAN_EXPORT_LINES}), '
          f'{share:.0%} shown or tested before the next export (rule: >= {MIN_SHOWN:.0%})')
    print('\nmodule lines (rule: <= %d)' % MAX_MODULE_LINES)
    for m, n in module_lines(root).items(): print(f'  {m:24} {n:5}{"  OVER" if n > MAX_MODULE_LINES else ""}')
    print('\nlayout: ' + ', '.join(f'{k} {v:,}' for k, v in layout_words(root).items()))
    cyc, late = import_cycles(root), later_chapter_imports(root)
    print(f'import cycles: {len(cyc)}' + ''.join(f'\n  {c}' for c in cyc))
    print(f'imports of a later chapter: {len(late)} (of {len(module_notebooks(root))} modules)' + ''.join(f'\n  {l}' for l in late))
    sites = rename_sites(root)
    print(f'\nplaces that rename a file into place: {len(sites)} lines in {len({f for f, *_ in sites})} files')
    for f, i, l in sites: print(f'  {f}:{i}: {l}')
    if a.site:
        print(f'\nrendered pages of {a.site} (words in the article; outside code cells)')
        for name, (w, pw) in site_words(a.site).items(): print(f'  {name:28} {w:6} {pw:6}')


if __name__ == '__main__':
    main()
