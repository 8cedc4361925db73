"""A diagnosis named only in a script the tables cannot read (issue 24, "which script"): like a medicine, it is
reported as unidentified — on every surface ("Could not identify: ...") and as the infection check that cannot clear
("Identify the diagnosis ...: it could not be read and may be an infection") — never read as "no infection".

Condition.code: "Identification of the condition, problem or diagnosis"; a name the terminology cannot read
identifies nothing azaguard can check."""

from __future__ import annotations

from typing import Any

from azaguard.mappings import load_mappings
from azaguard.resources import resource_set_from_json
from azaguard.service import check_resources
from tests.clinical.builders import NOW
from tests.clinical.test_meaning_pass import CLINICAL, ICD10CM, aza, cc, condition, record, temp

Resource = dict[str, Any]
THAI_PNEUMONIA = "ปอดอักเสบ"  # Thai: a script the tables do not read


def check(*resources: Resource) -> Any:
    bundle = record(aza(), temp(36.8, hours_ago=3), *resources)  # a normal temperature: the check can clear
    return check_resources(resource_set_from_json(bundle), mappings=load_mappings(), now=NOW)


def infection(result: Any) -> list[Any]:
    return [f for f in result.findings if f.rule == "infection-hold"]


def test_a_diagnosis_in_an_unreadable_script_is_unidentified_and_the_check_cannot_clear() -> None:
    result = check(condition({"text": THAI_PNEUMONIA}))
    found = infection(result)
    assert (str(found[0].status), found[0].code) == ("cannot-evaluate", "diagnosis-unidentified")
    assert f"the diagnosis '{THAI_PNEUMONIA}'" in result.verdict.unidentified
    action = next(a for a in result.verdict.actions if a.code == "diagnosis-unidentified")
    assert action.verb == "Identify" and THAI_PNEUMONIA in action.object
    assert "may be an infection" in action.summary and "before the next dose" in action.summary
    assert f"Could not identify: the diagnosis '{THAI_PNEUMONIA}'" in result.verdict.basis


def test_without_the_diagnosis_the_check_clears() -> None:
    assert str(infection(check())[0].status) == "ok"


def test_a_script_the_tables_read_is_recognised_not_unidentified() -> None:
    result = check(condition({"text": "肺炎"}))  # zh: pneumonia
    assert str(infection(result)[0].status) == "hold"
    assert not any("肺炎" in u for u in result.verdict.unidentified)


def test_a_coded_diagnosis_with_an_unreadable_name_is_read_by_its_code() -> None:
    result = check(condition(cc("J18.9", ICD10CM, THAI_PNEUMONIA) | {"text": THAI_PNEUMONIA}))
    assert str(infection(result)[0].status) == "hold"
    assert not result.verdict.unidentified


def test_a_refuted_or_resolved_unreadable_diagnosis_does_not_block_the_check() -> None:
    refuted = condition({"text": THAI_PNEUMONIA}) | {
        "verificationStatus": cc("refuted", "http://terminology.hl7.org/CodeSystem/condition-ver-status")}
    resolved = condition({"text": THAI_PNEUMONIA}, status=None) | {"clinicalStatus": cc("resolved", CLINICAL)}
    for entry in (refuted, resolved):
        assert str(infection(check(entry))[0].status) == "ok"


def test_an_unknown_latin_name_is_not_unidentified() -> None:
    """A Latin name the tables do not list is read (and is none of the infections); only an unreadable script is
    'could not identify'."""
    result = check(condition({"text": "Morbus Example"}))
    assert str(infection(result)[0].status) == "ok"
    assert not result.verdict.unidentified


def test_imuran_in_hebrew_as_written_in_public_texts_is_azathioprine() -> None:
    """אימוראן (the spelling public Hebrew texts use, added when the transcriptions were checked)."""
    from tests.clinical.test_meaning_pass import med

    result = check_resources(resource_set_from_json(record(med({"text": "אימוראן 50 מ\"ג"}))),
                             mappings=load_mappings(), now=NOW)
    assert any(o.drugs.azathioprine is not None for o in result.record.medicine_uses)
