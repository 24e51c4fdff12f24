"""The comparison as a plain-text summary and as a self-contained HTML report.

The HTML has no scripts and loads nothing: charts are inline SVG drawn here, so the
file can be mailed, archived and opened offline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from baton_analytics.compare import Comparison, Side
from baton_analytics.stats import histogram, percentiles

CURRENT_COLOUR = "#8a94a6"
CANDIDATE_COLOUR = "#2f6fde"
HOUR_EDGES = (0, 1, 4, 24, 72, 168, 720, float("inf"))
HOUR_LABELS = ("<1h", "1-4h", "4-24h", "1-3d", "3-7d", "7-30d", ">30d")
CHANGES_LISTED = 500
OUTCOME_LABELS = {
    "accepted": "accepted by reps",
    "rejected": "rejected by reps",
    "won": "won deals",
    "lost": "lost deals",
}


def _fmt_hours(values: list[float]) -> str:
    p = percentiles(values, (50, 90))
    if not p:
        return "none"
    return f"p50 {p[50]:.1f} h, p90 {p[90]:.1f} h (n={len(values)})"


def _delta(a: int, b: int) -> str:
    d = b - a
    return f"{d:+,}" + (f" ({100 * d / a:+.1f}%)" if a else "")


def render_text(c: Comparison) -> str:
    a, b = c.current, c.candidate
    lines = [
        f"Compared {c.leads:,} leads: current {a.rules_version} vs candidate {b.rules_version}",
        f"  MQL leads      {a.mql_leads:>8,} → {b.mql_leads:>8,}   "
        f"{_delta(a.mql_leads, b.mql_leads)}",
        f"  SQL leads      {a.sql_leads:>8,} → {b.sql_leads:>8,}   "
        f"{_delta(a.sql_leads, b.sql_leads)}",
        f"  time to MQL    {_fmt_hours(a.hours_to_mql)}  →  {_fmt_hours(b.hours_to_mql)}",
        f"  time to SQL    {_fmt_hours(a.hours_to_sql)}  →  {_fmt_hours(b.hours_to_sql)}",
        f"  leads whose stage or timing changes: {len(c.changes):,}",
    ]
    for kind, n in c.change_kinds().items():
        lines.append(f"    {n:>7,}  {kind}")
    for row in c.outcomes:
        lines.append(
            f"  {_label(row.outcome)}: {row.leads:,} leads; SQL under current "
            f"{row.sql_current:,}, under candidate {row.sql_candidate:,}; median score "
            f"{_num(row.median_score_current)} → {_num(row.median_score_candidate)}"
        )
    return "\n".join(lines)


def _bars(title: str, labels: list[str], current: list[float], candidate: list[float]) -> str:
    """Grouped bar chart, current (grey) beside candidate (blue)."""
    width, height, pad = 640, 240, 36
    top = max([*current, *candidate, 1])
    group_w = (width - 2 * pad) / max(1, len(labels))
    bar_w = group_w * 0.35
    parts = [
        f'<svg viewBox="0 0 {width} {height + 40}" width="{width}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="{pad}" y="16" class="t">{escape(title)}</text>',
        f'<line x1="{pad}" y1="{height}" x2="{width - pad}" y2="{height}" stroke="#ccc"/>',
        f'<rect x="{width - 190}" y="6" width="10" height="10" fill="{CURRENT_COLOUR}"/>',
        f'<text x="{width - 176}" y="15" class="k">current</text>',
        f'<rect x="{width - 110}" y="6" width="10" height="10" fill="{CANDIDATE_COLOUR}"/>',
        f'<text x="{width - 96}" y="15" class="k">candidate</text>',
    ]
    for i, label in enumerate(labels):
        x0 = pad + i * group_w + group_w * 0.12
        for j, (value, colour) in enumerate(
            ((current[i], CURRENT_COLOUR), (candidate[i], CANDIDATE_COLOUR))
        ):
            h = (height - 40) * value / top
            x = x0 + j * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{bar_w - 2:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{value:,.0f}</title></rect>'
            )
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - h - 4:.1f}" class="v">'
                f"{value:,.0f}</text>"
            )
        parts.append(
            f'<text x="{pad + i * group_w + group_w / 2:.1f}" y="{height + 16}" class="l">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _distribution(title: str, a: list[float], b: list[float]) -> str:
    return _bars(
        title,
        list(HOUR_LABELS),
        [float(x) for x in histogram(a, HOUR_EDGES)],
        [float(x) for x in histogram(b, HOUR_EDGES)],
    )


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _side_row(name: str, s: Side) -> str:
    return (
        f"<tr><th>{name}</th><td><code>{escape(s.rules_version)}</code></td>"
        f"<td>{s.mql_leads:,}</td><td>{s.sql_leads:,}</td>"
        f"<td>{escape(_fmt_hours(s.hours_to_mql))}</td>"
        f"<td>{escape(_fmt_hours(s.hours_to_sql))}</td></tr>"
    )


def render_html(c: Comparison, span: str) -> str:
    a, b = c.current, c.candidate
    charts = [
        _bars(
            "Leads reaching each stage",
            ["MQL", "SQL"],
            [a.mql_leads, a.sql_leads],
            [b.mql_leads, b.sql_leads],
        ),
        _distribution("Time from first event to MQL (leads)", a.hours_to_mql, b.hours_to_mql),
        _distribution("Time from first event to SQL (leads)", a.hours_to_sql, b.hours_to_sql),
    ]
    if c.outcomes:
        charts.append(
            _bars(
                "Leads with each outcome that reach SQL",
                [f"{r.outcome} ({r.leads})" for r in c.outcomes],
                [r.sql_current for r in c.outcomes],
                [r.sql_candidate for r in c.outcomes],
            )
        )
        charts.append(
            _bars(
                "Median final score of the leads with each outcome",
                [f"{r.outcome} ({r.leads})" for r in c.outcomes],
                [r.median_score_current or 0.0 for r in c.outcomes],
                [r.median_score_candidate or 0.0 for r in c.outcomes],
            )
        )
    outcome_rows = "".join(
        f"<tr><td>{escape(_label(r.outcome))}</td><td>{r.leads:,}</td><td>{r.sql_current:,}</td>"
        f"<td>{r.sql_candidate:,}</td><td>{_num(r.median_score_current)}</td>"
        f"<td>{_num(r.median_score_candidate)}</td></tr>"
        for r in c.outcomes
    )
    change_rows = "".join(
        f"<tr><td><code>{escape(ch.lead_id)}</code></td><td>{escape(ch.summary)}</td>"
        f"<td>{_when(ch.current.mql_at)}</td><td>{_when(ch.candidate.mql_at)}</td>"
        f"<td>{_when(ch.current.sql_at)}</td><td>{_when(ch.candidate.sql_at)}</td>"
        f"<td>{escape(ch.current.final_stage)} → {escape(ch.candidate.final_stage)}</td>"
        f"<td>{ch.current.final_score:.1f} → {ch.candidate.final_score:.1f}</td></tr>"
        for ch in c.changes[:CHANGES_LISTED]
    )
    more = (
        f"<p>… and {len(c.changes) - CHANGES_LISTED:,} more.</p>"
        if len(c.changes) > CHANGES_LISTED
        else ""
    )
    kinds = "".join(f"<li><b>{n:,}</b> {escape(k)}</li>" for k, n in c.change_kinds().items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Baton: current vs candidate rules</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 980px;
  color: #1d2330; }}
table {{ border-collapse: collapse; margin: .5rem 0 1.5rem; }}
td, th {{ border-bottom: 1px solid #e3e6eb; padding: 4px 10px; text-align: left; }}
svg {{ display: block; margin: 1rem 0; }}
svg .t {{ font-weight: 600; font-size: 14px; }} svg .k {{ font-size: 11px; }}
svg .v {{ font-size: 10px; text-anchor: middle; }}
svg .l {{ font-size: 12px; text-anchor: middle; }}
.key span {{ display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; }}
</style></head><body>
<h1>Current vs candidate scoring rules</h1>
<p>Replay of <b>{c.leads:,}</b> leads over {escape(span)}.
<span class="key"><span style="background:{CURRENT_COLOUR}"></span>current
<span style="background:{CANDIDATE_COLOUR}"></span>candidate</span></p>
<table><tr><th></th><th>rules</th><th>MQL leads</th><th>SQL leads</th>
<th>time to MQL</th><th>time to SQL</th></tr>
{_side_row("current", a)}{_side_row("candidate", b)}</table>
{"".join(charts)}
<h2>Outcomes (reps' dispositions and closed deals on leads.activity)</h2>
{
        "<table><tr><th>outcome</th><th>leads</th><th>SQL now</th><th>SQL candidate</th>"
        "<th>median score now</th><th>median score candidate</th></tr>" + outcome_rows + "</table>"
        if c.outcomes
        else "<p>No accepted, rejected, won or lost leads in the data.</p>"
    }
<h2>Leads whose stage or timing changes ({len(c.changes):,})</h2>
<ul>{kinds}</ul>
<table><tr><th>lead</th><th>change</th><th>MQL now</th><th>MQL candidate</th>
<th>SQL now</th><th>SQL candidate</th><th>final stage</th><th>final score</th></tr>
{change_rows}</table>{more}
</body></html>
"""


def _label(outcome: str) -> str:
    return OUTCOME_LABELS.get(outcome, outcome)


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"
