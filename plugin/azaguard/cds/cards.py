"""Findings → CDS Hooks cards (one-sentence summary, markdown detail with the evidence, stable uuid).

A card renders the wording layer's Action (azaguard.wording, absolute dates: cards are kept): the same
summary, detail, evidence rows and to-do list as the page, the chart alert and the reports.
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
from azaguard.registry import label
from azaguard.wording import Action, Words, sentence

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
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


@dataclass(frozen=True)
class Links:
    """Where a card points: the SMART app's launch URL and the service's home page."""

    smart_launch: str | None
    home: str | None


def indicator(finding: Finding) -> str:
    return "critical" if finding.status == Status.HOLD else "warning"


def card_action(finding: Finding, now: datetime, mappings: Mappings, tz: tzinfo | None = None) -> Action:
    """The finding's action in the clinician's words, dates absolute (cards are kept)."""
    return Words(now, mappings, tz, "absolute").action(finding)


def card_id(*parts: str) -> str:
    return str(uuid.uuid5(CARD_NAMESPACE, "|".join(parts)))


def finding_card(
    finding: Finding,
    *,
    card_uuid: str,
    links: Links,
    drafts_to_delete: Iterable[Draft] = (),
    notes: Iterable[str] = (),
    now: datetime,
    mappings: Mappings,
    tz: tzinfo | None = None,
) -> dict[str, Any]:
    action = card_action(finding, now, mappings, tz)
    card: dict[str, Any] = {
        "uuid": card_uuid,
        "summary": action.summary,
        "indicator": indicator(finding),
        "detail": _detail(finding, action, notes),
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
    # Named for people, never by id: the clinician sees their draft orders, not FHIR ids.
    items = "\n".join(f"- {_md(d.name)}: {_md(d.problem or 'it could not be read')}" for d in drafts)
    return {
        "uuid": card_uuid,
        "summary": sentence(f"azaguard could not check {len(drafts)} draft order(s): check them by hand"),
        "indicator": "info",
        "detail": "These draft orders could not be read, so azaguard did not check them:\n\n" + items,
        "source": {"label": "azaguard", **({"url": links.home} if links.home else {})},
    }


def _source(rule: str, links: Links) -> dict[str, Any]:
    source: dict[str, Any] = {
        "label": "azaguard",
        "topic": {"system": TOPIC_SYSTEM, "code": rule, "display": label(rule)},
    }
    if links.home:
        source["url"] = links.home
    return source


def _md(text: str) -> str:
    """Record text shown in markdown: escaped, so a display cannot become a link or markup."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _detail(finding: Finding, action: Action, notes: Iterable[str]) -> str:
    lines = [_md(action.detail)]
    if action.evidence:
        lines += ["", "**Evidence**", ""]
        for e in action.evidence:
            parts = ", ".join(p for p in (e.value, e.date) if p)
            lines.append(f"- {_md(e.what)}" + (f": {_md(parts)}" if parts else ""))
    if action.todo:
        lines += ["", "**To record:** " + _md("; ".join(action.todo))]
    extra = list(notes)
    if extra:
        lines += ["", "**Not read:** " + _md("; ".join(extra))]
    severity = "" if finding.severity == Severity.INFO else f", severity {finding.severity.value}"
    lines += ["", f"_{_md(label(finding.rule))} check ({finding.status.value}{severity}), "
                  f"mappings {_md(finding.mappings_version)}_"]
    return "\n".join(lines)
