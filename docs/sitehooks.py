"""Small Sphinx hooks for the offline docs site: Quarto-compatible heading anchors, and nbdev docments in autodoc."""
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


def setup(app):
    app.add_html_math_renderer('plain', (_visit_math, None), (_visit_displaymath, None))
    app.connect('autodoc-process-docstring', add_docments)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
