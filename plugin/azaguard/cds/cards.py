"""Findings → CDS Hooks cards (summary < 140, markdown detail with the evidence, stable uuid).

`card_text` renders the verdict layer's wording (`verdict.action_of`, absolute dates): one clinical
message on every surface; without a clock it falls back to the finding's own text.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from azaguard.cds.drafts import Draft
from azaguard.drugnames import clinical_name
from azaguard.findings import Finding, Severity, Status
from azaguard.mappings import Mappings
from azaguard.verdict import action_of

# Card ids are uuid5 in this namespace over (hook instance, service, rule, code, subject of the card):
# the same call gives the same ids, so feedback and logs can be matched.
CARD_NAMESPACE = uuid.UUID("6f1c1d2e-4b7a-5c39-9a0e-8d7f2b1e0a11")
TOPIC_SYSTEM = "https://azaguard.example/cds/topics"
OVERRIDE_SYSTEM = "https://azaguard.example/cds/override-reasons"
OVERRIDE_VACCINE = (
    ("prescriber-approved", "Prescriber approved"),
    ("azathioprine-stopped-long-enough", "Azathioprine already stopped long enough"),
    ("other", "Other"),
)
OVERRIDE_AZATHIOPRINE = (
    ("prescriber-approved", "Prescriber approved"),
    ("benefit-outweighs-risk", "Benefit outweighs the risk"),
    ("other", "Other"),
)
RULE_LABELS = {
    "vaccination-hold": "Vaccination hold",
    "infection-hold": "Infection hold",
    "blood-counts": "Blood counts",
    "liver": "Liver",
    "kidney": "Kidney",
    "monitoring-schedule": "Monitoring schedule",
    "dose": "Dose",
    "tpmt": "TPMT",
    "interactions": "Interactions",
}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


@dataclass(frozen=True)
class Links:
    """Where a card points: the SMART app's launch URL and the service's home page."""

    smart_launch: str | None
    home: str | None


def indicator(finding: Finding) -> str:
    return "critical" if finding.status == Status.HOLD else "warning"


def card_text(
    finding: Finding, now: datetime | None = None, mappings: Mappings | None = None, tz: tzinfo | None = None
) -> tuple[str, str]:
    """(summary, detail) in the clinician's words: the verdict action's, dates absolute (cards are kept)."""
    if now is None or mappings is None:
        return finding.summary, finding.detail
    action = action_of(finding, now, mappings, tz, relative_dates=False)
    return action.summary, action.detail


def card_id(*parts: str) -> str:
    return str(uuid.uuid5(CARD_NAMESPACE, "|".join(parts)))


def finding_card(
    finding: Finding,
    *,
    card_uuid: str,
    links: Links,
    drafts_to_delete: Iterable[Draft] = (),
    notes: Iterable[str] = (),
    now: datetime | None = None,
    mappings: Mappings | None = None,
    tz: tzinfo | None = None,
) -> dict[str, Any]:
    summary, detail = card_text(finding, now, mappings, tz)
    card: dict[str, Any] = {
        "uuid": card_uuid,
        "summary": _summary(summary),
        "indicator": indicator(finding),
        "detail": _detail(finding, detail, notes),
        "source": _source(finding.rule, links),
    }
    deletable = [d for d in drafts_to_delete if d.has_id]
    if deletable:
        card["suggestions"] = [
            {
                "label": f"Remove the draft order: {clinical_name(d.label)}"[:120],
                "uuid": card_id(card_uuid, "delete", d.ref),
                "isRecommended": True,
                "actions": [
                    {"type": "delete", "description": f"Remove the draft {clinical_name(d.label)} order",
                     "resourceId": d.ref}
                ],
            }
            for d in deletable
        ]
        card["selectionBehavior"] = "at-most-one"
        reasons = OVERRIDE_VACCINE if any(d.kind == "vaccine" for d in deletable) else OVERRIDE_AZATHIOPRINE
        card["overrideReasons"] = [{"system": OVERRIDE_SYSTEM, "code": c, "display": t} for c, t in reasons]
    if links.smart_launch:
        card["links"] = [{"label": "Open azaguard for this patient", "url": links.smart_launch, "type": "smart"}]
    return card


def unreadable_card(drafts: list[Draft], *, card_uuid: str, links: Links) -> dict[str, Any]:
    items = "\n".join(f"- `{_md(d.ref)}` ({_md(d.label)}): {_md(d.problem or 'unreadable')}" for d in drafts)
    return {
        "uuid": card_uuid,
        "summary": _summary(f"azaguard could not check {len(drafts)} draft order(s): check them by hand"),
        "indicator": "info",
        "detail": "These draft orders could not be read, so azaguard did not check them:\n\n" + items,
        "source": {"label": "azaguard", **({"url": links.home} if links.home else {})},
    }


def _summary(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) < 140 else text[:138].rstrip() + "…"


def _source(rule: str, links: Links) -> dict[str, Any]:
    source: dict[str, Any] = {
        "label": "azaguard",
        "topic": {"system": TOPIC_SYSTEM, "code": rule, "display": RULE_LABELS.get(rule, rule)},
    }
    if links.home:
        source["url"] = links.home
    return source


def _md(text: str) -> str:
    """Record text shown in markdown: escaped, so a display cannot become a link or markup."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _detail(finding: Finding, detail: str, notes: Iterable[str]) -> str:
    lines = [_md(detail)]
    if finding.evidence:
        lines += ["", "**Evidence**", ""]
        for e in finding.evidence:
            value = f": {e.value}" if e.value else ""
            normalised = f" ({e.normalised})" if e.normalised and e.normalised != e.value else ""
            when = f", {e.date[:10]}" if e.date else ""
            lines.append(f"- `{_md(e.reference)}` {_md(e.description + value + normalised + when)}")
    if finding.missing:
        lines += ["", "**Missing:** " + _md("; ".join(finding.missing))]
    extra = list(notes)
    if extra:
        lines += ["", "**Not read:** " + _md("; ".join(extra))]
    severity = "" if finding.severity == Severity.INFO else f", severity {finding.severity.value}"
    lines += ["", f"_Rule {finding.rule} ({finding.status.value}{severity}), mappings {_md(finding.mappings_version)}_"]
    return "\n".join(lines)
