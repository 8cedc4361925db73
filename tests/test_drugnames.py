"""Drug names in action text read as a clinician writes them, never as a raw RxNorm display."""

from __future__ import annotations

import pytest

from azaguard.drugnames import clinical_name


@pytest.mark.parametrize(
    ("record", "written"),
    [
        ("Allopurinol 100 MG Oral Tablet", "allopurinol 100 mg tablets"),
        ("azathioprine 50 MG Oral Tablet", "azathioprine 50 mg tablets"),
        ("Azathioprine 50 MG Oral Tablet [Imuran]", "Imuran 50 mg tablets"),
        ("Febuxostat 40 MG Oral Tablet [Uloric]", "Uloric 40 mg tablets"),
        ("Sulfamethoxazole 800 MG / Trimethoprim 160 MG Oral Tablet",
         "sulfamethoxazole 800 mg / trimethoprim 160 mg tablets"),
        ("24 HR Mesalamine 1200 MG Delayed Release Oral Tablet", "mesalamine 1200 mg delayed-release tablets"),
        ("Allopurinol 100 MG", "allopurinol 100 mg"),
        ("Azathioprine 10 MG/ML Oral Suspension", "azathioprine 10 mg/mL oral suspension"),
        ("Typhoid Vaccine Live Ty21a 6800000000 UNT Delayed Release Oral Capsule",
         "typhoid vaccine live Ty21a 6800000000 units delayed-release capsules"),
        ("Lisinopril 0.5 MG Oral Tablet", "lisinopril 0.5 mg tablets"),
        # Not RxNorm's shape: the record's words, untouched.
        ("Zyloprim 100mg tabs", "Zyloprim 100mg tabs"),
        ("allopurinol", "allopurinol"),
        ("MMR", "MMR"),
        ("", ""),
    ],
)
def test_clinical_name(record: str, written: str) -> None:
    assert clinical_name(record) == written


def test_the_interaction_action_names_the_drug_as_a_clinician_writes_it() -> None:
    from azaguard.mappings import load_mappings
    from azaguard.verdict import action_of
    from tests.clinical import builders as b

    m = load_mappings()
    allopurinol = b.drug("197319", "Allopurinol 100 MG Oral Tablet", started_days_ago=30)
    found = [f for f in b.findings(b.azathioprine(), allopurinol) if f.rule == "interactions" and f.actionable]
    assert found
    action = action_of(found[0], b.NOW, m)
    assert "allopurinol 100 mg tablets" in action.summary and "MG Oral Tablet" not in action.summary, action.summary
