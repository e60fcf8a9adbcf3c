"""Terminal and HTML report of a run: portfolio metrics of the last periods, health and segment distributions.

Input is one plain dict (``ReportData`` below) assembled by the pipeline from the metric snapshots, so the
report can be rebuilt from the state store at any time without recomputing. The HTML page is self-contained
(inline SVG, no scripts or external assets) so it can be mailed or attached to a ticket.
"""

from __future__ import annotations

import html
import sys
from typing import Any, Iterable, Mapping, Sequence

from rich import box
from rich.console import Console
from rich.table import Table

# ReportData = {
#   "title": str, "as_of": ISO str, "currency": str,
#   "periods": [{"key", "start", "end", "customers": {"start","end","new","lost","reactivated"},
#                "customer_retention_rate", "customer_churn_rate", "mrr_start", "mrr_end",
#                "movements": {"new","expansion","contraction","churned","reactivation"},
#                "net_revenue_retention", "gross_revenue_retention", "arpa", "nps", "csat", "ces"}],
#   "cohorts": [{"cohort": "2025-01", "size": int, "retention": [float|None, ...]}],
#   "health": {"bands": {label: count}, "changes": {label: +/-count}, "average": float|None},
#   "segments": {"lifecycle": {name: count}, "tags": {name: count}},
#   "sync": {...one-line summary fields...},
# }

MOVEMENT_COLOURS = {
    "new": "#2e7d32",
    "expansion": "#66bb6a",
    "reactivation": "#26a69a",
    "contraction": "#ffa726",
    "churned": "#e53935",
}
BAND_COLOURS = {"red": "#e53935", "yellow": "#fdd835", "green": "#43a047"}


def _pct(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f} %"


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{float(value):,.{digits}f}"


def _signed(value: Any) -> str:
    if value is None:
        return "—"
    text = f"{float(value):+,.0f}"
    return "0" if text in ("+0", "-0") else text


def period_rows(data: Mapping[str, Any]) -> list[list[str]]:
    """One row per period: the figures a retention review starts from."""
    rows = []
    for p in data.get("periods", []):
        c = p.get("customers", {})
        rows.append([
            str(p.get("key")),
            f"{c.get('start', '—')}→{c.get('end', '—')}",
            _pct(p.get("customer_retention_rate")),
            _pct(p.get("customer_churn_rate")),
            _num(p.get("mrr_end")),
            _pct(p.get("net_revenue_retention")),
            _pct(p.get("gross_revenue_retention")),
            _num(p.get("nps"), 1),
        ])
    return rows


PERIOD_HEADERS = ["period", "customers", "retention", "churn", "MRR", "NRR", "GRR", "NPS"]


def movement_rows(data: Mapping[str, Any]) -> list[list[str]]:
    """One row per period: MRR movements, signed (contraction and churn reduce MRR)."""
    rows = []
    for p in data.get("periods", []):
        m = p.get("movements", {})
        signs = {"contraction": -1, "churned": -1}
        values = [signs.get(k, 1) * abs(float(m.get(k) or 0)) for k in MOVEMENT_COLOURS]
        rows.append([str(p.get("key")), *(_signed(v) for v in values), _signed(sum(values))])
    return rows


MOVEMENT_HEADERS = ["period", *MOVEMENT_COLOURS, "net"]


def _table(title: str, headers: Sequence[str], rows: Iterable[Sequence[str]], *, plain: bool = False) -> Table:
    # plain (no box) where the output is not a terminal: a log keeps every character, a box only adds noise
    table = Table(title=title, title_justify="left", box=None if plain else box.HEAVY_HEAD, pad_edge=not plain)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def print_report(data: Mapping[str, Any], console: Console | None = None) -> None:
    """Print the report as terminal tables; piped or redirected (a cron log), plain tables never cut to a width."""
    if console is None:
        console = Console() if sys.stdout.isatty() else Console(width=10_000, no_color=True, soft_wrap=True)
    plain = not console.is_terminal
    heading = f"{data.get('title', 'Retention')} — as of {str(data.get('as_of', ''))[:16]} ({data.get('currency', '')})"
    console.print(_table(heading, PERIOD_HEADERS, period_rows(data), plain=plain))
    console.print(_table("MRR movements", MOVEMENT_HEADERS, movement_rows(data), plain=plain))
    health = data.get("health") or {}
    if health.get("bands"):
        changes = health.get("changes") or {}
        parts = [f"{band} {count}" + (f" ({_signed(changes[band])})" if changes.get(band) else "")
                 for band, count in health["bands"].items()]
        average = f"; average {_num(health.get('average'), 1)}" if health.get("average") is not None else ""
        console.print("Health: " + ", ".join(parts) + average)
    segments = data.get("segments") or {}
    for name in ("lifecycle", "tags"):
        counts = {k: v for k, v in (segments.get(name) or {}).items() if v}
        if counts:
            console.print(f"{name.capitalize()}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))))


# ---------------------------------------------------------------- HTML


def _svg_bars(groups: Sequence[tuple[str, Mapping[str, float]]], colours: Mapping[str, str], height: int = 220) -> str:
    """Diverging stacked bars: positive movements above the axis, negative below (MRR movements)."""
    if not groups:
        return "<p>No periods.</p>"
    width = max(360, 70 * len(groups) + 60)
    top = max((sum(v for v in g.values() if v > 0) for _, g in groups), default=0) or 1
    bottom = max((sum(-v for v in g.values() if v < 0) for _, g in groups), default=0)
    scale = (height - 40) / (top + bottom or 1)
    axis = 20 + top * scale
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">',
             f'<line x1="40" x2="{width - 10}" y1="{axis:.1f}" y2="{axis:.1f}" stroke="#555"/>']
    for i, (label, values) in enumerate(groups):
        x = 50 + i * 70
        up, down = axis, axis
        for key, colour in colours.items():
            value = float(values.get(key) or 0)
            if value > 0:
                h = value * scale
                up -= h
                parts.append(f'<rect x="{x}" y="{up:.1f}" width="40" height="{h:.1f}" fill="{colour}"><title>{html.escape(key)} {value:,.0f}</title></rect>')
            elif value < 0:
                h = -value * scale
                parts.append(f'<rect x="{x}" y="{down:.1f}" width="40" height="{h:.1f}" fill="{colour}"><title>{html.escape(key)} {value:,.0f}</title></rect>')
                down += h
        parts.append(f'<text x="{x + 20}" y="{height - 4}" font-size="10" text-anchor="middle">{html.escape(label)}</text>')
    parts.append("</svg>")
    legend = " ".join(f'<span style="color:{c}">■</span> {html.escape(k)}' for k, c in colours.items())
    return "".join(parts) + f"<p class=legend>{legend}</p>"


def _svg_hbars(counts: Mapping[str, int], colours: Mapping[str, str] | None = None) -> str:
    if not counts:
        return "<p>No data.</p>"
    biggest = max(counts.values()) or 1
    height = 24 * len(counts) + 10
    parts = [f'<svg viewBox="0 0 520 {height}" width="520" height="{height}" role="img">']
    for i, (label, count) in enumerate(counts.items()):
        y = 5 + i * 24
        w = 360 * count / biggest
        colour = (colours or {}).get(label, "#5c6bc0")
        parts.append(f'<text x="110" y="{y + 14}" font-size="12" text-anchor="end">{html.escape(str(label))}</text>')
        parts.append(f'<rect x="118" y="{y}" width="{w:.1f}" height="18" fill="{colour}"/>')
        parts.append(f'<text x="{122 + w:.1f}" y="{y + 14}" font-size="12">{count}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _svg_line(points: Sequence[tuple[str, float | None]], low: float, high: float) -> str:
    known = [(i, v) for i, (_, v) in enumerate(points) if v is not None]
    if not known:
        return "<p>No survey answers.</p>"
    width, height = max(360, 60 * len(points) + 60), 200
    step = (width - 80) / max(1, len(points) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return 50 + i * step, 20 + (high - v) / (high - low) * (height - 50)

    path = " ".join(f"{'M' if n == 0 else 'L'}{xy(i, v)[0]:.1f},{xy(i, v)[1]:.1f}" for n, (i, v) in enumerate(known))
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">',
             f'<line x1="45" x2="{width - 20}" y1="{xy(0, 0)[1]:.1f}" y2="{xy(0, 0)[1]:.1f}" stroke="#bbb" stroke-dasharray="4"/>',
             f'<path d="{path}" fill="none" stroke="#3949ab" stroke-width="2"/>']
    for i, v in known:
        x, y = xy(i, v)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#3949ab"><title>{v:+.1f}</title></circle>')
    for i, (label, _) in enumerate(points):
        parts.append(f'<text x="{xy(i, 0)[0]:.1f}" y="{height - 6}" font-size="10" text-anchor="middle">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _heat(value: float | None) -> str:
    if value is None:
        return "#f5f5f5"
    # 0 → red, 1 → green, through yellow.
    v = max(0.0, min(1.0, float(value)))
    red = int(229 - (229 - 67) * v)
    green = int(57 + (160 - 57) * v)
    return f"rgb({red},{green},71)"


def _cohort_table(cohorts: Iterable[Mapping[str, Any]]) -> str:
    cohorts = list(cohorts)
    if not cohorts:
        return "<p>No cohorts.</p>"
    months = max(len(c.get("retention") or []) for c in cohorts)
    head = "".join(f"<th>M{i}</th>" for i in range(months))
    rows = []
    for c in cohorts:
        cells = "".join(
            f'<td style="background:{_heat(v)}">{"" if v is None else f"{v * 100:.0f}%"}</td>' for v in (c.get("retention") or [])
        )
        rows.append(f"<tr><th>{html.escape(str(c.get('cohort')))}</th><td>{c.get('size', '')}</td>{cells}</tr>")
    return f"<table class=cohort><tr><th>cohort</th><th>size</th>{head}</tr>{''.join(rows)}</table>"


def render_html(data: Mapping[str, Any]) -> str:
    """A self-contained HTML page: tables plus MRR movements, cohort heat map, health distribution, NPS trend."""
    periods = data.get("periods", [])
    movement_groups = []
    for p in periods:
        m = p.get("movements", {})
        movement_groups.append((str(p.get("key")), {
            "new": float(m.get("new") or 0),
            "expansion": float(m.get("expansion") or 0),
            "reactivation": float(m.get("reactivation") or 0),
            "contraction": -abs(float(m.get("contraction") or 0)),
            "churned": -abs(float(m.get("churned") or 0)),
        }))
    table_rows = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in period_rows(data))
    headers = "".join(f"<th>{h}</th>" for h in PERIOD_HEADERS)
    health = data.get("health") or {}
    segments = data.get("segments") or {}
    title = html.escape(str(data.get("title", "Retention report")))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ddd;padding:4px 8px;font-size:13px;text-align:right}}
th{{background:#fafafa}}td:first-child,th:first-child{{text-align:left}}.legend{{font-size:12px}}
table.cohort td{{min-width:38px;text-align:center}}section{{margin-bottom:2em}}
</style></head><body>
<h1>{title}</h1>
<p>As of {html.escape(str(data.get("as_of", "")))} · currency {html.escape(str(data.get("currency", "")))}</p>
<section><h2>Portfolio by period</h2><table><tr>{headers}</tr>{table_rows}</table></section>
<section><h2>MRR movements</h2>{_svg_bars(movement_groups, MOVEMENT_COLOURS)}</section>
<section><h2>Cohort retention (customers, by start month)</h2>{_cohort_table(data.get("cohorts", []))}</section>
<section><h2>Health distribution</h2>{_svg_hbars(health.get("bands") or {}, BAND_COLOURS)}</section>
<section><h2>NPS trend</h2>{_svg_line([(str(p.get("key")), p.get("nps")) for p in periods], -100, 100)}</section>
<section><h2>Lifecycle</h2>{_svg_hbars(segments.get("lifecycle") or {})}</section>
<section><h2>Tags</h2>{_svg_hbars(segments.get("tags") or {})}</section>
</body></html>
"""
