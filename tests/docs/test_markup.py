"""rST mistakes that ``-W`` lets through fail the docs build (docs/_ext/markup_check.py).

Issue 21: an underline glued to ``.. list-table::`` made the sse-starlette guide render its
table as text (``.. list-table::``, ``header-rows: 1``), and ``make docs -W`` passed. Each case
here builds a one-page Sphinx project with the docs' own extension, as ``make docs`` does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

sphinx_build = pytest.importorskip("sphinx.cmd.build")

EXT = Path(__file__).resolve().parents[2] / "docs" / "_ext"

TABLE = """\
.. list-table::
   :header-rows: 1
   :widths: 40 60

   * - sse-starlette
     - litestar-sse
   * - ``EventSourceResponse``
     - ``ServerSentEvent``
"""


def build(tmp_path: Path, body: str) -> tuple[int, str]:
    source = tmp_path / "src"
    source.mkdir()
    (source / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(EXT)!r})\nextensions = ['markup_check']\n"
    )
    (source / "index.rst").write_text(f"Page\n====\n\nThe names:\n\n{body}\nEnd.\n")
    warnings = tmp_path / "warnings.txt"
    options = ["-W", "--keep-going", "-q", "-w", str(warnings), "-b", "html", "-E"]
    status = sphinx_build.build_main([*options, str(source), str(tmp_path / "html")])
    return status, warnings.read_text()


def test_a_directive_glued_to_an_underline_fails_the_build(tmp_path: Path) -> None:
    status, warnings = build(tmp_path, "===========" + TABLE)
    assert status != 0
    assert "rST markup rendered as text: '.. list-table::'" in warnings
    assert "':header-rows:'" in warnings


def test_a_directive_in_a_paragraph_fails_the_build(tmp_path: Path) -> None:
    status, warnings = build(tmp_path, "See this.\n.. code-block:: python\n\n   x = 1\n")
    assert status != 0
    assert "'.. code-block::'" in warnings


def test_the_same_table_written_right_builds(tmp_path: Path) -> None:
    status, warnings = build(tmp_path, TABLE + "\nA literal ``.. list-table::`` in code is fine.\n")
    assert (status, warnings) == (0, "")
    html = (tmp_path / "html" / "index.html").read_text()
    assert "header-rows" not in html
    assert "<table" in html
