"""Infections as clinicians code them (clinical-rules.md §3, §8): one row per diagnosis as an EHR sends it.

Each row: the diagnosis in plain words, the Condition, and the infection rule's headline for a patient on
azathioprine 50 mg twice daily with a normal temperature (36.8 °C, 6 h ago). "hold" means the diagnosis
makes the infection hold; "ok" means it does not by itself (it may be context, or not an infection at all).
"""

from __future__ import annotations

import pytest

from azaguard.findings import Finding
from tests.clinical.builders import (
    ICD10,
    ICD10CM_OID,
    SNOMED,
    WHO_ICD10,
    Resource,
    azathioprine,
    diagnosis,
    for_rule,
    named_condition,
    observation,
)
from tests.words import said


def infection(*resources: Resource) -> list[Finding]:
    normal_temperature = observation("8310-5", 36.8, "Cel", days_ago=0, hours_ago=6)
    return for_rule("infection-hold", azathioprine(), normal_temperature, *resources)


def headline(*resources: Resource) -> str:
    return str(infection(*resources)[0].status)


CODED = [
    # --- serious infections outside chapter 1: must hold ---
    ("septic shock, ICD-10-CM R65.21", diagnosis("R65.21", "Severe sepsis with septic shock"), "hold"),
    ("severe sepsis without shock, R65.20", diagnosis("R65.20"), "hold"),
    ("sepsis, WHO ICD-10 A41.9 with the WHO system", diagnosis("A41.9", "Sepsis, unspecified", system=WHO_ICD10),
     "hold"),
    ("sepsis, WHO ICD-10 undotted A419", diagnosis("A419", system=WHO_ICD10), "hold"),
    ("sepsis, ICD-10-CM by its OID", diagnosis("A41.9", system=ICD10CM_OID), "hold"),
    ("sepsis, lower case and no dot", diagnosis("a419"), "hold"),
    ("WHO septic shock R57.2", diagnosis("R57.2", system=WHO_ICD10), "hold"),
    ("WHO SIRS of infectious origin with organ failure R65.1", diagnosis("R65.1", system=WHO_ICD10), "hold"),
    ("bacterial meningitis G00.9", diagnosis("G00.9", "Bacterial meningitis, unspecified"), "hold"),
    ("acute infective endocarditis I33.0", diagnosis("I33.0"), "hold"),
    ("septic arthritis of the knee M00.9", diagnosis("M00.9", "Pyogenic arthritis, unspecified"), "hold"),
    ("acute osteomyelitis M86.10", diagnosis("M86.10"), "hold"),
    ("generalised acute peritonitis K65.0", diagnosis("K65.0"), "hold"),
    ("lung abscess J85.2", diagnosis("J85.2"), "hold"),
    ("empyema J86.9", diagnosis("J86.9"), "hold"),
    ("acute pyelonephritis N10", diagnosis("N10", "Acute pyelonephritis"), "hold"),
    ("UTI, site not specified N39.0", diagnosis("N39.0"), "hold"),
    ("cellulitis of the right lower limb L03.115", diagnosis("L03.115"), "hold"),
    ("wound infection after surgery T81.40XA", diagnosis("T81.40XA"), "hold"),
    ("acute otitis media H66.90", diagnosis("H66.90"), "hold"),
    ("mastoiditis H70.90 (a code the release may not list: judged by its parent)", diagnosis("H70.90"), "hold"),
    ("community-acquired pneumonia J18.9", diagnosis("J18.9", "Pneumonia, unspecified organism"), "hold"),
    ("COVID-19 U07.1", diagnosis("U07.1", "COVID-19"), "hold"),
    ("fever, unspecified R50.9", diagnosis("R50.9"), "hold"),
    ("SNOMED septic shock 76571007", diagnosis("76571007", "Septic shock", system=SNOMED), "hold"),
    ("SNOMED febrile neutropenia 409089005", diagnosis("409089005", system=SNOMED), "hold"),
    ("SNOMED osteomyelitis 60168000", diagnosis("60168000", system=SNOMED), "hold"),
    # --- context (chronic, latent, sequela, carrier, superficial): not a hold by itself ---
    ("chronic hepatitis B B18.1 alone", diagnosis("B18.1", "Chronic viral hepatitis B"), "ok"),
    ("HIV disease B20 alone", diagnosis("B20", "Human immunodeficiency virus [HIV] disease"), "ok"),
    ("latent tuberculosis Z22.7", diagnosis("Z22.7", "Latent tuberculosis"), "ok"),
    ("positive tuberculin test R76.11", diagnosis("R76.11"), "ok"),
    ("sequelae of tuberculosis B90.9", diagnosis("B90.9"), "ok"),
    ("tinea pedis B35.3", diagnosis("B35.3", "Tinea pedis"), "ok"),
    ("sequela of a post-procedural infection T81.40XS", diagnosis("T81.40XS"), "ok"),
    ("SNOMED chronic hepatitis C 128302006", diagnosis("128302006", system=SNOMED), "ok"),
    # --- not infections although "fever" may be in the name ---
    ("hay fever J30.1", diagnosis("J30.1", "Allergic rhinitis due to pollen"), "ok"),
    ("familial Mediterranean fever M04.1", diagnosis("M04.1", "Periodic fever syndromes"), "ok"),
    ("acute rheumatic fever I00", diagnosis("I00", "Rheumatic fever without heart involvement"), "ok"),
    ("vaping-related lung injury U07.0 (not COVID)", diagnosis("U07.0", "Vaping-related disorder"), "ok"),
    ("SIRS of non-infectious origin R65.10", diagnosis("R65.10"), "ok"),
    ("WHO SIRS of non-infectious origin R65.2 (not the CM severe sepsis)", diagnosis("R65.2", system=WHO_ICD10),
     "ok"),
    ("drug-induced fever R50.2", diagnosis("R50.2"), "ok"),
    ("neutropenia D70.9 without fever", diagnosis("D70.9", "Neutropenia, unspecified"), "ok"),
    ("SNOMED hay fever 21719001", diagnosis("21719001", "Hay fever", system=SNOMED), "ok"),
    # --- known only by name ---
    ("name only: Hay fever", named_condition("Hay fever"), "ok"),
    ("name only: Familial Mediterranean fever", named_condition("Familial Mediterranean fever"), "ok"),
    ("name only: Non-infectious uveitis", named_condition("Non-infectious uveitis"), "ok"),
    ("name only: Chronic hepatitis B infection", named_condition("Chronic hepatitis B infection"), "ok"),
    ("name only: Fever", named_condition("Fever"), "hold"),
    ("name only: Community-acquired pneumonia", named_condition("Community-acquired pneumonia"), "hold"),
    ("name only: Scarlet fever (an infection)", named_condition("Scarlet fever"), "hold"),
]


@pytest.mark.parametrize(("situation", "condition", "expected"), CODED, ids=[c[0] for c in CODED])
def test_diagnosis_as_coded(situation: str, condition: Resource, expected: str) -> None:
    assert headline(condition) == expected, situation


def test_the_finding_names_the_code_and_its_value_set() -> None:
    (hold,) = [f for f in infection(diagnosis("R65.21")) if f.code == "active-infection"]
    assert "ICD-10-CM R65.21 Severe sepsis with septic shock" in hold.evidence[0].description


def test_context_is_shown_with_the_ok_never_silently() -> None:
    (ok,) = infection(diagnosis("B18.1", "Chronic viral hepatitis B"))
    assert ok.code == "no-infection-signs"
    assert "not a hold by itself" in said(ok).detail and "Chronic viral hepatitis B" in said(ok).detail


ENCOUNTER = [
    ("pneumonia diagnosed at an encounter 2 days ago, no clinicalStatus",
     diagnosis("J18.9", clinical=None, recorded_days_ago=2), "hold"),
    ("pneumonia encounter diagnosis dated only by onset 3 days ago",
     diagnosis("J18.9", clinical=None, recorded_days_ago=None, onset_days_ago=3), "hold"),
    ("pneumonia encounter diagnosis 60 days ago (outside the window)",
     diagnosis("J18.9", clinical=None, recorded_days_ago=60), "ok"),
    ("pneumonia encounter diagnosis with no date at all", diagnosis("J18.9", clinical=None, recorded_days_ago=None),
     "cannot-evaluate"),
    ("pneumonia encounter diagnosis dated next year", diagnosis("J18.9", clinical=None, recorded_days_ago=-300),
     "cannot-evaluate"),
    ("pneumonia with clinicalStatus resolved", diagnosis("J18.9", clinical="resolved"), "ok"),
    ("pneumonia active since years (problem list)", diagnosis("J18.9", recorded_days_ago=900), "hold"),
]


@pytest.mark.parametrize(("situation", "condition", "expected"), ENCOUNTER, ids=[c[0] for c in ENCOUNTER])
def test_encounter_diagnosis_counts_by_recency(situation: str, condition: Resource, expected: str) -> None:
    assert headline(condition) == expected, situation


def test_encounter_diagnosis_with_an_abatement_has_ended() -> None:
    dx = diagnosis("J18.9", clinical=None, recorded_days_ago=3)
    dx["abatementDateTime"] = dx["recordedDate"]
    assert headline(dx) == "ok"


def test_coded_neutropenia_with_coded_fever_is_febrile_neutropenia() -> None:
    # ICD-10-CM codes febrile neutropenia as D70.x plus R50.81 (fever presenting with conditions elsewhere).
    found = infection(diagnosis("D70.1", "Agranulocytosis secondary to cancer chemotherapy"), diagnosis("R50.81"))
    assert (found[0].code, str(found[0].status), str(found[0].severity)) == (
        "febrile-neutropenia-coded", "hold", "critical")


def test_coded_neutropenia_with_measured_fever_is_febrile_neutropenia() -> None:
    fever = observation("8310-5", 38.6, "Cel", days_ago=0, hours_ago=2)
    found = for_rule("infection-hold", azathioprine(), fever, diagnosis("D70.9"))
    assert "febrile-neutropenia-coded" in {f.code for f in found}
    assert found[0].severity == "critical"


def test_icd_system_without_our_uri_is_not_guessed() -> None:
    # ICD-looking code in an unknown system: only the name could count, and "J30.1" alone has none.
    assert headline(diagnosis("A41.9", system="http://example.org/local-codes")) == "ok"


def test_icd10cm_value_set_uses_the_cm_system_not_who() -> None:
    # R65.2 is severe sepsis in ICD-10-CM but non-infectious SIRS in WHO ICD-10.
    assert headline(diagnosis("R65.2", system=ICD10)) == "hold"
    assert headline(diagnosis("R65.2", system=WHO_ICD10)) == "ok"


STATUSES = [
    ("clinicalStatus 'Active' in the wrong case", diagnosis("J18.9", clinical="Active"), "hold"),
    ("an unknown clinicalStatus on a recent diagnosis is judged by its date",
     diagnosis("J18.9", clinical="unknown", recorded_days_ago=1), "hold"),
    ("an unknown clinicalStatus on an undated diagnosis", diagnosis("J18.9", clinical="unknown",
                                                                   recorded_days_ago=None), "cannot-evaluate"),
    ("remission", diagnosis("J18.9", clinical="remission"), "ok"),
]


@pytest.mark.parametrize(("situation", "condition", "expected"), STATUSES, ids=[c[0] for c in STATUSES])
def test_clinical_status_as_sent(situation: str, condition: Resource, expected: str) -> None:
    assert headline(condition) == expected, situation


def test_refuted_in_any_case_never_holds() -> None:
    dx = diagnosis("A41.9")
    dx["verificationStatus"] = {"coding": [{"code": "Refuted"}]}
    assert headline(dx) == "ok"


def test_a_name_that_rules_the_infection_out_does_not_hold() -> None:
    assert headline(named_condition("Sepsis ruled out")) == "ok"
    assert headline(named_condition("Rule out sepsis")) == "hold"  # suspected: fail safe
