"""The three services and their prefetch templates, derived from the searches the record gatherer runs.

One source of truth for "what the rules read": fhir/gather.plan_searches. Each search becomes a
prefetch template (CDS Hooks 2.0 has no relative-date tokens, so the date bound is left out); the
usageRequirements name the same types (fhir/catalogue.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azaguard.fhir.catalogue import usage_requirements
from azaguard.fhir.gather import Search, plan_searches
from azaguard.fhirtypes import dates
from azaguard.mappings import Mappings

PATIENT_KEY = "patient"
_CONTEXT_PATIENT = "{{context.patientId}}"
_PLACEHOLDER = "azaguard-patient-id"
# Prefetch keys for the gatherer's searches (by label); a search added later gets a key from its label.
_KEYS = {
    "medication orders": "medicationOrders",
    "lab results and vital signs": "observations",
    "TPMT and pharmacogenomic results": "pharmacogenomics",
    "active conditions": "conditions",
    "immunizations": "immunizations",
    "immunization recommendations": "immunizationRecommendations",
    "open service requests": "serviceRequests",
}


@dataclass(frozen=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    ordering: bool  # draft orders in context count


SERVICES: dict[str, Service] = {
    s.id: s
    for s in (
        Service(
            "azaguard-patient-view", "patient-view", "azaguard: azathioprine safety at chart opening",
            "Holds and cautions for a patient on azathioprine: live vaccines, infection, blood counts, liver, "
            "kidney, monitoring, dose, TPMT and interactions. No card for a patient not on azathioprine.",
            ordering=False,
        ),
        Service(
            "azaguard-order-select", "order-select", "azaguard: the order being selected",
            "Checks the selected draft orders: a live vaccine for a patient on (or recently on) azathioprine, "
            "or azathioprine itself started now (recent live vaccine, interacting drugs, infection, counts, TPMT).",
            ordering=True,
        ),
        Service(
            "azaguard-order-sign", "order-sign", "azaguard: the orders being signed",
            "Checks every draft order before signing, as order-select does for the selected ones.",
            ordering=True,
        ),
    )
}



def search_key(search: Search) -> str:
    return _KEYS.get(search.label) or "".join(w.capitalize() if i else w for i, w in enumerate(search.label.split()))


_REF_DAY = datetime(2000, 1, 1, tzinfo=UTC)
_OTHER_DAY = datetime(2003, 1, 1, tzinfo=UTC)
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")


def _plans(mappings: Mappings) -> list[tuple[Search, Search]]:
    """Each search planned at two different times: the parameters that differ depend on `now`."""
    a = plan_searches(_PLACEHOLDER, mappings, _REF_DAY)
    b = plan_searches(_PLACEHOLDER, mappings, _OTHER_DAY)
    return list(zip(a, b, strict=True))


def _time_bound(a: Search, b: Search) -> tuple[set[str], int | None]:
    """The names of the parameters bounded by `now`, and how many days back the bound reaches."""
    names = {k for (k, va), (_, vb) in zip(a.params, b.params, strict=True) if va != vb}
    days = None
    for k, v in a.params:
        found = _DATE.search(v) if k in names else None
        if found:
            bound = dates.earliest(found.group(1))
            days = (_REF_DAY - bound).days if bound is not None else None
    return names, days


def _template(search: Search, dynamic: set[str]) -> str:
    # Prefetch tokens cannot say "today minus N days": a time bound is left out of the template and
    # applied when the data arrives (prefetch.py).
    params = tuple((k, v) for k, v in search.params if k not in dynamic)
    template = Search(search.label, search.resource_type, params, search.patient_element).url
    return template.replace(_PLACEHOLDER, _CONTEXT_PATIENT)


def prefetch_templates(mappings: Mappings) -> dict[str, str]:
    """Prefetch key -> template."""
    out = {PATIENT_KEY: f"Patient/{_CONTEXT_PATIENT}"}
    for a, b in _plans(mappings):
        out[search_key(a)] = _template(a, _time_bound(a, b)[0])
    return out


def key_labels(mappings: Mappings) -> dict[str, str]:
    """Prefetch key -> the gatherer's search label (to fetch what a prefetch left out)."""
    return {search_key(a): a.label for a, _ in _plans(mappings)}


def key_searches(mappings: Mappings) -> dict[str, Search]:
    """Prefetch key -> the gatherer's search (which type, and which element ties it to the patient)."""
    return {search_key(a): a for a, _ in _plans(mappings)}


def date_bounded_keys(mappings: Mappings) -> dict[str, int]:
    """Keys whose gatherer search is bounded in time, with the bound in days (applied on arrival)."""
    out = {}
    for a, b in _plans(mappings):
        _, days = _time_bound(a, b)
        if days is not None:
            out[search_key(a)] = days
    return out


def discovery_document(mappings: Mappings) -> dict[str, Any]:
    prefetch = prefetch_templates(mappings)
    return {
        "services": [
            {
                "hook": s.hook,
                "title": s.title,
                "description": s.description,
                "id": s.id,
                "prefetch": prefetch,
                "usageRequirements": usage_requirements(mappings),
            }
            for s in SERVICES.values()
        ]
    }
