"""Sphinx configuration. The build must work offline: no intersphinx, no remote assets."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))

project = "litestar-sse"
author = "litestar-sse contributors"
copyright = "2026, litestar-sse contributors"
try:
    release = version("litestar-sse")
except PackageNotFoundError:  # building from a checkout that is not installed
    release = "0.0.0"
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "bench_results",
    "markup_check",
]

exclude_patterns = ["_build", "_ext", "examples"]
templates_path: list[str] = []

# -- autodoc / napoleon ---------------------------------------------------------------------
autodoc_member_order = "bysource"
# The class docstring says what it is, __init__'s (when it has one) how to build it.
autoclass_content = "both"
# Otherwise a subclass without its own __init__ docstring shows Litestar's.
autodoc_inherit_docstrings = False
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_preserve_defaults = True

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# -- HTML -----------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"litestar-sse {release}"
pygments_style = "friendly"
pygments_dark_style = "monokai"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
