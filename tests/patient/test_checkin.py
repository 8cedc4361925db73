"""The check-in: answers checked against the Questionnaire, the FHIR it writes, the advice at each boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from azaguard.mappings import Mappings
from azaguard.patient.checkin import CheckinError, advice, read_answers, resource_ids, transaction
from azaguard.patient.content import PatientContent

ID = "0123456789abcdef0123456789abcdef"
CHILLS, COUGH, BLEEDING, NONE = "43724002", "49727002", "131148009", "260413007"


def _form(
    temperature: str = "", unit: str = "Cel", signs: tuple[str, ...] = (), checkin: str = ID
) -> dict[str, list[str]]:
    return {"checkin": [checkin], "temperature": [temperature], "unit": [unit], "sign": list(signs)}


def _advice(questionnaire: dict[str, Any], mappings: Mappings, content: PatientContent, **form: Any) -> list[str]:
    answers = read_answers(_form(**form), questionnaire, mappings)
    return [f"{m.urgency}: {m.sentence}" for m in advice(answers, content, mappings)]


@pytest.mark.parametrize(
    ("temperature", "unit", "expected"),
    [
        ("38.0", "Cel", ["now: You told us: 38.0 °C. Call your care team now."]),  # the rules' fever threshold
        ("37.9", "Cel", ["today: Your temperature is 37.9 °C. That is a little high. Take it again in an hour. "
                         "If it is 38.0 °C or more, call your care team."]),
        ("37.8", "Cel", ["today: Your temperature is 37.8 °C. That is a little high. Take it again in an hour. "
                         "If it is 38.0 °C or more, call your care team."]),  # the leaflet's 100 °F
        ("37.7", "Cel", ["info: You told us you have none of these signs. Use this check-in again if you start "
                         "to feel unwell."]),
        ("100.4", "[degF]", ["now: You told us: 100.4 °F. Call your care team now."]),  # = 38.0 °C
        ("100.3", "[degF]", ["today: Your temperature is 100.3 °F. That is a little high. Take it again in an "
                             "hour. If it is 38.0 °C or more, call your care team."]),
    ],
)
def test_temperature_advice_at_each_boundary(
    temperature: str, unit: str, expected: list[str], questionnaire: dict[str, Any], mappings: Mappings,
    content: PatientContent,
) -> None:
    assert _advice(questionnaire, mappings, content, temperature=temperature, unit=unit) == expected


def test_signs_with_and_without_a_fever(
    questionnaire: dict[str, Any], mappings: Mappings, content: PatientContent
) -> None:
    assert _advice(questionnaire, mappings, content, temperature="38.6", signs=(CHILLS,)) == [
        "now: You told us: 38.6 °C and chills or shivering. Call your care team now."
    ]
    assert _advice(questionnaire, mappings, content, signs=(COUGH, CHILLS)) == [
        "today: You told us: chills or shivering and a cough. Call your care team today."
    ]
    assert _advice(questionnaire, mappings, content, signs=(BLEEDING,))[0].startswith("now: ")
    assert _advice(questionnaire, mappings, content, signs=(NONE,))[0].startswith("info: ")


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ({"temperature": "29.9"}, "does not look right"),  # plausible 30-45 °C
        ({"temperature": "45.1"}, "does not look right"),
        ({"temperature": "hot"}, "as a number"),
        ({"temperature": "37", "unit": "K"}, "as a number"),
        ({}, "at least one box"),
        ({"signs": (NONE, COUGH)}, "'None of these' and a sign"),
        ({"signs": ("12345",)}, "not on the list"),
        ({"signs": (COUGH,), "checkin": "../Patient/x"}, "expired"),
    ],
)
def test_answers_that_cannot_be_sent(
    form: dict[str, Any], problem: str, questionnaire: dict[str, Any], mappings: Mappings
) -> None:
    with pytest.raises(CheckinError, match=problem):
        read_answers(_form(**form), questionnaire, mappings)


@pytest.mark.parametrize("temperature", ["30.0", "45.0", "37,5"])
def test_answers_at_the_plausible_edges_are_taken(
    temperature: str, questionnaire: dict[str, Any], mappings: Mappings
) -> None:
    assert read_answers(_form(temperature=temperature), questionnaire, mappings).celsius is not None


def test_the_check_in_is_written_as_valid_fhir_with_coded_answers(
    questionnaire: dict[str, Any], mappings: Mappings, now: datetime
) -> None:
    answers = read_answers(_form("38.6", signs=(COUGH, CHILLS)), questionnaire, mappings)
    entries = transaction(answers, "p1", now, questionnaire, mappings)
    qr_id, obs_id = resource_ids(answers)
    assert [e["request"] for e in entries] == [
        {"method": "PUT", "url": f"QuestionnaireResponse/{qr_id}"}, {"method": "PUT", "url": f"Observation/{obs_id}"}
    ]
    response, observation = (e["resource"] for e in entries)
    QuestionnaireResponse.model_validate(response)
    Observation.model_validate(observation)
    assert response["questionnaire"] == f"{questionnaire['url']}|{questionnaire['version']}"
    signs = next(i for i in response["item"] if i["linkId"] == "signs")
    assert [a["valueCoding"]["code"] for a in signs["answer"]] == [CHILLS, COUGH]  # the Questionnaire's order
    assert {a["valueCoding"]["system"] for a in signs["answer"]} == {"http://snomed.info/sct"}
    assert observation["code"]["coding"][0]["code"] == "8310-5"
    assert observation["valueQuantity"] == {"value": 38.6, "unit": "°C", "system": "http://unitsofmeasure.org",
                                            "code": "Cel"}
    assert observation["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{qr_id}"}]
    without = read_answers(_form(signs=(COUGH,)), questionnaire, mappings)
    assert len(transaction(without, "p1", now, questionnaire, mappings)) == 1  # no temperature: no Observation


def test_a_written_check_in_reads_back_as_the_same_answers(
    questionnaire: dict[str, Any], mappings: Mappings, now: datetime
) -> None:
    from azaguard.patient.checkin import answers_from_response

    answers = read_answers(_form("100.9", "[degF]", signs=(COUGH, CHILLS)), questionnaire, mappings)
    written = transaction(answers, "p1", now, questionnaire, mappings)[0]["resource"]
    assert answers_from_response(written, questionnaire, mappings) == answers
    assert answers_from_response({**written, "id": "someone-else"}, questionnaire, mappings) is None
    assert answers_from_response({"resourceType": "Observation", "id": written["id"]}, questionnaire, mappings) is None
