"""The end-of-day reconciliation report: HTML for a person, JSON and CSV for programs.

All three are written from one `Report` value, so their numbers cannot
disagree. The summary counts diffs per kind and severity and how many are
still unresolved; each row carries its marker, severity and history.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
from collections import Counter
from pathlib import Path

import msgspec

from livegate.model.diffs import Diff, DiffStatus


class ReportRow(msgspec.Struct):
    id: str
    kind: str
    marker: str
    severity: str
    subject: str
    ours: str
    theirs: str
    detail: str
    status: str
    resolution: str
    history: list[str]


class Summary(msgspec.Struct):
    total: int
    unresolved: int
    by_kind: dict[str, int]
    by_severity: dict[str, int]
    by_marker: dict[str, int]
    unresolved_by_severity: dict[str, int]


class Report(msgspec.Struct):
    trading_day: str
    generated: str
    account: str
    summary: Summary
    diffs: list[ReportRow]
    policy: list[tuple[str, str, str, str]]


def build_report(
    diffs: list[Diff], trading_day: dt.date, account: str, policy: list[tuple[str, str, str, str]]
) -> Report:
    rows = [
        ReportRow(
            d.id,
            d.finding.kind.value,
            d.finding.marker.value,
            d.finding.severity.value,
            d.finding.subject,
            d.finding.ours,
            d.finding.theirs,
            d.finding.detail,
            d.status.value,
            d.resolution.value if d.resolution else "",
            list(d.history),
        )
        for d in diffs
    ]
    unresolved = [r for r in rows if r.status != DiffStatus.RESOLVED.value]
    summary = Summary(
        total=len(rows),
        unresolved=len(unresolved),
        by_kind=dict(Counter(r.kind for r in rows)),
        by_severity=dict(Counter(r.severity for r in rows)),
        by_marker=dict(Counter(r.marker for r in rows)),
        unresolved_by_severity=dict(Counter(r.severity for r in unresolved)),
    )
    return Report(
        trading_day.isoformat(),
        dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        account,
        summary,
        rows,
        policy,
    )


def write_report(report: Report, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"recon-{report.trading_day}"
    paths = {
        "json": directory / f"{stem}.json",
        "csv": directory / f"{stem}.csv",
        "html": directory / f"{stem}.html",
    }
    paths["json"].write_bytes(msgspec.json.format(msgspec.json.encode(report)))
    with paths["csv"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "id",
                "kind",
                "marker",
                "severity",
                "subject",
                "ours",
                "broker",
                "detail",
                "status",
                "resolution",
                "history",
            ]
        )
        for r in report.diffs:
            writer.writerow(
                [
                    r.id,
                    r.kind,
                    r.marker,
                    r.severity,
                    r.subject,
                    r.ours,
                    r.theirs,
                    r.detail,
                    r.status,
                    r.resolution,
                    " | ".join(r.history),
                ]
            )
    paths["html"].write_text(_html(report), encoding="utf-8")
    return paths


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.CRITICAL td.severity { background: #f8c9c4; color: #8a1c12; font-weight: bold; }
tr.WARNING td.severity { background: #fbe7b5; color: #7a5200; }
tr.INFO td.severity { background: #dbe8f7; color: #1f4e79; }
tr.RESOLVED { color: #777; }
.clean { color: #1b6e2a; font-weight: bold; }
"""


def _html(report: Report) -> str:
    e = html.escape
    s = report.summary
    summary_rows = "".join(
        f'<tr><td>{e(k)}</td><td class="n" data-count="{k}">{v}</td></tr>'
        for k, v in sorted(
            {
                **{f"kind {a}": b for a, b in s.by_kind.items()},
                **{f"severity {a}": b for a, b in s.by_severity.items()},
                **{f"marker {a}": b for a, b in s.by_marker.items()},
            }.items()
        )
    )
    rows = "".join(
        f'<tr class="{e(r.severity)} {e(r.status)}" data-id="{e(r.id)}">'
        f"<td>{e(r.id)}</td><td>{e(r.kind)}</td><td>{e(r.marker)}</td>"
        f'<td class="severity">{e(r.severity)}</td><td>{e(r.subject)}</td>'
        f"<td>{e(r.ours)}</td><td>{e(r.theirs)}</td><td>{e(r.detail)}</td>"
        f"<td>{e(r.status)}</td><td>{e(r.resolution)}</td>"
        f"<td>{'<br>'.join(e(h) for h in r.history)}</td></tr>"
        for r in report.diffs
    )
    policy = "".join(
        f"<tr><td>{e(k)}</td><td>{e(m)}</td><td>{e(w)}</td><td>{e(a)}</td></tr>"
        for k, m, w, a in report.policy
    )
    verdict = (
        '<p class="clean">Books match the broker: no unresolved differences.</p>'
        if s.unresolved == 0
        else f"<p><strong>{s.unresolved} unresolved</strong> of {s.total} differences.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Reconciliation {e(report.trading_day)}</title><style>{_STYLE}</style></head>
<body>
<h1>Reconciliation, trading day {e(report.trading_day)}, account {e(report.account)}</h1>
<p>Generated {e(report.generated)}.</p>
{verdict}
<h2>Summary</h2>
<table id="summary"><tr><th>count</th><th>diffs</th></tr>
<tr><td>total</td><td class="n" data-count="total">{s.total}</td></tr>
<tr><td>unresolved</td><td class="n" data-count="unresolved">{s.unresolved}</td></tr>
{summary_rows}</table>
<h2>Differences</h2>
<table id="diffs"><tr><th>id</th><th>kind</th><th>marker</th><th>severity</th><th>subject</th>
<th>ours</th><th>broker</th><th>detail</th><th>status</th><th>resolution</th><th>history</th></tr>
{rows}</table>
<h2>Conflict policy</h2>
<table id="policy"><tr><th>kind</th><th>marker</th><th>winner</th><th>settled</th></tr>
{policy}</table>
</body></html>
"""
