"""Sphinx configuration for the offline docs site (docs/build.py stages nbdev's processed notebooks and runs Sphinx on them).

Notebooks are rendered from their stored outputs (never executed here), the API page comes from autodoc on the package itself,
and every asset is served from the site: no CDN, no web font, no MathJax.
"""
import sys
from configparser import ConfigParser
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

_cfg = ConfigParser(delimiters=['='])
_cfg.read(ROOT/'settings.ini', encoding='utf-8')
_s = _cfg['DEFAULT']

project = _s['title']
author = _s['author']
copyright = _s['copyright']
release = version = _s['version']

extensions = ['myst_nb', 'sphinx.ext.autodoc', 'sphinx.ext.viewcode', 'sitehooks']
root_doc = 'index'
exclude_patterns = ['_build', '**.ipynb_checkpoints']

# Notebooks: stored outputs only; no widget JS and no math renderer from a CDN.
nb_execution_mode = 'off'
nb_ipywidgets_js = {}
nb_merge_streams = True
nb_output_stderr = 'show'
myst_enable_extensions = ['attrs_block', 'attrs_inline', 'colon_fence', 'deflist', 'html_image']
myst_heading_anchors = 4
myst_heading_slug_func = 'sitehooks.pandoc_slug'  # the anchors Quarto and nbdev's doc links use (`data.html#load_customers`)
suppress_warnings = ['myst.header', 'mystnb.unknown_mime_type', 'misc.highlighting_failure']
html_math_renderer = 'plain'  # sitehooks: math shown as LaTeX source, never MathJax from a CDN

# API reference (api.md, written by build.py): signatures and docstrings from the package; docments added by sitehooks.
autodoc_default_options = {'members': True, 'undoc-members': True, 'member-order': 'bysource'}
autodoc_typehints = 'signature'
autodoc_preserve_defaults = True
add_module_names = False
default_role = 'py:obj'  # `name` in a docstring: code, linked to its entry when it is one

html_theme = 'furo'
html_title = project
html_static_path = ['_static']
html_css_files = ['site.css']
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {'navigation_with_keys': True, 'top_of_page_buttons': []}
nb_render_markdown_format = 'myst'  # a `#| echo: false` cell's Markdown output (tables, links to chapters) renders like the prose
