"""Small Sphinx hooks for the offline docs site: Quarto-compatible heading anchors, nbdev docments in autodoc, figures that
open at full size."""
import re, inspect


def pandoc_slug(text: str) -> str:
    "Heading anchor as pandoc (Quarto) makes it, so nbdev's `page.html#name` links resolve: lower case, punctuation but `_-.` dropped."
    s = re.sub(r'[^\w\s.-]', '', text.strip().lower())
    s = re.sub(r'\s+', '-', s)
    return re.sub(r'^[^a-z_]+', '', s) or 'section'


def _docments_lines(obj):
    "reST field lines for the parameters (and return) documented with docments comments on `obj`."
    from fastcore.docments import docments
    try: d = docments(obj, full=True)
    except Exception: return []
    lines = []
    for name, info in d.items():
        doc = info.get('docment') if isinstance(info, dict) else None
        if not doc: continue
        doc = ' '.join(str(doc).split())
        lines.append(f':returns: {doc}' if name == 'return' else f':param {name}: {doc}')
    return lines


_re_glued_code = re.compile(r'(?<=\w)(`[^`\s][^`]*`)|(`[^`\s][^`]*`)(?=\w)')


def md_code_spans(app, what, name, obj, options, lines):
    "Docstrings are Markdown: a code span glued to a word (\"`Path`s\") is valid there, but not in reST; part them as reST allows."
    for i, l in enumerate(lines):
        lines[i] = _re_glued_code.sub(lambda m: f'\\ {m.group(1)}' if m.group(1) else f'{m.group(2)}\\ ', l)


def add_docments(app, what, name, obj, options, lines):
    if what not in ('function', 'method', 'class') or not callable(obj): return
    target = obj.__init__ if what == 'class' and inspect.isclass(obj) else obj
    if what == 'class' and target is object.__init__: return
    extra = _docments_lines(target)
    if extra and not any(l.startswith(':param') for l in lines): lines.extend([''] + extra)


def _visit_math(self, node):
    "Math as its LaTeX source in a styled span: no MathJax (a CDN script) is ever needed."
    from docutils import nodes
    self.body.append(self.starttag(node, 'span', '', CLASS='math notranslate nohighlight'))
    self.body.append(self.encode(node.astext()) + '</span>')
    raise nodes.SkipNode


def _visit_displaymath(self, node):
    from docutils import nodes
    self.body.append(self.starttag(node, 'div', CLASS='math notranslate nohighlight'))
    self.body.append('<pre>' + self.encode(node.astext()) + '</pre></div>\n')
    raise nodes.SkipNode


_re_img = re.compile(r'(<a\b[^>]*>\s*)?(<img\b[^>]*?\bsrc="([^"]+)"[^>]*>)')


def link_figures(app, pagename, templatename, context, doctree):
    "Each image of a page not already in a link becomes a link to its own file: a click opens the figure at full size."
    body = context.get('body')
    if not body: return
    def wrap(m):
        if m.group(1): return m.group(0)
        return f'<a class="reference external image-full" href="{m.group(3)}" title="Open the figure at full size">{m.group(2)}</a>'
    context['body'] = _re_img.sub(wrap, body)


def setup(app):
    app.add_html_math_renderer('plain', (_visit_math, None), (_visit_displaymath, None))
    app.connect('html-page-context', link_figures)
    app.connect('autodoc-process-docstring', md_code_spans)
    app.connect('autodoc-process-docstring', add_docments)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
