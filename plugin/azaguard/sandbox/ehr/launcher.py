"""The sandbox EHR's launcher page: the upstream's patients, each with a 'Launch azaguard' link."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from azaguard.registry import SPEC, label
from azaguard.sandbox.ehr.context import EhrContext, ehr
from azaguard.sandbox.patients import stories

_PATIENT_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass(frozen=True)
class PatientRow:
    id: str
    name: str
    birth_date: str
    gender: str
    story: str = ""  # what this synthetic patient shows (empty for other patients on the server)
    expected: str = ""  # the verdict azaguard should show: "Hold: Infection"
    tone: str = ""  # verdict colour class: red, amber, green, grey


def display_name(patient: dict[str, Any]) -> str:
    """The official (else first) HumanName as 'Given Family', or the text, or a placeholder."""
    names = [n for n in patient.get("name") or [] if isinstance(n, dict)]
    if not names:
        return "(no name)"
    name = next((n for n in names if n.get("use") == "official"), names[0])
    if name.get("text"):
        return str(name["text"])
    parts = [*(name.get("given") or []), name.get("family") or ""]
    return " ".join(str(p) for p in parts if p) or "(no name)"


def patient_rows(bundle: dict[str, Any]) -> list[PatientRow]:
    rows = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient" and resource.get("id"):
            pid = str(resource["id"])
            story, expected, tone = _story(pid)
            rows.append(
                PatientRow(
                    pid,
                    display_name(resource),
                    str(resource.get("birthDate") or "unknown"),
                    str(resource.get("gender") or "unknown"),
                    story,
                    expected,
                    tone,
                )
            )
    # The synthetic patients first, in the order of their stories; then any others by name.
    order = {pid: i for i, pid in enumerate(stories())}
    return sorted(rows, key=lambda r: (order.get(r.id, len(order)), r.name.lower(), r.id))


_TONES = {"Hold": "red", "Cannot check": "grey", "Caution": "amber", "No action needed": "green"}


def _story(pid: str) -> tuple[str, str, str]:
    known = stories().get(pid)
    if known is None:
        return "", "", ""
    story, words, rules = known
    focus = ", ".join(label(r) for r in rules if r in SPEC)
    return story, f"{words}: {focus}" if focus else words, _TONES.get(words, "grey")


async def list_patients(context: EhrContext) -> tuple[list[PatientRow], str | None]:
    """The upstream's patients (first 100), or an explanation of why they could not be listed."""
    try:
        bundle = await context.upstream.get_json("Patient?_count=100")
    except httpx.HTTPError as exc:
        return [], f"The FHIR server at {context.upstream.base} could not be reached ({type(exc).__name__})."
    except ValueError:
        return [], f"The FHIR server at {context.upstream.base} answered with something that is not JSON."
    return patient_rows(bundle), None


async def launcher_page(request: Request) -> Response:
    context = ehr(request)
    patients, problem = await list_patients(context)
    launches = {p.id: context.launch_url(p.id) for p in patients}
    return context.page(
        "launcher.html",
        status_code=503 if problem else 200,
        patients=patients,
        launches=launches,
        problem=problem,
        fhir_base=context.fhir_base,
        app_name=context.client.client_id,
        charts=context.cds is not None,
    )


async def launch_patient(request: Request) -> Response:
    """GET /launch/{patient_id}: a fresh EHR launch of the app for this patient (the scan report links here)."""
    context = ehr(request)
    patient_id = str(request.path_params["patient_id"])
    if not _PATIENT_ID.fullmatch(patient_id):
        return context.page("error.html", status_code=400, error="invalid_request", description="not a patient id")
    return RedirectResponse(context.launch_url(patient_id), status_code=302)
