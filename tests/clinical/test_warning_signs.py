"""The leaflets' warning signs and side effects (clinical-rules.md §9), wherever an EHR puts them.

Every scenario: a patient on azathioprine 50 mg twice daily, temperature 36.8 °C six hours ago, neutrophils
4.0 ×10⁹/L two days ago, plus what the row adds. The infection rule's headline is what a clinician sees first.
"""

from __future__ import annotations

import pytest

from tests.clinical.builders import SNOMED, Resource, azathioprine, for_rule, observation
from tests.clinical.signs_builders import (
    ICD10CM,
    PRESENT,
    WHO,
    cc,
    encounter_diagnosis,
    headline,
    infection,
    questionnaire_response,
    symptom_observation,
    yes_no,
)
from tests.words import said

# --- the 7-day window, at the boundary and one step each side ---------------------------------------------

@pytest.mark.parametrize(("days_ago", "expected"), [
    (6.9, ("caution", "warning-signs")),
    (7.0, ("caution", "warning-signs")),  # the window is inclusive
    (7.1, ("ok", "no-infection-signs")),
])
def test_window_of_seven_days(days_ago: float, expected: tuple[str, str]) -> None:
    assert headline(encounter_diagnosis(ICD10CM, "R07.0", "Pain in throat", days_ago=days_ago)) == expected


def test_the_caution_says_what_and_when_and_what_to_do() -> None:
    (f,) = [f for f in infection(encounter_diagnosis(ICD10CM, "R07.0", "Pain in throat", days_ago=1))
            if f.code == "warning-signs"]
    assert said(f).summary == ("Assess for infection before the next dose — warning sign of infection: Pain in throat, "
                               "recorded 31 Oct 2026 12:00.")
    assert f.evidence[0].description.startswith("warning sign (sore throat or pain on swallowing): Pain in throat")
    assert "ICD-10-CM R07.0" in f.evidence[0].description


# --- status: resolved, refuted, no status, entered in error ------------------------------------------------

@pytest.mark.parametrize(("clinical", "verification", "expected"), [
    ("active", "confirmed", "caution"),
    ("recurrence", None, "caution"),
    (None, None, "caution"),  # an encounter diagnosis: by its date
    ("resolved", None, "ok"),
    ("inactive", None, "ok"),
    ("active", "refuted", "ok"),
    ("active", "entered-in-error", "ok"),
])
def test_status_decides(clinical: str | None, verification: str | None, expected: str) -> None:
    sign = encounter_diagnosis(SNOMED, "162397003", "Pain in throat", clinical=clinical, verification=verification)
    assert headline(sign)[0] == expected


def test_an_abated_sign_does_not_count() -> None:
    sign = encounter_diagnosis(SNOMED, "49727002", "Cough", clinical="active", days_ago=3, abated_days_ago=1)
    assert headline(sign)[0] == "ok"


def test_an_infection_code_that_names_a_sign_holds_as_an_infection_and_is_not_listed_twice() -> None:
    found = infection(encounter_diagnosis(ICD10CM, "B37.0", "Candidal stomatitis"))
    assert [f.code for f in found if f.status != "ok"] == ["active-infection"]


def test_a_hay_fever_sneeze_and_a_headache_are_not_signs() -> None:
    assert headline(
        encounter_diagnosis(ICD10CM, "J30.1", "Allergic rhinitis due to pollen", clinical="active"),
        encounter_diagnosis(ICD10CM, "R06.7", "Sneezing"),
        encounter_diagnosis(ICD10CM, "R51.9", "Headache, unspecified"),
    )[0] == "ok"


def test_excluded_names_are_not_the_sign() -> None:
    local = cc("http://example.org/local", "W1", "Whooping cough vaccination discussed")
    assert headline(symptom_observation(local))[0] == "ok"


# --- where the sign is recorded -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [True, cc(*PRESENT), "yes", None])
def test_a_nursing_observation_present(value: object) -> None:
    assert headline(symptom_observation(cc(SNOMED, "43724002", "Chill"), value=value))[0] == "caution"


@pytest.mark.parametrize("value", [False, cc(SNOMED, "2667000", "Absent"), "no"])
def test_a_nursing_observation_absent_is_evidence_of_absence(value: object) -> None:
    assert headline(symptom_observation(cc(SNOMED, "43724002", "Chill"), value=value))[0] == "ok"


def test_questionnaire_nested_items_and_several_signs_listed_together() -> None:
    qr = questionnaire_response([{"linkId": "symptoms", "text": "Symptoms", "item": [
        yes_no("sore-throat", None, True),
        yes_no("burning-urine", "Burning when urinating?", True),
        yes_no("rash", "A new skin rash?", False),
    ]}])
    (f,) = [f for f in infection(qr) if f.code == "warning-signs"]
    line = said(f).summary
    assert "sore-throat" in line and "Burning when urinating" in line and "rash" not in line.lower()
    assert "urinating?" not in line  # a check-in's question is said without its "?"


def test_questionnaire_items_coded_by_the_questionnaire_on_the_server_copy_in_the_record() -> None:
    questionnaire = {"resourceType": "Questionnaire", "id": "q", "url": "http://example.org/Q/checkin",
                     "status": "active", "item": [{"linkId": "1", "type": "boolean",
                                                   "code": [{"system": SNOMED, "code": "62315008"}]}]}
    qr = questionnaire_response([{"linkId": "1", "answer": [{"valueBoolean": True}]}],
                                questionnaire="http://example.org/Q/checkin|2.0")
    assert headline(questionnaire, qr)[0] == "caution"


def test_an_entered_in_error_questionnaire_is_not_read() -> None:
    qr = questionnaire_response([yes_no("cough", "Cough?", True)], status="entered-in-error")
    assert headline(qr)[0] == "ok"


def test_who_icd10_and_a_month_only_date_read_as_late_as_it_can_be() -> None:
    sign = encounter_diagnosis(WHO, "R05", "Cough")
    sign["recordedDate"] = "2026-10"  # NOW is 1 Nov 2026: "October" may be yesterday
    (f,) = [f for f in infection(sign) if f.code == "warning-signs"]
    assert "month only" in f.evidence[0].description and "31 Oct 2026" in f.evidence[0].description


# --- which signs rise to a hold ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("neutrophils", "expected"), [(1.5, "hold"), (1.6, "caution"), (1.7, "caution")])
def test_a_sign_with_low_neutrophils_holds(neutrophils: float, expected: str) -> None:
    found = infection(encounter_diagnosis(ICD10CM, "R07.0", "Pain in throat"),
                      observation("751-8", neutrophils, "10*9/L", days_ago=0, hours_ago=1))
    assert str(found[0].status) == expected


def test_a_sign_with_fever_is_the_fever_hold_and_the_sign_is_listed() -> None:
    found = infection(encounter_diagnosis(ICD10CM, "R68.83", "Chills (without fever)"),
                      observation("8310-5", 38.4, "Cel", days_ago=0, hours_ago=1))
    assert [f.code for f in found][:2] == ["fever", "warning-signs"]


# --- the leaflet's fever line -------------------------------------------------------------------------------

@pytest.mark.parametrize(("celsius", "expected"), [
    (37.7, ("ok", "no-infection-signs")), (37.8, ("caution", "leaflet-fever")), (37.99, ("caution", "leaflet-fever")),
    (38.0, ("hold", "fever")),
])
def test_leaflet_fever_line(celsius: float, expected: tuple[str, str]) -> None:
    assert headline(observation("8310-5", celsius, "Cel", days_ago=0, hours_ago=1)) == expected


# --- side effects point at their check ------------------------------------------------------------------------

def _counts() -> list[Resource]:
    return [azathioprine(), observation("6690-2", 6.0, "10*9/L", days_ago=2),
            observation("751-8", 4.0, "10*9/L", days_ago=2), observation("777-3", 250, "10*9/L", days_ago=2),
            observation("1742-6", 30, "U/L", days_ago=2)]


def test_bruising_points_at_platelets_and_a_cbc() -> None:
    (f,) = [f for f in for_rule("blood-counts", *_counts(), encounter_diagnosis(ICD10CM, "R23.3", "Spontaneous "
                                                                                       "ecchymoses"))]
    assert f.status == "caution" and f.code == "side-effect-reported"
    assert "check platelets and a full blood count now" in said(f).detail


def test_loss_of_appetite_points_at_liver_tests() -> None:
    found = for_rule("liver", *_counts(), encounter_diagnosis(ICD10CM, "R63.0", "Anorexia"))
    assert found[0].code == "side-effect-reported" and "liver tests" in said(found[0]).summary


def test_anorexia_nervosa_is_not_a_side_effect() -> None:
    found = for_rule("liver", *_counts(), symptom_observation(cc("http://example.org/local", "A1", "Anorexia nervosa")))
    assert str(found[0].status) == "ok"


def test_black_stools_are_a_warning_sign_and_point_at_the_blood_count() -> None:
    melaena = encounter_diagnosis(ICD10CM, "K92.1", "Melena")
    assert [f.code for f in for_rule("blood-counts", *_counts(), melaena)] == ["side-effect-reported"]
    assert headline(melaena)[0] == "caution"


# --- the patient check-in (issue 21's Questionnaire: one "signs" item answered with SNOMED codes) ----------------

CHECKIN = "https://azaguard.example/fhir/Questionnaire/azaguard-warning-signs|2026.12.1"


def _checkin(*codes: tuple[str, str]) -> Resource:
    answers = [{"valueCoding": {"system": SNOMED, "code": code, "display": display}} for code, display in codes]
    return questionnaire_response([{"linkId": "signs", "text": "Do you have any of these?", "answer": answers}],
                                  questionnaire=CHECKIN)


@pytest.mark.parametrize(("code", "display", "rule_id", "expected"), [
    ("386661006", "Fever", "infection-hold", "warning-signs"),  # feverish, not measured: a sign, not the hold
    ("79740000", "Candidiasis of mouth", "infection-hold", "warning-signs"),
    ("46742003", "Skin ulcer", "infection-hold", "warning-signs"),
    ("125667009", "Contusion", "blood-counts", "side-effect-reported"),
    ("131148009", "Bleeding", "blood-counts", "side-effect-reported"),
    ("26284000", "Ulcer of mouth", "blood-counts", "side-effect-reported"),
])
def test_checkin_answers(code: str, display: str, rule_id: str, expected: str) -> None:
    found = for_rule(rule_id, *_counts(), observation("8310-5", 36.8, "Cel", days_ago=0, hours_ago=6),
                     _checkin((code, display)))
    assert found[0].code == expected


def test_checkin_none_of_these_is_no_sign() -> None:
    assert headline(_checkin(("260413007", "None")))[0] == "ok"
