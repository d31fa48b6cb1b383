"""The numbers behind the repository's rules (tests/test_repo.py checks them): per notebook, its markdown words and its export cells;
per module, its lines; the places that rename a file into place; with `--site DIR`, the words on each page of a built docs site.

Usage: `python tests/nbmetrics.py [ROOT] [--site DIR]` (ROOT: a checkout, default this one). The definitions here are the ones the
tests use, so what this prints is what they judge.
"""
import argparse, html.parser, json, re, statistics, sys
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


def product_notebooks(root=ROOT):
    "The numbered chapters: every nbs/*.ipynb except the home page (index.ipynb); research notebooks live one folder down."
    return sorted(p for p in (Path(root)/'nbs').glob('*.ipynb') if p.name != 'index.ipynb')


def all_notebooks(root=ROOT):
    return sorted((Path(root)/'nbs').glob('*.ipynb')) + research_notebooks(root)


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
    sites = rename_sites(root)
    print(f'\nplaces that rename a file into place: {len(sites)} lines in {len({f for f, *_ in sites})} files')
    for f, i, l in sites: print(f'  {f}:{i}: {l}')
    if a.site:
        print(f'\nrendered pages of {a.site} (words in the article; outside code cells)')
        for name, (w, pw) in site_words(a.site).items(): print(f'  {name:28} {w:6} {pw:6}')


if __name__ == '__main__':
    main()
