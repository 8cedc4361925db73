"""Drug recognition (issue 7): azathioprine, interacting drugs and systemic anti-infectives however an EHR
codes or names them — RxNorm at any level, ATC, SNOMED/dm+d, or international names and brands.

Each scenario: a patient record as an EHR sends it -> what the clinician should see.
"""

from __future__ import annotations

import pytest

from tests.clinical.builders import (
    ATC,
    DMD,
    RXNORM,
    SNOMED,
    Resource,
    azathioprine,
    drug,
    medication_request,
    observation,
    recommendation,
    status_of,
)
from tests.words import said


def normal_temp() -> Resource:
    return observation("8310-5", 36.8, "Cel", hours_ago=2, days_ago=0)


def aza_coded(code: str | None, system: str = RXNORM, display: str | None = None, text: str | None = None) -> Resource:
    return medication_request(code, system=system, display=display, text=text)


# --- azathioprine, however it is written: a live MMR vaccine due must be held ----------------------


@pytest.mark.parametrize(
    ("story", "order"),
    [
        (
            "UK GP system: dm+d VMP 'Azathioprine 50mg tablets' only",
            aza_coded("327070006", DMD, "Azathioprine 50mg tablets"),
        ),
        ("UK hospital: dm+d AMP code sent under the SNOMED URI", aza_coded("42264911000001100", SNOMED, None)),
        ("European system: ATC L04AX01 only", aza_coded("L04AX01", ATC, "Azathioprin")),
        (
            "Epic: RxNorm branded drug Imuran 50 MG (SBD 105611)",
            aza_coded("105611", RXNORM, "Imuran 50 MG Oral Tablet"),
        ),
        ("RxNorm brand name concept Azasan (BN 404872)", aza_coded("404872", RXNORM, "Azasan")),
        ("German chart: free text 'Azathioprin 50 mg 1-0-1'", aza_coded(None, text="Azathioprin 50 mg 1-0-1")),
        ("Spanish chart: 'Azatioprina 50 mg comprimidos'", aza_coded(None, text="Azatioprina 50 mg comprimidos")),
        ("Swiss brand Imurek", aza_coded(None, text="Imurek 50 mg Filmtabletten")),
        ("German brand Azafalk", aza_coded(None, text="Azafalk 75 mg")),
        ("EU oral suspension Jayempi", aza_coded(None, text="Jayempi 10 mg/ml oral suspension")),
        ("French brand Imurel", aza_coded(None, text="IMUREL 50 mg cp")),
        (
            "a local code the mappings do not know, named in a sentence",
            aza_coded("LOCAL-99", "urn:local", "take azathioprine 100mg daily"),
        ),
    ],
)
def test_azathioprine_is_recognised_however_it_is_written(story: str, order: Resource) -> None:
    assert status_of("vaccination-hold", order, recommendation("03")) == "hold", story


@pytest.mark.parametrize(
    ("story", "order"),
    [
        ("a brand-like word that only starts with Imuran", aza_coded(None, text="Imuranex 5 mg")),
        ("azacitidine (a different drug) is not azathioprine", aza_coded("1251", RXNORM, "azacitidine")),
        ("mercaptopurine is a thiopurine but not azathioprine", aza_coded("103", RXNORM, "mercaptopurine")),
    ],
)
def test_look_alike_names_are_not_azathioprine(story: str, order: Resource) -> None:
    assert status_of("vaccination-hold", order, recommendation("03")) == "not-applicable", story


# --- systemic anti-infectives across J01/J02/J04/J05 -------------------------------------------


@pytest.mark.parametrize(
    ("story", "order"),
    [
        ("IV meropenem by RxNorm ingredient", drug("29561", "meropenem")),
        ("carbapenem by ATC code only (European system)", drug("J01DH03", "ertapenem", system=ATC)),
        (
            "an ATC J01 code the curated list does not name: the class decides",
            drug("J01XX99", "new antibacterial", system=ATC),
        ),
        ("aminoglycoside by name: gentamicin IV", drug("LOCAL", "Gentamicin 80 mg IV infusion", system="urn:local")),
        ("lipopeptide by brand: Cubicin", drug("LOCAL", "Cubicin 500 mg", system="urn:local")),
        ("echinocandin by name: micafungin", drug("LOCAL", "micafungin 100 mg IV", system="urn:local")),
        ("polyene by brand: AmBisome", drug("LOCAL", "AmBisome 3 mg/kg", system="urn:local")),
        ("azole by brand: Noxafil", drug("LOCAL", "Noxafil 300 mg delayed-release tablet", system="urn:local")),
        (
            "herpes antiviral, British spelling: aciclovir tablets",
            drug("LOCAL", "Aciclovir 800 mg tablets", system="urn:local"),
        ),
        ("influenza antiviral by brand: Tamiflu", drug("LOCAL", "Tamiflu 75 mg capsule", system="urn:local")),
        ("HIV antiretroviral by brand: Biktarvy", drug("LOCAL", "Biktarvy", system="urn:local")),
        ("hepatitis C antiviral by brand: Epclusa", drug("LOCAL", "Epclusa 400/100", system="urn:local")),
        ("antimycobacterial, INN spelling: rifampicin", drug("LOCAL", "Rifampicin 600 mg", system="urn:local")),
        ("UK name: co-amoxiclav 625 mg", drug("LOCAL", "Co-amoxiclav 500mg/125mg tablets", system="urn:local")),
        ("UK name: flucloxacillin", drug("LOCAL", "Flucloxacillin 500mg capsules", system="urn:local")),
    ],
)
def test_systemic_anti_infectives_make_an_infection_hold(story: str, order: Resource) -> None:
    assert status_of("infection-hold", azathioprine(), normal_temp(), order) == "hold", story


@pytest.mark.parametrize(
    ("story", "order"),
    [
        ("topical aciclovir cream for cold sores", drug("LOCAL", "Aciclovir 5% cream", system="urn:local")),
        ("chloramphenicol eye drops", drug("LOCAL", "Chloramphenicol 0.5% eye drops", system="urn:local")),
        (
            "an unrelated drug whose name contains an antibiotic's letters (Ciprofibrate is not Cipro)",
            drug("LOCAL", "Ciprofibrate 100 mg", system="urn:local"),
        ),
    ],
)
def test_non_systemic_or_look_alike_products_are_not_an_infection_hold(story: str, order: Resource) -> None:
    assert status_of("infection-hold", azathioprine(), normal_temp(), order) == "ok", story


# --- interacting drugs, international names and brands ---------------------------------------------


@pytest.mark.parametrize(
    ("story", "order", "expected"),
    [
        ("allopurinol by UK brand Zyloric", drug("LOCAL", "Zyloric 300 mg", system="urn:local"), "hold"),
        ("allopurinol IV brand Aloprim", drug("LOCAL", "Aloprim 500 mg vial", system="urn:local"), "hold"),
        ("febuxostat by EU brand Adenuric", drug("LOCAL", "Adenuric 80 mg", system="urn:local"), "hold"),
        ("febuxostat by ATC M04AA03", drug("M04AA03", "Febuxostat", system=ATC), "hold"),
        ("co-trimoxazole by brand Septra DS", drug("LOCAL", "Septra DS", system="urn:local"), "caution"),
        ("TMP-SMX as US clinicians write it", drug("LOCAL", "TMP-SMX 800/160", system="urn:local"), "caution"),
        ("ACE inhibitor by ATC class C09AA05 (ramipril)", drug("C09AA05", "Ramipril", system=ATC), "caution"),
        ("ACE inhibitor by brand Tritace", drug("LOCAL", "Tritace 5 mg", system="urn:local"), "caution"),
        ("ribavirin by brand Copegus", drug("LOCAL", "Copegus 200 mg", system="urn:local"), "caution"),
        ("amlodipine does not interact", drug("17767", "amlodipine"), "ok"),
    ],
)
def test_interacting_drugs_are_recognised_by_international_names(story: str, order: Resource, expected: str) -> None:
    assert status_of("interactions", azathioprine(), order) == expected, story


def test_co_trimoxazole_prophylaxis_keeps_its_note() -> None:
    from tests.clinical.builders import for_rule

    (f,) = for_rule(
        "infection-hold",
        azathioprine(),
        normal_temp(),
        drug("LOCAL", "Bactrim DS (PJP prophylaxis)", system="urn:local"),
    )
    assert f.status == "hold" and "prophylaxis" in said(f).summary


def test_an_azathioprine_order_that_mentions_vaccines_is_still_azathioprine() -> None:
    order = medication_request(None, text="Azathioprine 50 mg - do not give live vaccines")
    assert status_of("vaccination-hold", order, recommendation("03")) == "hold"
