"""The symptom check-in: the patient's answers → a QuestionnaireResponse (+ a body-temperature Observation),
and the advice for what they reported.

Pure: the web shell parses the form, calls `read_answers`, writes `transaction(...)` with the patient's
token and shows `advice(...)`. Writes are PUTs with ids derived from a one-time check-in id carried by the
form: sending the same form twice (a reload, a retry) writes the same two resources, never a second copy.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from msgspec import Struct

from azaguard.display import format_quantity, unit_text
from azaguard.errors import InputError
from azaguard.fhirtypes.reference import ref_of
from azaguard.mappings import Mappings
from azaguard.patient.content import LOINC, SNOMED, UCUM, PatientContent, sign_options
from azaguard.patient.messages import PatientMessage
from azaguard.units import UnitError, normalise
from azaguard.wording import fill

CHECKIN_ID = re.compile(r"[0-9a-f]{32}")
TEMPERATURE_UNITS = ("Cel", "[degF]")
_NUMBER = re.compile(r"^\s*(\d{2,3}(?:[.,]\d{1,2})?)\s*$")
_TAG = {"system": "https://azaguard.example/tags", "code": "azaguard-checkin", "display": "azaguard patient check-in"}


class CheckinError(InputError):
    """The answers cannot be sent as they are; the message says what to change, in the patient's words."""


class Answers(Struct, frozen=True, kw_only=True):
    checkin_id: str
    temperature: float | None  # as entered
    unit: str | None  # UCUM: Cel or [degF]
    celsius: float | None
    signs: tuple[dict[str, str], ...]  # SNOMED codings, in the Questionnaire's order

    @property
    def nothing(self) -> bool:
        return not self.signs and self.temperature is None


def read_answers(
    form: dict[str, list[str]], questionnaire: dict[str, Any], mappings: Mappings
) -> Answers:
    """The form's fields (`checkin`, `temperature`, `unit`, `sign` repeated) checked against the Questionnaire."""
    checkin_id = (form.get("checkin") or [""])[0]
    if not CHECKIN_ID.fullmatch(checkin_id):
        raise CheckinError("This form has expired. Please open the check-in again.")
    options = {o["code"]: o for o in sign_options(questionnaire)}
    chosen = list(dict.fromkeys(form.get("sign") or []))
    unknown = [c for c in chosen if c not in options]
    if unknown:
        raise CheckinError("Some answers were not on the list. Please try again.")
    signs = tuple(options[c] for c in options if c in chosen)
    none = [s for s in signs if s["code"] == _none_code(questionnaire)]
    if none and len(signs) > 1:
        raise CheckinError("You ticked 'None of these' and a sign. Please tick one or the other.")
    raw = (form.get("temperature") or [""])[0].strip()
    unit = (form.get("unit") or ["Cel"])[0]
    temperature = celsius = None
    if raw:
        match = _NUMBER.match(raw)
        if match is None or unit not in TEMPERATURE_UNITS:
            raise CheckinError("Please write your temperature as a number, like 37.5.")
        temperature = float(match.group(1).replace(",", "."))
        celsius = _celsius(temperature, unit, mappings)
    if not signs and temperature is None:
        raise CheckinError("Please tick at least one box, or 'None of these'.")
    return Answers(checkin_id=checkin_id, temperature=temperature, unit=unit if raw else None,
                   celsius=celsius, signs=signs)


def _none_code(questionnaire: dict[str, Any]) -> str:
    return next((o["code"] for o in sign_options(questionnaire) if o["code"] == "260413007"), "")


def _celsius(value: float, unit: str, m: Mappings) -> float:
    spec = m.analytes.analytes["temperature"]
    try:
        celsius = normalise(value, code=unit, system=UCUM, text=None, dimension=spec.dimension, mappings=m).value
    except UnitError as exc:
        raise CheckinError("Please choose °C or °F for your temperature.") from exc
    plausible = spec.plausible
    if plausible is not None and not plausible.low <= celsius <= plausible.high:
        shown = format_quantity(value, unit, m)
        raise CheckinError(f"{shown} does not look right. Please take your temperature again.")
    return celsius


def answers_from_response(
    response: dict[str, Any], questionnaire: dict[str, Any], mappings: Mappings
) -> Answers | None:
    """The answers a check-in QuestionnaireResponse (as written by `transaction`) holds, read back from the
    record; None when it is not one of ours or cannot be read as one."""
    rid = str(response.get("id") or "")
    checkin_id = rid.removeprefix("azg-checkin-")
    if response.get("resourceType") != "QuestionnaireResponse" or not CHECKIN_ID.fullmatch(checkin_id):
        return None
    items = {i.get("linkId"): i.get("answer") or [] for i in response.get("item") or [] if isinstance(i, dict)}
    form: dict[str, list[str]] = {"checkin": [checkin_id], "sign": []}
    for answer in items.get("temperature", []):
        quantity = answer.get("valueQuantity") or {}
        if isinstance(quantity.get("value"), int | float):
            form["temperature"], form["unit"] = [f"{quantity['value']:g}"], [str(quantity.get("code"))]
    form["sign"] = [str((a.get("valueCoding") or {}).get("code")) for a in items.get("signs", [])]
    try:
        return read_answers(form, questionnaire, mappings)
    except CheckinError:
        return None


# --- what is written ------------------------------------------------------------------------


def resource_ids(answers: Answers) -> tuple[str, str]:
    """(QuestionnaireResponse id, Observation id), derived from the one-time check-in id."""
    return f"azg-checkin-{answers.checkin_id}", f"azg-checkin-{answers.checkin_id}-temp"


def transaction(
    answers: Answers, patient_id: str, now: datetime, questionnaire: dict[str, Any], m: Mappings
) -> list[dict[str, Any]]:
    """Transaction entries: PUT the QuestionnaireResponse and (when a temperature was taken) the Observation."""
    qr_id, obs_id = resource_ids(answers)
    patient = {"reference": f"Patient/{patient_id}"}
    authored = now.isoformat(timespec="seconds")
    items: list[dict[str, Any]] = []
    texts = {i["linkId"]: i["text"] for i in questionnaire["item"]}
    if answers.temperature is not None and answers.unit is not None:
        items.append({"linkId": "temperature", "text": texts["temperature"],
                      "answer": [{"valueQuantity": _quantity(answers.temperature, answers.unit, m)}]})
    if answers.signs:
        items.append({"linkId": "signs", "text": texts["signs"],
                      "answer": [{"valueCoding": {"system": SNOMED, "code": s["code"], "display": s["display"]}}
                                 for s in answers.signs]})
    response = {
        "resourceType": "QuestionnaireResponse", "id": qr_id, "meta": {"tag": [_TAG]},
        "questionnaire": f"{questionnaire['url']}|{questionnaire['version']}",
        "status": "completed", "subject": patient, "authored": authored, "author": patient, "source": patient,
        "item": items,
    }
    entries = [_put(response)]
    if answers.temperature is not None and answers.unit is not None:
        observation = {
            "resourceType": "Observation", "id": obs_id,
            "meta": {"tag": [_TAG], "profile": ["http://hl7.org/fhir/StructureDefinition/bodytemp"]},
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "vital-signs", "display": "Vital Signs"}]}],
            "code": {"coding": [{"system": LOINC, "code": "8310-5", "display": "Body temperature"}],
                     "text": "Body temperature (measured by the patient)"},
            "subject": patient, "effectiveDateTime": authored, "issued": authored, "performer": [patient],
            "valueQuantity": _quantity(answers.temperature, answers.unit, m),
            "derivedFrom": [{"reference": f"QuestionnaireResponse/{qr_id}"}],
        }
        entries.append(_put(observation))
    return entries


def _put(resource: dict[str, Any]) -> dict[str, Any]:
    url = ref_of(resource)
    return {"resource": resource, "request": {"method": "PUT", "url": url}}


def _quantity(value: float, unit: str, m: Mappings) -> dict[str, Any]:
    return {"value": value, "unit": unit_text(unit, m), "system": UCUM, "code": unit}


# --- what the patient is told ------------------------------------------------------------------


def advice(answers: Answers, content: PatientContent, m: Mappings) -> list[PatientMessage]:
    """Advice for what they reported, most urgent first: a fever (at the rules' threshold) or a bleeding sign
    → call now; another sign → call today; a temperature just under the threshold → measure again."""
    threshold = m.policy.infection.fever_threshold_cel.value
    kinds = {content.signs[s["code"]].kind for s in answers.signs}
    labels = [content.signs[s["code"]].label.lower() for s in answers.signs if content.signs[s["code"]].kind != "none"]
    shown = format_quantity(answers.temperature, answers.unit, m) if answers.temperature and answers.unit else None
    fever = answers.celsius is not None and answers.celsius >= threshold
    reported = ", ".join(([shown] if fever and shown else []) + labels)
    facts = {"contact": content.contact, "reported": _and(reported), "temperature": shown or "",
             "threshold": format_quantity(threshold, "Cel", m)}
    a = content.checkin_advice
    out: list[tuple[Any, str]] = []
    if fever:
        out.append((a.fever, "fever"))
    elif "bleeding" in kinds:
        out.append((a.bleeding, "bleeding"))
    elif "infection" in kinds:
        out.append((a.sign, "sign"))
    recheck = content.fever_recheck_from_cel.value
    if answers.celsius is not None and recheck <= answers.celsius < threshold:
        out.append((a.recheck, "recheck"))
    if not out:
        out.append((a.none, "none"))
    messages = []
    for wording, _ in out:
        level = content.urgencies[wording.urgency]
        text, todo = fill(wording.text, facts, content.fallbacks), fill(wording.todo, facts, content.fallbacks)
        messages.append(PatientMessage(urgency=wording.urgency, label=level.label, tone=level.tone, text=text,
                                       todo=todo))
    return sorted(messages, key=lambda x: content.urgency_rank(x.urgency))


def _and(text: str) -> str:
    """"a, b, c" → "a, b and c"."""
    head, sep, tail = text.rpartition(", ")
    return f"{head} and {tail}" if sep else text
