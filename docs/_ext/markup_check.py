"""Fail the build when reStructuredText markup leaks into the rendered page as text.

Some rST mistakes are not errors to docutils, so ``-W`` lets them through: an underline glued
to a directive (``===========.. list-table::``) turns the directive into a paragraph and its
options into a field list, and the page shows ``.. list-table::`` and ``header-rows: 1`` as
text. After each page is resolved, this extension looks for what can only be leaked markup:

* text, outside code, holding a directive's start (``.. name::``);
* a field list whose field is named like a directive option (``header-rows``, ``widths``,
  ``language``, ``caption``, ...): pages and docstrings use field lists for other things.

Each finding is a warning at the page and line, so ``-W`` fails the build.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

DIRECTIVE_TEXT = re.compile(r"(?:^|[\s=~\-^\"'`*+#])(\.\.\s+[A-Za-z][\w-]*::)")
OPTION_NAMES = frozenset(
    {
        "header-rows",
        "stub-columns",
        "widths",
        "width",
        "language",
        "linenos",
        "lines",
        "caption",
        "emphasize-lines",
        "pyobject",
        "start-at",
        "start-after",
        "end-before",
        "end-at",
        "maxdepth",
        "glob",
        "hidden",
        "alt",
        "align",
        "missing",
        "dedent",
    }
)
CODE = (nodes.literal, nodes.literal_block, nodes.raw, nodes.comment, nodes.system_message)


def leaked_markup(doctree: nodes.Node) -> list[tuple[nodes.Node, str]]:
    """Each node of ``doctree`` that shows rST markup as text, with what it shows."""
    found: list[tuple[nodes.Node, str]] = []
    for text in doctree.findall(nodes.Text):
        parent = text.parent
        if parent is None or any(isinstance(node, CODE) for node in _ancestors(parent)):
            continue
        match = DIRECTIVE_TEXT.search(text.astext())
        if match:
            found.append((parent, match.group(1)))
    found.extend(
        (name, f":{name.astext().strip()}:")
        for name in doctree.findall(nodes.field_name)
        if name.astext().strip().lower() in OPTION_NAMES
    )
    return found


def _ancestors(node: nodes.Node) -> list[nodes.Node]:
    chain = []
    current: nodes.Node | None = node
    while current is not None:
        chain.append(current)
        current = current.parent
    return chain


def _check(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    for node, shown in leaked_markup(doctree):
        logger.warning(
            "rST markup rendered as text: %r (a directive or its options did not parse; "
            "look for a missing blank line or an underline glued to it)",
            shown,
            location=node,
        )


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-resolved", _check)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
