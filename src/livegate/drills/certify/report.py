"""The certificate as files: JSON (the record), JUnit XML (for CI systems), HTML (for people)."""

from __future__ import annotations

import dataclasses
import html
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from livegate.drills.certify.runner import FAILED, NOT_APPLICABLE, PASSED, Certificate
from livegate.engine.control import atomic_write


def as_json(certificate: Certificate) -> str:
    data = dataclasses.asdict(certificate)
    data["passed"] = certificate.passed
    data["counts"] = certificate.counts()
    return json.dumps(data, indent=2)


def as_junit(certificate: Certificate) -> str:
    counts = certificate.counts()
    suite = ET.Element(
        "testsuite",
        name=f"livegate certify {certificate.adapter_module}",
        tests=str(len(certificate.outcomes)),
        failures=str(counts[FAILED]),
        skipped=str(counts[NOT_APPLICABLE]),
        time=f"{certificate.seconds:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    for name in ("adapter", "adapter_module", "adapter_version", "config_id", "factory"):
        ET.SubElement(properties, "property", name=name, value=str(getattr(certificate, name)))
    for outcome in certificate.outcomes:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"certify.{outcome.group}",
            name=outcome.id,
            time=f"{outcome.seconds:.3f}",
        )
        if outcome.status == FAILED:
            failure = ET.SubElement(case, "failure", message=outcome.detail[:500])
            failure.text = "\n".join([outcome.detail, *outcome.evidence])
        elif outcome.status == NOT_APPLICABLE:
            ET.SubElement(case, "skipped", message=outcome.detail)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def as_html(certificate: Certificate) -> str:
    verdict = "PASS" if certificate.passed else "FAIL"
    colour = {PASSED: "#1a7f37", FAILED: "#cf222e", NOT_APPLICABLE: "#6e7781"}
    when = datetime.fromtimestamp(certificate.started_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    for o in certificate.outcomes:
        checks = "".join(
            f"<li>{'ok' if c.ok else 'FAILED'}: {html.escape(c.name)}"
            f"{': ' + html.escape(c.detail) if c.detail and not c.ok else ''}</li>"
            for c in o.checks
        )
        evidence = html.escape(", ".join(o.evidence))
        rows.append(
            f"<tr><td>{html.escape(o.id)}</td><td>{'critical' if o.critical else ''}</td>"
            f"<td style='color:{colour[o.status]};font-weight:bold'>{o.status}</td>"
            f"<td>{o.seconds:.2f}s</td><td>{html.escape(o.criterion)}<ul>{checks}</ul>"
            f"{html.escape(o.detail) if o.status == NOT_APPLICABLE else ''}</td>"
            f"<td>{evidence}</td></tr>"
        )
    capabilities = ", ".join(f"{k}={v}" for k, v in certificate.capabilities.items())
    counts = certificate.counts()
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>livegate certify: {verdict}</title>
<style>body{{font-family:sans-serif;margin:2em}}td{{vertical-align:top;padding:4px 8px;
border-bottom:1px solid #ddd}}ul{{margin:0;padding-left:1.2em}}</style></head><body>
<h1 style="color:{colour[PASSED] if certificate.passed else colour[FAILED]}">{verdict}</h1>
<p>{html.escape(certificate.adapter)} ({html.escape(certificate.adapter_module)}
{html.escape(certificate.adapter_version)}), config {html.escape(certificate.config_id or "-")},
{when}, {certificate.seconds:.1f}s. Capabilities: {html.escape(capabilities)}.</p>
<p>{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[NOT_APPLICABLE]} not applicable.</p>
<table><tr><th>scenario</th><th></th><th>result</th><th>time</th><th>criterion and checks</th>
<th>evidence</th></tr>{"".join(rows)}</table></body></html>
"""


def write_reports(certificate: Certificate, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / "certify.json",
        "junit": directory / "certify-junit.xml",
        "html": directory / "certify.html",
    }
    atomic_write(paths["json"], as_json(certificate).encode())
    atomic_write(paths["junit"], as_junit(certificate).encode())
    atomic_write(paths["html"], as_html(certificate).encode())
    return paths
