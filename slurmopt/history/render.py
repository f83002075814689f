"""Render a :class:`~slurmopt.history.reports.Report` as a table, CSV, JSON or HTML.

HTML is one self-contained file: inline CSS, charts drawn by matplotlib (Agg
backend, no display) and embedded as base64 PNG, no script and no network
reference, so it reads offline and mails as one attachment.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import time
from typing import Any

from slurmopt.history.reports import Chart, Report, Section

FORMATS = ("table", "csv", "json", "html")


def render(report: Report, fmt: str) -> str:
    """The report in ``fmt`` (one of :data:`FORMATS`).

    Raises:
        ValueError: unknown format.
    """
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=1, default=str) + "\n"
    if fmt == "csv":
        return _csv(report)
    if fmt == "table":
        return _table(report)
    if fmt == "html":
        return _html(report)
    raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")


def _when(t: Any) -> str:
    if t is None or t == "":
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(t)))


def _cell(value: Any, column: str, section: Section) -> str:
    if value is None:
        return ""
    if column in section.time_columns:
        return _when(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


def _table(report: Report) -> str:
    out = [f"{report.title} (generated {_when(report.generated_at)} UTC)"]
    for s in report.sections:
        out += ["", f"== {s.title} =="]
        cells = [[_cell(v, c, s) for v, c in zip(r, s.columns, strict=True)] for r in s.rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(s.columns)]
        out.append("  ".join(c.ljust(w) for c, w in zip(s.columns, widths, strict=True)).rstrip())
        out += [
            "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells
        ]
        if not s.rows:
            out.append("(no data)")
        if s.note:
            out.append(f"note: {s.note}")
    return "\n".join(out) + "\n"


def _csv(report: Report) -> str:
    """One CSV block per section, separated by a blank line, each with a ``# title`` line."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for i, s in enumerate(report.sections):
        if i:
            buf.write("\n")
        buf.write(f"# {s.title}\n")
        w.writerow(s.columns)
        for r in s.rows:
            w.writerow(["" if v is None else v for v in r])
    return buf.getvalue()


_CSS = """
body{font-family:sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}
th,td{border:1px solid #bbb;padding:.2em .6em;text-align:left;font-size:90%}
th{background:#eee}
p.note{color:#555;font-size:90%}
img.chart{max-width:100%;border:1px solid #ddd}
"""


def _html(report: Report) -> str:
    h = html.escape
    f = report.filters
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{h(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{h(report.title)}</h1>",
        f"<p>Generated {h(_when(report.generated_at))} UTC. Window: "
        f"{h(_when(f.since) or 'beginning')} to {h(_when(f.until) or 'now')}"
        + (f"; user {h(f.user)}" if f.user else "")
        + (f"; partition {h(f.partition)}" if f.partition else "")
        + ".</p>",
    ]
    for s in report.sections:
        parts.append(f"<h2>{h(s.title)}</h2>")
        if s.chart is not None and _has_data(s.chart):
            png = chart_png(s.chart)
            alt = h(s.chart.title)
            parts.append(f'<img class="chart" alt="{alt}" src="data:image/png;base64,{png}">')
        parts.append("<table><thead><tr>")
        parts += [f"<th>{h(c)}</th>" for c in s.columns]
        parts.append("</tr></thead><tbody>")
        for r in s.rows:
            cells = "".join(
                f"<td>{h(_cell(v, c, s))}</td>" for v, c in zip(r, s.columns, strict=True)
            )
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</tbody></table>")
        if not s.rows:
            parts.append("<p class=note>(no data)</p>")
        if s.note:
            parts.append(f'<p class="note">{h(s.note)}</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _has_data(chart: Chart) -> bool:
    return any(bool(v) for v in chart.series.values())


def chart_png(chart: Chart) -> str:
    """Draw ``chart`` with matplotlib and return the PNG as base64 text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=90)
    try:
        names = list(chart.series)
        if chart.kind == "line":
            import numpy as np

            for name in names:
                xs, ys = chart.series[name]
                ax.plot(np.array(xs, dtype="datetime64[s]"), ys, label=name)
            ax.legend(loc="best", fontsize="small")
            fig.autofmt_xdate()
        elif chart.kind == "bar":
            ax.bar(range(len(names)), [float(chart.series[n]) for n in names])
            ax.set_xticks(range(len(names)), [str(n) for n in names], rotation=30, ha="right")
        elif chart.kind == "box":
            ax.boxplot([chart.series[n] for n in names])
            ax.set_xticks(range(1, len(names) + 1), names)
        else:
            for name in names:
                ax.hist(chart.series[name], bins=30, alpha=0.7, label=name)
        ax.set_title(chart.title)
        ax.set_xlabel(chart.xlabel)
        ax.set_ylabel(chart.ylabel)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")
