"""No hand-copied benchmark figure: what the pages say about speed comes from benchmarks/results.

The rule, applied to README.md and to every page in :data:`PAGES`:

1. A *performance statement* is a paragraph that contains one of :data:`MEASURES`
   ("deliveries", "events/s", "events per second", "per second", "per delivery",
   "ms per event", "µs per event", "latency", "p50", "p99", "throughput", "x raw", and
   "raw" after a multiplication sign). Paragraphs are read from the page source (blocks
   between blank lines; a Markdown table row is one of its own), with ``:bench:`` roles and
   inline code left out.
2. A *figure* in such a paragraph is a number (``816,226``, ``0.3``, ``1.1 million``) followed
   by one of :data:`UNITS`: deliveries/s, deliveries per second, deliveries, events/s, events
   per second, µs, us, ms, s, seconds, MiB, %, and x (or a multiplication sign) right after a
   ratio (``2.89x``). A number written with a thousands separator (``340,000``) or in
   millions (``1.1 million``) is a figure whatever follows it.
3. Each figure must be written with the ``:bench:`` role (docs/_ext/bench_results.py), which
   reads a cell of a report in benchmarks/results when the docs are built, *or* be a scenario
   parameter that a report states in its prose (``5,000 subscribers``, ``100 events/s``):
   a (number, unit) pair found in a report's headings, paragraphs or bullets, not in its
   tables (for a bare ``340,000``: that number stated there, in any unit). A measured value
   typed by hand fails, even if it equals today's report, because the next ``make bench``
   would make it stale.

Figures measured by tests rather than benchmarks (tests/soak: the reliability page, the memory
table of the broadcast page) are not performance statements in this sense unless they use the
words above. The README's speed section links to the reports themselves, which a code host
renders as tables.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(DOCS / "_ext"))

from bench_results import BenchError, bench_figure  # noqa: E402

PAGES = [
    ROOT / "README.md",
    DOCS / "index.rst",
    DOCS / "performance.rst",
    DOCS / "broadcast.rst",
    DOCS / "getting-started.rst",
    DOCS / "llm-streaming.rst",
    *sorted((DOCS / "tasks").glob("*.rst")),
]
"""The pages that speak about speed. A page that uses ``:bench:`` is added by itself."""

MEASURES = (
    "deliveries",
    "events/s",
    "events per second",
    "per second",
    "per delivery",
    "ms per event",
    "µs per event",
    "latency",
    "p50",
    "p99",
    "throughput",
    "x raw",
    "\N{MULTIPLICATION SIGN} raw",
)
UNITS = {
    "deliveries/s": "deliveries/s",
    "deliveries per second": "deliveries/s",
    "deliveries": "deliveries/s",
    "events/s": "events/s",
    "events per second": "events/s",
    "µs": "µs",
    "us": "µs",
    "ms": "ms",
    "seconds": "s",
    "s": "s",
    "MiB": "MiB",
    "%": "%",
}
_UNIT = "|".join(re.escape(unit) for unit in sorted(UNITS, key=len, reverse=True))
_FIGURE = re.compile(
    r"(?<![\w.,-])(\d[\d,]*(?:\.\d+)?)(\s+million)?"
    r"(?:(?P<ratio>[x\N{MULTIPLICATION SIGN}])(?!\w)|\s*(?P<unit>" + _UNIT + r")(?![\w/]))"
)
_GROUPED = re.compile(r"(?<![\w.,-])(?:\d{1,3}(?:,\d{3})+(?![\d,]*\.?\d)|\d+(?:\.\d+)?\s+million)")
_ROLE = re.compile(r":bench:`[^`]*`")
_CODE = re.compile(r"``[^`]*``|`[^`]*`")


def figures(text: str) -> list[tuple[float, str, str]]:
    """The (value, unit, as written) figures of a text, in order; roles and code left out."""
    text = _CODE.sub(" ", _ROLE.sub(" ", text))
    found: list[tuple[int, float, str, str]] = []
    for match in _FIGURE.finditer(text):
        value = float(match.group(1).replace(",", ""))
        if match.group(2):
            value *= 1_000_000
        unit = "x" if match.group("ratio") else UNITS[match.group("unit")]
        found.append((match.start(), value, unit, match.group(0).strip()))
    taken = {match.start(1) for match in _FIGURE.finditer(text)}
    for match in _GROUPED.finditer(text):
        if match.start() not in taken:
            number, _, million = match.group(0).partition(" ")
            value = float(number.replace(",", "")) * (1_000_000 if million else 1)
            found.append((match.start(), value, "", match.group(0)))
    return [(value, unit, written) for _, value, unit, written in sorted(found)]


def paragraphs(text: str) -> list[str]:
    """Blocks between blank lines; a table row is a block of its own."""
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n|\n\s*(?=\|)", text)]


def performance_statements(text: str) -> list[str]:
    return [block for block in paragraphs(text) if any(word in block.lower() for word in MEASURES)]


def stated_parameters() -> set[tuple[float, str]]:
    """The (number, unit) pairs the reports state outside their tables."""
    pairs = set()
    for report in RESULTS.glob("*.md"):
        prose = "\n".join(
            line
            for line in report.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("|")
        )
        found = figures(prose)
        pairs.update((value, unit) for value, unit, _ in found)
        pairs.update((value, "") for value, _, _ in found)
    return pairs


def hand_copied(text: str, allowed: set[tuple[float, str]]) -> list[str]:
    return [
        f"{written!r} in: {statement[:160]}"
        for statement in performance_statements(text)
        for value, unit, written in figures(statement)
        if (value, unit) not in allowed
    ]


def pages() -> list[Path]:
    using_role = [path for path in DOCS.rglob("*.rst") if ":bench:`" in path.read_text()]
    return sorted({*PAGES, *using_role})


@pytest.mark.parametrize("page", pages(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_hand_copied_figure(page: Path) -> None:
    assert hand_copied(page.read_text(encoding="utf-8"), stated_parameters()) == []


def test_every_bench_reference_names_a_figure_of_a_report() -> None:
    references = [
        (path, reference)
        for path in pages()
        for reference in re.findall(r":bench:`([^`]*)`", path.read_text(encoding="utf-8"))
    ]
    assert references
    broken = []
    for path, reference in references:
        try:
            bench_figure(reference, RESULTS)
        except BenchError as error:
            broken.append(f"{path.name}: {error}")
    assert broken == []


def test_the_rule_catches_what_it_is_for() -> None:
    """The figures issue 21 found stale are caught; roles and scenario parameters pass."""
    allowed = stated_parameters()
    stale = (
        "Measured with 5,000 subscribers: 760,000 deliveries per second in process "
        "(1.1 million with gc.freeze()), 340,000 end to end. The p99 latency was 182 ms. "
        "Freezing only at startup gave 171 ms."
    )
    assert [line.split(" in:")[0] for line in hand_copied(stale, allowed)] == [
        "'760,000 deliveries per second'",
        "'1.1 million'",
        "'340,000'",
        "'182 ms'",
        "'171 ms'",
    ]
    quoted = (
        "A steady 100 events/s to 5,000 subscribers: "
        ":bench:`fanout | In process, steady | litestar_sse | p99 latency ms` ms p99 latency."
    )
    assert hand_copied(quoted, allowed) == []
    assert figures("1.1 million deliveries per second, 2.89x raw") == [
        (1_100_000.0, "deliveries/s", "1.1 million deliveries per second"),
        (2.89, "x", "2.89x"),
    ]


def test_a_bench_reference_that_matches_nothing_fails_the_build(tmp_path: Path) -> None:
    """A report whose layout changed cannot leave a stale or empty figure behind."""
    sphinx_build = pytest.importorskip("sphinx.cmd.build")
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "fanout.md").write_text((RESULTS / "fanout.md").read_text(encoding="utf-8"))
    source = tmp_path / "docs"
    source.mkdir()
    (source / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOCS / '_ext')!r})\nextensions = ['bench_results']\n"
    )
    good = ":bench:`fanout | In process, capacity | litestar_sse | deliveries/s`"
    for reference, expected_status in (
        (good, 0),
        (good.replace("deliveries/s", "events/s"), 1),
        (good.replace("litestar_sse |", "nobody |"), 1),
    ):
        (source / "index.rst").write_text(f"Page\n====\n\n{reference} deliveries per second.\n")
        out = tmp_path / "html"
        options = ["-W", "--keep-going", "-q", "-b", "html", "-E"]
        assert sphinx_build.build_main([*options, str(source), str(out)]) == expected_status
        if expected_status == 0:
            html = (out / "index.html").read_text(encoding="utf-8")
            assert bench_figure(good.split("`")[1], RESULTS) in html
