"""Markdown tables, the environment header and PNG charts for ``benchmarks/results/``."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

from benchmarks.apps import FLOOR, LEFT_OUT, OURS

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent

PACKAGES = (
    "litestar",
    "sse-starlette",
    "fastapi",
    "starlette",
    "uvicorn",
    "httptools",
    "uvloop",
    "anyio",
    "msgspec",
    "pydantic",
    "httpx",
    "httpx-sse",
)


@dataclasses.dataclass
class Row:
    impl: str
    # The headline metric, lower is better; None when the implementation cannot do it.
    value: float | None
    spread: float | None = None
    extra: dict[str, str] = dataclasses.field(default_factory=dict)
    note: str = ""


@dataclasses.dataclass
class Table:
    title: str
    metric: str
    rows: list[Row]
    extra_columns: list[str] = dataclasses.field(default_factory=list)
    digits: int = 2

    def value_of(self, impl: str) -> float | None:
        for row in self.rows:
            if row.impl == impl:
                return row.value
        return None


@dataclasses.dataclass
class Report:
    scenario: str  # file stem under results/
    title: str
    description: str
    quick: bool
    tables: list[Table]
    notes: list[str] = dataclasses.field(default_factory=list)
    environment: dict[str, str] = dataclasses.field(default_factory=dict)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _uname() -> str:
    try:
        out = subprocess.run(["uname", "-a"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    return out.strip() or " ".join(platform.uname())


def _litestar_sse_version() -> str:
    """The working tree is measured (PYTHONPATH), so say which commit and whether it is dirty."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "litestar_sse"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "working tree"
    if not head:
        return "working tree (no commit yet)"
    return f"working tree at {head}" + (" with uncommitted changes" if dirty else "")


def environment(extra: dict[str, str]) -> dict[str, str]:
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": _uname(),
        "CPU": f"{_cpu_model()} ({os.cpu_count()} logical cores)",
        "Python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "litestar_sse": _litestar_sse_version(),
        "packages": ", ".join(versions),
        **extra,
    }


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}x"


def table_markdown(table: Table) -> str:
    floor = table.value_of(FLOOR)
    ours = table.value_of(OURS)
    head = ["implementation", table.metric, "spread", f"x {FLOOR}", f"x {OURS}"]
    head += table.extra_columns
    head.append("note")
    lines = [f"### {table.title}", "", "| " + " | ".join(head) + " |"]
    lines.append(
        "|"
        + "|".join(
            ["---", "---:", "---:", "---:", "---:"] + ["---:"] * len(table.extra_columns) + ["---"]
        )
        + "|"
    )
    for row in table.rows:
        cells = [
            f"**{row.impl}**" if row.impl == OURS else row.impl,
            _fmt(row.value, table.digits),
            "-" if row.spread is None else f"±{row.spread * 50:.0f}%",
            _ratio(row.value, floor),
            _ratio(row.value, ours),
            *(row.extra.get(col, "") for col in table.extra_columns),
            row.note,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(report: Report) -> str:
    lines = [f"# {report.title}", ""]
    mode = "quick (`make bench-quick`)" if report.quick else "full (`make bench`)"
    env = {"mode": mode, **report.environment}
    lines += [f"- **{key}**: {value}" for key, value in env.items()]
    lines += ["", report.description.strip(), ""]
    lines.append(
        f"Ratios divide each median by the median of `{FLOOR}` (the floor) or of `{OURS}`, "
        "measured in the same run: `x raw` 2.00x means twice the floor's cost. Spread is "
        "half the interquartile range of the repetitions, relative to the median."
    )
    lines.append("")
    for table in report.tables:
        lines += [table_markdown(table), ""]
    lines += [f"- {note}" for note in [*report.notes, LEFT_OUT]]
    return "\n".join(lines) + "\n"


def chart(report: Report, path: Path) -> None:
    """One horizontal bar chart per table, the floor in grey and litestar_sse highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tables = [t for t in report.tables if any(r.value is not None for r in t.rows)]
    if not tables:
        return
    heights = [0.5 + 0.45 * sum(r.value is not None for r in t.rows) for t in tables]
    fig, axes = plt.subplots(
        len(tables),
        1,
        figsize=(9, 1.2 + sum(heights)),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for ax, table in zip(axes[:, 0], tables, strict=True):
        rows = [r for r in table.rows if r.value is not None]
        floor = table.value_of(FLOOR)
        names = [r.impl for r in rows][::-1]
        values = [float(r.value or 0.0) for r in rows][::-1]
        colors = [
            "#9e9e9e" if n == FLOOR else "#d1495b" if n.startswith(OURS) else "#4f6d9a"
            for n in names
        ]
        bars = ax.barh(names, values, color=colors)
        for bar, value in zip(bars, values, strict=True):
            label = f" {value:.{table.digits}f}"
            if floor:
                label += f"  ({value / floor:.2f}x raw)"
            ax.text(
                bar.get_width(), bar.get_y() + bar.get_height() / 2, label, va="center", fontsize=8
            )
        ax.set_title(table.title, fontsize=10, loc="left")
        ax.set_xlabel(table.metric, fontsize=9)
        # Peers span two orders of magnitude here: a log axis keeps the fast bars readable.
        positive = [v for v in values if v > 0]
        if positive and max(positive) / min(positive) > 30:
            ax.set_xscale("log")
            ax.set_xlim(min(positive) / 1.5, max(positive) * 8)
        else:
            ax.set_xlim(0, max(values, default=1.0) * 1.45 or 1.0)
        ax.tick_params(labelsize=8)
    fig.suptitle(f"{report.title} ({'quick' if report.quick else 'full'})", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def publish(report: Report) -> None:
    """Print the Markdown and write ``results/<scenario>.md`` and ``.png``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    print(text, flush=True)
    (RESULTS / f"{report.scenario}.md").write_text(text)
    try:
        chart(report, RESULTS / f"{report.scenario}.png")
    except Exception as exc:  # a missing chart must not lose the measured numbers
        print(f"(chart for {report.scenario} failed: {exc})", file=sys.stderr)
