"""Interacting drugs as classes with members: every member is found by each system it carries and by its
names and brands; an ATC group places a member the list lacks; a combination counts for each ingredient."""

from __future__ import annotations

import pytest

from azaguard.coverage import coverage, to_text
from azaguard.mappings import default_mappings_dir, load_mappings
from azaguard.record import Code, Concept
from azaguard.terminology import drug_ingredients

M = load_mappings()
SYSTEM_URI = {"rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm", "atc": "http://www.whocc.no/atc",
              "snomed": "http://snomed.info/sct", "dmd": "https://dmd.nhs.uk", "ndc": "http://hl7.org/fhir/sid/ndc"}
REQUIRED_CLASSES = {
    "thiopurine-antimetabolite", "agranulocytosis", "jak-inhibitor", "ganciclovir", "cytotoxic", "chloramphenicol",
    "aminosalicylate", "warfarin", "co-trimoxazole", "ribavirin", "ace-inhibitor", "anti-tnf",
    "calcineurin-inhibitor", "allopurinol", "febuxostat",
}
MEMBERS = [(c.id, member) for c in M.medications.interactions for member in c.members]


def test_every_class_the_issue_names_is_there_with_severity_action_and_source() -> None:
    classes = {c.id: c for c in M.medications.interactions}
    assert set(classes) >= REQUIRED_CLASSES
    for c in classes.values():
        assert c.message and c.source and c.as_of and c.members
    assert classes["thiopurine-antimetabolite"].status == "hold"
    assert classes["febuxostat"].status == "hold"
    assert {classes[k].status for k in ("anti-tnf", "calcineurin-inhibitor")} == {"ok"}  # info, never a hold
    assert classes["allopurinol"].dose_reduced_status == "caution"


@pytest.mark.parametrize(("class_id", "member"), MEMBERS, ids=[f"{c}:{m.name}" for c, m in MEMBERS])
def test_each_member_by_every_code_name_and_brand(class_id: str, member: object) -> None:
    from azaguard.mappings import InteractionMember
    assert isinstance(member, InteractionMember)
    for system, codes in member.codes.items():
        for code in codes:
            hit = drug_ingredients(Concept(codings=(Code(SYSTEM_URI[system], code),)), M).interaction(class_id)
            assert hit is not None and hit.kind == "code", (system, code)
    for name in (member.name, *member.names, *member.brands):
        hit = drug_ingredients(Concept(text=f"{name} 10 mg"), M).interaction(class_id)
        assert hit is not None, name


def test_an_atc_group_places_a_member_the_list_lacks() -> None:
    """Abrocitinib is not listed, but its ATC code sits in L04AF (JAK inhibitors)."""
    hit = drug_ingredients(Concept(codings=(Code(SYSTEM_URI["atc"], "L04AF06"),)), M).interaction("jak-inhibitor")
    assert hit is not None and hit.member == "ATC L04AF06"


def test_a_combination_counts_for_each_ingredient() -> None:
    """A Medication with allopurinol and lesinurad ingredients, or a product naming two classes."""
    concept = Concept(codings=(Code(SYSTEM_URI["rxnorm"], "519"), Code(SYSTEM_URI["rxnorm"], "6851")))
    found = {h.key for h in drug_ingredients(concept, M).interactions()}
    assert found == {"allopurinol", "thiopurine-antimetabolite"}


def test_members_are_named_in_the_hit() -> None:
    hit = drug_ingredients(Concept(text="CellCept 500 mg"), M).interaction("thiopurine-antimetabolite")
    assert hit is not None and hit.member == "mycophenolate" and hit.kind == "name"


def test_lookalike_words_are_not_members() -> None:
    assert drug_ingredients(Concept(text="Remicadeine"), M).interactions() == []
    assert drug_ingredients(Concept(text="paracetamol 500 mg"), M).interactions() == []


def test_the_coverage_report_lists_each_class_with_its_members_per_system() -> None:
    version, sets = coverage(default_mappings_dir())
    text = to_text(version, sets)
    assert "Second antimetabolite or thiopurine" in text
    assert "members: mycophenolate (atc 1, rxnorm 2, snomed 2;" in text
    assert "infliximab (atc 1, rxnorm 1, snomed 1;" in text
