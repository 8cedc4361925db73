"""One reference parser: relative, absolute, versioned, contained, urn, conditional, and nothing guessed."""

from __future__ import annotations

import pytest

from azaguard.fhirtypes.reference import Reference, parse_reference, reference_in


@pytest.mark.parametrize(("text", "kind", "relative", "version", "base"), [
    ("Patient/123", "relative", "Patient/123", None, None),
    ("Patient/123/_history/4", "relative", "Patient/123", "4", None),
    ("https://ehr.example/fhir/Patient/123", "absolute", "Patient/123", None, "https://ehr.example/fhir"),
    ("https://ehr.example/fhir/Patient/123/_history/4", "absolute", "Patient/123", "4", "https://ehr.example/fhir"),
    ("http://x/Medication/m.1/", "absolute", "Medication/m.1", None, "http://x"),
])
def test_literal_references(text: str, kind: str, relative: str, version: str | None, base: str | None) -> None:
    ref = parse_reference(text)
    assert ref is not None
    assert (ref.kind, ref.relative, ref.version, ref.base) == (kind, relative, version, base)


def test_unversioned_drops_only_the_history() -> None:
    assert parse_reference("Patient/1/_history/2").unversioned == "Patient/1"  # type: ignore[union-attr]
    assert parse_reference("http://x/fhir/Patient/1/_history/2").unversioned == "http://x/fhir/Patient/1"  # type: ignore[union-attr]
    assert parse_reference("urn:uuid:abc").unversioned == "urn:uuid:abc"  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "kind"), [
    ("#med1", "contained"), ("urn:uuid:6f1b6f8e-0000-4000-8000-000000000001", "urn"), ("urn:oid:1.2.3", "urn"),
    ("Patient?identifier=sys|1", "conditional"),
])
def test_non_literal_references_name_no_type_and_id(text: str, kind: str) -> None:
    ref = parse_reference(text)
    assert ref is not None and ref.kind == kind and ref.relative is None
    if kind == "contained":
        assert ref.fragment == "med1"
    if kind == "conditional":
        assert ref.type == "Patient"


@pytest.mark.parametrize("text", [
    "123", "/Patient/123", "patient/123", "Patient/", "Patient/1/_history/", "ftp/x/Patient/1", "Patient/a b",
    "Patient?x", "x?y",
])
def test_nothing_is_guessed_from_what_is_not_a_reference(text: str) -> None:
    ref = parse_reference(text)
    assert ref is None or ref.relative is None


@pytest.mark.parametrize("value", [None, "", "  ", 5, ["Patient/1"]])
def test_not_a_string_is_no_reference(value: object) -> None:
    assert parse_reference(value) is None


def test_a_reference_element() -> None:
    assert reference_in({"reference": "Patient/1"}) == Reference("Patient/1", "relative", type="Patient", id="1")
    assert reference_in({"display": "x"}) is None and reference_in("Patient/1") is None
    assert parse_reference("Patient/1").is_to("Patient")  # type: ignore[union-attr]
    assert not parse_reference("Patient/1").is_to("Group")  # type: ignore[union-attr]
