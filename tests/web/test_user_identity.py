"""Who is signed in: the fhirUser claim, absolute or relative (SMART 2 allows `Practitioner/123`, relative to the
FHIR base the app asked for), names the resource whose name the page shows; another server's is never read."""

from __future__ import annotations

import pytest

from azaguard.web.names import user_resource as _user_resource

ISS = "https://ehr.example.org/fhir"


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        ("Practitioner/x", ("Practitioner", "x")),
        (f"{ISS}/Practitioner/x", ("Practitioner", "x")),
        (f"{ISS}/Practitioner/x/_history/3", ("Practitioner", "x")),
        ("Patient/p-1", ("Patient", "p-1")),
        ("RelatedPerson/r", ("RelatedPerson", "r")),
        ("Person/q", ("Person", "q")),
        ("https://other.example.org/fhir/Practitioner/x", None),  # another server: the token stays home
        ("https://ehr.example.org/fhir-evil/Practitioner/x", None),
        ("/Practitioner/x", None),
        ("PractitionerRole/x", None),  # no name of its own
        ("Observation/x", None),
        ("Practitioner/", None),
        ("Practitioner/x/y", None),
        ("", None),
        (None, None),
    ],
)
def test_the_fhir_user_resource_on_this_server(claim: str | None, expected: tuple[str, str] | None) -> None:
    assert _user_resource(claim, ISS) == expected
