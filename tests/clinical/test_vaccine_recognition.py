"""Vaccines however they are ordered or recorded (issue 7, clinical-rules.md sections 2 and 8): CVX as codes
(leading zeros, the CVX OID), NDC, CPT, SNOMED, brand and generic names. A live vaccine is held; a non-live
one is not; a product nobody can classify goes to a clinician, never cleared.
"""

from __future__ import annotations

import pytest

from tests.clinical.builders import (
    CPT,
    CVX,
    CVX_OID,
    NDC,
    PATIENT_REF,
    SNOMED,
    Resource,
    azathioprine,
    coded_immunization,
    coded_vaccine_order,
    for_rule,
    recommendation,
    status_of,
    when,
)


def headline(*resources: Resource) -> tuple[str, str]:
    f = for_rule("vaccination-hold", azathioprine(), *resources)[0]
    return str(f.status), f.code


@pytest.mark.parametrize(
    ("story", "order"),
    [
        ("MMR ordered with CVX '3' (no leading zero)", coded_vaccine_order("3")),
        ("MMR ordered with the CVX OID as system", coded_vaccine_order("03", system=CVX_OID)),
        ("Epic pharmacy order of M-M-R II by NDC 00006-4681-00", coded_vaccine_order("00006-4681-00", system=NDC)),
        ("Varivax by 11-digit NDC 00006482700", coded_vaccine_order("00006482700", system=NDC)),
        (
            "ambulatory procedure order: CPT 90716 varicella",
            coded_vaccine_order("90716", system=CPT, resource="ServiceRequest"),
        ),
        (
            "procedure order: SNOMED MMR vaccination",
            coded_vaccine_order("38598009", system=SNOMED, resource="ServiceRequest"),
        ),
        ("travel clinic: 'Stamaril' as text", coded_vaccine_order(None, text="Stamaril (yellow fever) 0.5 ml")),
        ("travel clinic: 'Vivotif' capsules", coded_vaccine_order(None, text="Vivotif oral capsules")),
        ("cholera: 'Vaxchora'", coded_vaccine_order(None, text="Vaxchora")),
        ("paediatric: RotaTeq", coded_vaccine_order(None, text="RotaTeq oral")),
        ("UK school programme: Fluenz Tetra nasal spray", coded_vaccine_order(None, text="Fluenz Tetra nasal spray")),
        (
            "generic: 'live attenuated influenza vaccine'",
            coded_vaccine_order(None, text="live attenuated influenza vaccine"),
        ),
        ("generic: 'MMR' as a ServiceRequest text", coded_vaccine_order(None, text="MMR", resource="ServiceRequest")),
        ("dengue: Qdenga", coded_vaccine_order(None, text="Qdenga")),
        ("BCG by name", coded_vaccine_order(None, text="BCG vaccine percutaneous")),
    ],
)
def test_live_vaccines_are_held_however_ordered(story: str, order: Resource) -> None:
    assert headline(order) == ("hold", "live-vaccine-planned"), story


@pytest.mark.parametrize(
    ("story", "order"),
    [
        (
            "Shingrix (recombinant zoster) is the preferred zoster vaccine on azathioprine",
            coded_vaccine_order(None, text="Shingrix 0.5 mL"),
        ),
        ("Shingrix by CPT 90750", coded_vaccine_order("90750", system=CPT, resource="ServiceRequest")),
        ("Shingrix by NDC", coded_vaccine_order("58160-0823-11", system=NDC)),
        (
            "JYNNEOS: 'live, non-replicating' is not a live vaccine",
            coded_vaccine_order(None, text="Smallpox and monkeypox vaccine, live, non-replicating"),
        ),
        ("Fluzone (inactivated influenza)", coded_vaccine_order(None, text="Fluzone High-Dose Quadrivalent")),
        ("pneumococcal by name", coded_vaccine_order(None, text="Pneumococcal 20-valent conjugate vaccine")),
    ],
)
def test_non_live_vaccines_are_not_held(story: str, order: Resource) -> None:
    assert headline(order) == ("caution", "inactivated-vaccine-planned"), story


@pytest.mark.parametrize(
    ("story", "order"),
    [
        ("'influenza vaccine' (live or not?)", coded_vaccine_order(None, text="Influenza vaccine")),
        ("'zoster vaccine' without the product", coded_vaccine_order(None, text="Zoster vaccine")),
        ("a CVX code in no list", coded_vaccine_order("999")),
    ],
)
def test_vaccines_that_cannot_be_classified_go_to_a_clinician(story: str, order: Resource) -> None:
    assert headline(order) == ("caution", "ambiguous-vaccine-planned"), story


def test_a_drug_order_named_intranasal_is_not_a_vaccine() -> None:
    nasal = coded_vaccine_order(None, text="Fluticasone 50 mcg intranasal spray")
    assert headline(nasal) == ("ok", "no-vaccine-planned")


def test_a_live_vaccine_given_by_ndc_only_during_therapy_is_flagged() -> None:
    given = coded_immunization("00006-4826-00", system=NDC, days_ago=10)
    assert headline(given) == ("caution", "live-vaccine-given")


def test_an_unclassifiable_dose_given_during_therapy_is_shown_for_review() -> None:
    given = coded_immunization("LOCAL-VAX-7", system="urn:local", text="Travel vaccine", days_ago=10)
    f = for_rule("vaccination-hold", azathioprine(), given)
    assert [x.code for x in f] == ["unidentified-vaccine-given"] and f[0].status == "caution"


def test_a_shingrix_dose_given_during_therapy_is_not_flagged() -> None:
    given = coded_immunization("187", system=CVX, days_ago=10)
    assert headline(given) == ("ok", "no-vaccine-planned")


def _forecast(forecast_status: dict[str, object]) -> Resource:
    r = recommendation("03")
    r["recommendation"][0]["forecastStatus"] = forecast_status
    return r


@pytest.mark.parametrize(
    ("story", "forecast"),
    [
        ("forecastStatus as text only", {"text": "Due"}),
        ("forecastStatus coding without a code", {"coding": [{"display": "Due"}]}),
        ("forecastStatus empty", {"coding": [{"system": "http://example.org"}]}),
    ],
)
def test_an_unreadable_forecast_is_never_taken_as_not_due(story: str, forecast: dict[str, object]) -> None:
    assert headline(_forecast(forecast)) == ("hold", "live-vaccine-planned"), story


def test_a_forecast_of_immune_is_not_planned() -> None:
    assert status_of("vaccination-hold", azathioprine(), recommendation("03", forecast="immune")) == "ok"


def test_a_live_vaccine_given_on_the_ward_as_an_administration_is_flagged() -> None:
    given: Resource = {
        "resourceType": "MedicationAdministration",
        "id": "ma-vax",
        "status": "completed",
        "medicationCodeableConcept": {"text": "Varivax 0.5 mL SC"},
        "subject": {"reference": PATIENT_REF},
        "effectiveDateTime": when(5),
    }
    assert headline(given) == ("caution", "live-vaccine-given")


@pytest.mark.parametrize(
    ("story", "order"),
    [
        (
            "measles/mumps/rubella immunity check before starting: 'Measles IgG antibody' lab order",
            coded_vaccine_order(None, text="Measles IgG antibody", resource="ServiceRequest"),
        ),
        (
            "varicella serology",
            coded_vaccine_order(None, text="Varicella zoster virus antibody titre", resource="ServiceRequest"),
        ),
        (
            "post-exposure VariZIG (immune globulin, not a vaccine)",
            coded_vaccine_order(None, text="VariZIG varicella zoster immune globulin 125 units"),
        ),
    ],
)
def test_tests_and_immune_globulins_named_like_a_live_vaccine_are_not_held(story: str, order: Resource) -> None:
    assert headline(order) == ("ok", "no-vaccine-planned"), story
