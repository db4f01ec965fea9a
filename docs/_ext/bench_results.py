"""``.. benchmark-results::`` renders the Markdown reports written by ``make bench``.

The reports (``benchmarks/results/*.md``) come from a program, not from a writer, and change on
every run. They are turned into docutils nodes directly rather than into reStructuredText, so
nothing in them (an underscore, an asterisk, a pipe) can ever break the ``-W`` docs build. Only
the small subset of Markdown the report generator writes is understood: ``#`` headings,
paragraphs, ``-`` bullets, pipe tables, inline code and bold. Anything else is shown as text.

When there are no reports yet the directive renders a short note instead, so the docs build on
a fresh checkout.

``:bench:`report | table | row | column``` quotes one figure of a report in running text, read
when the docs are built, so that no page holds a hand-copied figure that a new ``make bench``
would make stale. ``report`` is the file's stem (``fanout``), ``table`` the start of the
``###`` heading above the table (``In process, capacity``), ``row`` the first cell of the row
(``litestar_sse``; bold marks ignored), ``column`` the column's header (``deliveries/s``). The
role renders the first number of that cell as the file writes it (``816,226``); ``column#2``
takes its second number (``182`` of ``8 (182)``). A reference that matches nothing is an error,
which fails the ``-W`` build: a report whose layout changed cannot leave a stale number behind.
tests/docs/test_figures.py holds the rule that says which figures must be quoted this way.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util.docutils import SphinxDirective

_INLINE = re.compile(r"(`[^`]+`|\*\*[^*]+\*\*)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_SCENARIO_NUMBER = re.compile(r"^#\s+Scenario\s+(\d+)\b")
_ALIGN_ROW = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _inline(text: str) -> list[nodes.Node]:
    out: list[nodes.Node] = []
    for piece in _INLINE.split(text):
        if not piece:
            continue
        if piece.startswith("`") and piece.endswith("`") and len(piece) > 1:
            out.append(nodes.literal(piece[1:-1], piece[1:-1]))
        elif piece.startswith("**") and piece.endswith("**") and len(piece) > 3:
            out.append(nodes.strong(piece[2:-2], piece[2:-2]))
        else:
            out.append(nodes.Text(piece))
    return out


def _paragraph(text: str) -> nodes.paragraph:
    para = nodes.paragraph()
    para.extend(_inline(text))
    return para


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _CELL_SPLIT.split(line)]


def _table(lines: list[str]) -> nodes.table:
    rows = [_cells(line) for line in lines if not _ALIGN_ROW.match(line)]
    width = max(len(row) for row in rows)
    table = nodes.table(classes=["benchmark-table"])
    group = nodes.tgroup(cols=width)
    table += group
    group.extend(nodes.colspec(colwidth=1) for _ in range(width))

    def row_node(cells: list[str]) -> nodes.row:
        row = nodes.row()
        for index in range(width):
            entry = nodes.entry()
            text = cells[index] if index < len(cells) else ""
            if text:
                entry += _paragraph(text)
            row += entry
        return row

    head = nodes.thead()
    head += row_node(rows[0])
    body = nodes.tbody()
    body.extend(row_node(cells) for cells in rows[1:])
    group += head
    if len(rows) > 1:
        group += body
    return table


def markdown_to_nodes(text: str) -> tuple[str | None, list[nodes.Node]]:
    """Return the report's first ``#`` heading (its title) and the nodes for the rest."""
    title: str | None = None
    out: list[nodes.Node] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if not stripped:
            index += 1
            continue
        heading = _HEADING.match(stripped)
        if heading:
            if title is None and len(heading.group(1)) == 1:
                title = heading.group(2).strip()
            else:
                rubric = nodes.rubric()
                rubric.extend(_inline(heading.group(2).strip()))
                out.append(rubric)
            index += 1
        elif stripped.startswith("|"):
            block = []
            while index < len(lines) and lines[index].strip().startswith("|"):
                block.append(lines[index])
                index += 1
            out.append(_table(block))
        elif stripped.startswith(("- ", "* ")):
            bullets = nodes.bullet_list()
            while index < len(lines) and lines[index].strip().startswith(("- ", "* ")):
                item_text = lines[index].strip()[2:]
                index += 1
                # Indented continuation lines belong to the bullet above them.
                while index < len(lines) and lines[index].startswith("  ") and lines[index].strip():
                    item_text += " " + lines[index].strip()
                    index += 1
                item = nodes.list_item()
                item += _paragraph(item_text)
                bullets += item
            out.append(bullets)
        else:
            paragraph = [stripped]
            index += 1
            while index < len(lines):
                following = lines[index].strip()
                if (
                    not following
                    or _HEADING.match(following)
                    or following.startswith(("|", "- ", "* "))
                ):
                    break
                paragraph.append(following)
                index += 1
            out.append(_paragraph(" ".join(paragraph)))
    return title, out


_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


class BenchError(LookupError):
    """A ``:bench:`` reference that no report holds."""


def report_tables(text: str) -> dict[str, list[list[str]]]:
    """The pipe tables of a report, by the ``###`` heading above each (header row first)."""
    tables: dict[str, list[list[str]]] = {}
    heading = ""
    for line in text.splitlines():
        stripped = line.strip()
        match = _HEADING.match(stripped)
        if match:
            heading = match.group(2).strip()
        elif stripped.startswith("|") and not _ALIGN_ROW.match(stripped):
            tables.setdefault(heading, []).append(_cells(stripped))
    return tables


def bench_figure(reference: str, results: Path = RESULTS) -> str:
    """The figure ``report | table | row | column[#k]`` names, as the report writes it."""
    parts = [part.strip() for part in reference.split("|")]
    if len(parts) != 4:
        raise BenchError(f"{reference!r}: write 'report | table | row | column'")
    report, table_name, row_name, column = parts
    column, _, nth = column.partition("#")
    index = int(nth) - 1 if nth else 0
    path = results / f"{report}.md"
    if not path.is_file():
        raise BenchError(f"{reference!r}: no report {path.name} in {results}")
    tables = report_tables(path.read_text(encoding="utf-8"))
    found = [rows for name, rows in tables.items() if name.lower().startswith(table_name.lower())]
    if len(found) != 1:
        raise BenchError(f"{reference!r}: {len(found)} tables of {path.name} start with that")
    header, *rows = found[0]
    if column not in header:
        raise BenchError(f"{reference!r}: no column {column!r} (columns: {header})")
    for row in rows:
        if row[0].strip("*") == row_name:
            numbers = _NUMBER.findall(row[header.index(column)])
            if index >= len(numbers):
                raise BenchError(f"{reference!r}: the cell has {len(numbers)} numbers")
            return numbers[index]
    raise BenchError(f"{reference!r}: no row {row_name!r}")


def bench_role(
    name: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: Any,
    options: dict[str, Any] | None = None,
    content: list[str] | None = None,
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    """``:bench:`report | table | row | column``` : one figure of a report, read at build."""
    env = inliner.document.settings.env
    results = Path(env.srcdir).parent / "benchmarks" / "results"
    try:
        figure = bench_figure(text, results)
    except BenchError as error:
        message = inliner.reporter.error(str(error), line=lineno)
        return [inliner.problematic(rawtext, rawtext, message)], [message]
    env.note_dependency(str(results / f"{text.split('|', 1)[0].strip()}.md"))
    return [nodes.inline(rawtext, figure, classes=["bench-figure"])], []


class BenchmarkResults(SphinxDirective):
    """Render every ``*.md`` report of a results folder, each as a section with its chart."""

    has_content = False
    optional_arguments = 1
    option_spec = {"missing": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        folder_arg = self.arguments[0] if self.arguments else "../benchmarks/results"
        folder = (Path(self.env.srcdir) / folder_arg).resolve()
        docname = self.env.docname
        _docs_using(self.env).add(docname)
        reports = sorted(folder.glob("*.md"), key=_report_order) if folder.is_dir() else []
        if not reports:
            note = nodes.note()
            note += _paragraph(
                self.options.get(
                    "missing", "No benchmark results yet: run `make bench`, then rebuild the docs."
                )
            )
            return [note]
        out: list[nodes.Node] = []
        for report in reports:
            self.env.note_dependency(str(report))
            title, body = markdown_to_nodes(report.read_text(encoding="utf-8"))
            section = nodes.section()
            section_title = title or report.stem.replace("_", " ")
            section += nodes.title(section_title, section_title)
            section["names"].append(nodes.fully_normalize_name(section_title))
            section["ids"].append(f"bench-{nodes.make_id(report.stem)}")
            self.state.document.note_implicit_target(section, section)
            section.extend(body)
            chart = report.with_suffix(".png")
            if chart.is_file():
                self.env.note_dependency(str(chart))
                doc_dir = Path(self.env.doc2path(docname)).resolve().parent
                uri = Path(os.path.relpath(chart, doc_dir)).as_posix()
                section += nodes.image(uri=uri, alt=f"Chart: {section_title}")
            out.append(section)
        return out


def _report_order(path: Path) -> tuple[float, str]:
    """Reports titled "# Scenario N: ..." in the order of N, then the others by file name."""
    try:
        first_line = path.read_text(encoding="utf-8").split("\n", 1)[0]
    except OSError:
        first_line = ""
    number = _SCENARIO_NUMBER.match(first_line)
    return (float(number.group(1)) if number else float("inf"), path.name)


def _docs_using(env: BuildEnvironment) -> set[str]:
    if not hasattr(env, "bench_results_docs"):
        env.bench_results_docs = set()  # type: ignore[attr-defined]
    return env.bench_results_docs  # type: ignore[attr-defined,no-any-return]


def _always_reread(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    # A new report file is not a dependency Sphinx knows about, so reread these pages each time.
    return sorted(_docs_using(env) - removed)


def _purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    _docs_using(env).discard(docname)


def _merge(app: Sphinx, env: BuildEnvironment, docnames: set[str], other: BuildEnvironment) -> None:
    _docs_using(env).update(_docs_using(other))


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("benchmark-results", BenchmarkResults)
    app.add_role("bench", bench_role)
    app.connect("env-get-outdated", _always_reread)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
