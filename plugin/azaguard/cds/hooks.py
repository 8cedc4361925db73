"""One hook call: resources (prefetch, fetched), draft orders, the rules, the cards. No HTTP here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from azaguard.cds.cards import Links, card_id, finding_card, unreadable_card
from azaguard.cds.discovery import Service
from azaguard.cds.drafts import Draft, Drafts, read_drafts, record_resources, vaccine_events
from azaguard.cds.fhirserver import FetchPolicy
from azaguard.cds.prefetch import ClientFactory, PreconditionFailed, Templates, assemble
from azaguard.cds.request import CdsRequest
from azaguard.evaluate import check_resources
from azaguard.fhirtypes.reference import ref_of
from azaguard.findings import Finding, Severity
from azaguard.mappings import Mappings
from azaguard.resources import EmptyRecord, ResourceSet

if TYPE_CHECKING:
    from azaguard.terminology.server import TerminologyServer

# Cards this severe offer to remove the draft they are about.
_SUGGEST = frozenset({Severity.CRITICAL, Severity.HIGH})


@dataclass(frozen=True)
class IssuedCard:
    uuid: str
    rule: str
    code: str
    indicator: str
    summary: str


@dataclass
class HookResult:
    cards: list[dict[str, Any]]
    issued: list[IssuedCard] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    requests: int = 0

    def response(self) -> dict[str, Any]:
        return {"cards": self.cards}


def run_hook(
    service: Service,
    request: CdsRequest,
    *,
    templates: Templates,
    mappings: Mappings,
    now: datetime,
    clients: ClientFactory,
    links: Links,
    terminology: TerminologyServer | None = None,
    policy: FetchPolicy | None = None,
) -> HookResult:
    assembled = assemble(request, templates, mappings, now, clients, policy)
    notes = request.notes + assembled.notes
    drafts = read_drafts(request.context, request.hook, request.patient_id, mappings, now) if service.ordering else None
    resources = assembled.resources
    if drafts is not None:
        notes += drafts.notes
        resources = _with_drafts(resources, drafts)
    # The one evaluation step `check` uses: empty-record refusal, one patient, terminology server, rules.
    try:
        checked = check_resources(
            resources, mappings=mappings, now=now, ordering_context=service.ordering, terminology=terminology,
            planned_vaccines=tuple(vaccine_events(drafts, now)) if drafts is not None else (),
        )
    except EmptyRecord as exc:
        raise PreconditionFailed(f"no data for the patient in the prefetch or from the FHIR server ({exc})") from exc
    findings = [f for f in checked.findings if f.actionable]
    unknown = checked.verdict.unidentified if checked.verdict is not None else ()
    if unknown:  # what the terminology could not identify is said on every card, never silence
        notes = [*notes, f"Could not identify: {'; '.join(unknown)} (check these by hand)."]
    result = HookResult([], fetched=assembled.fetched, requests=assembled.requests)
    prefix = (request.hook_instance, service.id)
    if drafts is None:
        for f in findings:
            _issue(result, f, finding_card(f, card_uuid=card_id(*prefix, f.rule, f.code, request.patient_id),
                                           links=links, notes=notes, now=now, mappings=mappings))
        return result
    scope = drafts.scope
    for f in findings:
        targets = [d for r in f.implicated if r in scope and (d := drafts.by_ref(r)) is not None]
        if not targets:
            continue
        card = finding_card(
            f, card_uuid=card_id(*prefix, f.rule, f.code, targets[0].ref), links=links,
            drafts_to_delete=_to_delete(f, targets), notes=notes, now=now, mappings=mappings,
        )
        _issue(result, f, card)
    unreadable = [d for d in drafts.in_scope() if d.kind is None and not d.empty]  # an empty draft: no noise
    if unreadable:
        card = unreadable_card(unreadable, card_uuid=card_id(*prefix, "unreadable-drafts"), links=links)
        result.cards.append(card)
        result.issued.append(IssuedCard(card["uuid"], "draft-orders", "unreadable", "info", card["summary"]))
    return result


def _with_drafts(resources: ResourceSet, drafts: Drafts) -> ResourceSet:
    """The chart's resources with the drafts in place of any stored copy of them."""
    replaced = {d.ref for d in drafts.drafts}
    out = ResourceSet()
    for r in resources.resources:
        if ref_of(r) not in replaced:
            out.add(r)
    for r in record_resources(drafts):
        out.add(r)
    return out


def _to_delete(finding: Finding, targets: list[Draft]) -> list[Draft]:
    if finding.severity not in _SUGGEST:
        return []
    if finding.rule == "vaccination-hold":
        return [d for d in targets if d.kind == "vaccine"]
    return [d for d in targets if d.kind != "vaccine"]


def _issue(result: HookResult, finding: Finding, card: dict[str, Any]) -> None:
    result.cards.append(card)
    result.issued.append(IssuedCard(card["uuid"], finding.rule, finding.code, card["indicator"], card["summary"]))
