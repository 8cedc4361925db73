"""mappings/patient.json (the patient's words) and mappings/checkin-questionnaire.json, validated on load.

The words are data beside the clinical knowledge, versioned and reviewed with it: the urgency labels, the
fallback words for a fact a finding does not state, the check-in's sign labels, the tests whose dates the
guidance shows, and the leaflet's standing guidance. What a patient is told about each finding is the
wording layer's patient table (azaguard.wording.TABLES["patient"]), one mechanism with the clinician's.
"""

from __future__ import annotations

import json
import string
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from azaguard.errors import KnowledgeError
from azaguard.mappings import Mappings, default_mappings_dir
from azaguard.wording import PATIENT_FACTS, Urgency

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
# Placeholders a template may use: the patient's facts, never a finding's text (the one list, in the wording layer).
PLACEHOLDERS = PATIENT_FACTS


class PatientContentError(KnowledgeError):
    """mappings/patient.json or the check-in Questionnaire is malformed."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Sourced(_Strict):
    value: float
    source: str = Field(min_length=1)


class UrgencyLevel(_Strict):
    rank: int
    label: str
    tone: Literal["red", "amber", "green", "grey"]


class Sign(_Strict):
    label: str = Field(min_length=1)
    kind: Literal["infection", "bleeding", "none"]


class Test(_Strict):
    name: str = Field(min_length=1)
    analytes: tuple[str, ...] = Field(min_length=1)


class TestLines(_Strict):
    found: str
    missing: str


class Wording(_Strict):
    text: str = Field(min_length=1)
    todo: str = Field(min_length=1)


class NextTest(_Strict):
    soon_days: int = Field(ge=0)  # due within this many days: "this week", else "good to know"
    due: Wording
    due_now: Wording


class Advice(Wording):
    urgency: Urgency


class CheckinAdvice(_Strict):
    fever: Advice
    bleeding: Advice
    sign: Advice
    recheck: Advice
    none: Advice
    saved: str


class Section(_Strict):
    id: str
    heading: str
    paragraphs: tuple[str, ...] = Field(min_length=1)
    shows_tests: bool = False


class PatientContent(_Strict):
    version: str
    source: str
    contact: str
    fever_recheck_from_cel: Sourced
    urgencies: dict[Urgency, UrgencyLevel]
    signs: dict[str, Sign]
    test_lines: TestLines
    tests: dict[str, Test]
    fallbacks: dict[str, str]  # words for a fact the record does not hold ("a new medicine"), never a guess
    not_on_medicine: Wording
    next_test: NextTest
    nothing_to_do: Wording
    checks: dict[str, str]
    checkin_advice: CheckinAdvice
    guidance: tuple[Section, ...]

    @model_validator(mode="after")
    def _check(self) -> PatientContent:
        rows = (self.nothing_to_do, self.not_on_medicine, self.next_test.due, self.next_test.due_now,
                *_advices(self.checkin_advice))
        for row in rows:
            for text in (row.text, row.todo):
                unknown = _fields(text) - PLACEHOLDERS
                if unknown:
                    raise ValueError(f"unknown placeholder(s) {sorted(unknown)} in {text!r}")
        return self

    def urgency_rank(self, urgency: Urgency) -> int:
        return self.urgencies[urgency].rank


def _advices(advice: CheckinAdvice) -> tuple[Advice, ...]:
    return (advice.fever, advice.bleeding, advice.sign, advice.recheck, advice.none)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@cache
def load_patient_content(directory: Path | None = None) -> PatientContent:
    """The patient's words, validated once per folder."""
    data = _read(directory or default_mappings_dir(), "patient.json")
    try:
        return PatientContent.model_validate(data)
    except ValueError as exc:
        raise PatientContentError(f"mappings/patient.json: {exc}") from exc


@cache
def load_questionnaire(directory: Path | None = None) -> dict[str, Any]:
    """The check-in Questionnaire (FHIR R4), validated as a Questionnaire and against the patient's words:
    every answer option is a SNOMED CT coding with a label for the patient."""
    from fhir.resources.R4B.questionnaire import Questionnaire  # full FHIR validation: only serving loads it

    folder = directory or default_mappings_dir()
    data: dict[str, Any] = _read(folder, "checkin-questionnaire.json")
    try:
        Questionnaire.model_validate(data)
    except ValueError as exc:
        raise PatientContentError(f"mappings/checkin-questionnaire.json is not a valid Questionnaire: {exc}") from exc
    content = load_patient_content(directory)
    items = {item["linkId"]: item for item in data["item"]}
    if set(items) != {"temperature", "signs"}:
        raise PatientContentError("the check-in Questionnaire must have the items 'temperature' and 'signs'")
    for option in items["signs"].get("answerOption") or []:
        coding = option.get("valueCoding") or {}
        if coding.get("system") != SNOMED or coding.get("code") not in content.signs:
            raise PatientContentError(f"check-in option {coding} is not a SNOMED CT sign named in patient.json")
    return data


def sign_options(questionnaire: dict[str, Any]) -> list[dict[str, str]]:
    """The check-in's sign options as SNOMED codings, in the Questionnaire's order."""
    item = next(i for i in questionnaire["item"] if i["linkId"] == "signs")
    return [dict(o["valueCoding"]) for o in item.get("answerOption") or []]


def check_against(content: PatientContent, mappings: Mappings) -> None:
    """The tests name analytes the mappings know."""
    for key, test in content.tests.items():
        unknown = [a for a in test.analytes if a not in mappings.analytes.analytes]
        if unknown:
            raise PatientContentError(f"patient.json test {key!r} names unknown analytes {unknown}")


def _read(folder: Path, name: str) -> Any:
    try:
        with (folder / name).open(encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise PatientContentError(f"cannot read {folder / name}: {exc}") from exc
