"""Code and Concept: a CodeableConcept reduced to what matching needs, and the one way to read one.

The value types terminology and the record both speak (this package is the floor below both).
A code is a non-empty string: FHIR R4 JSON has no numeric codes, so a coding whose code is a number,
a list or an object is not read as another code (4 and "4" are not the same code) but refused
(FhirDataError): the caller says the concept could not be read, never that it matched nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from msgspec import Struct

from azaguard.errors import FhirDataError
from azaguard.fhirtypes.raw import RawValue


class Code(Struct, frozen=True):
    system: str | None  # the URI as recorded
    code: str
    display: str | None = None


class Concept(Struct, frozen=True):
    """A CodeableConcept reduced to what matching needs."""

    codings: tuple[Code, ...] = ()
    text: str | None = None
    # Names read beside the concept's own: a Medication's ingredient Substances, its dose form.
    extra_names: tuple[str, ...] = ()

    def codes_in(self, systems: Iterable[str]) -> set[str]:
        """Codes whose system is one of the given URIs."""
        uris: Collection[str] = systems if isinstance(systems, (frozenset, set)) else set(systems)
        return {c.code for c in self.codings if c.system in uris}

    @property
    def names(self) -> tuple[str, ...]:
        """Human-readable names (text, then displays), for name-only matching."""
        out = [self.text] if self.text else []
        out += [c.display for c in self.codings if c.display]
        return (*out, *self.extra_names)

    @property
    def label(self) -> str:
        if self.text:
            return self.text
        for c in self.codings:
            if c.display:
                return c.display
        return self.codings[0].code if self.codings else "(no name)"


def concept(cc: object) -> Concept:
    """A raw CodeableConcept (JSON object) as a Concept; FhirDataError when it is not a valid one.

    A coding without a code (a display only) adds nothing to match on and is skipped, as the text
    carries the name."""
    if not isinstance(cc, Mapping):
        raise FhirDataError("expected a CodeableConcept (a JSON object)")
    codings: RawValue = cc.get("coding")
    if codings is None:
        codings = []
    elif not isinstance(codings, list):
        raise FhirDataError("CodeableConcept.coding must be a list")
    text = _optional_string(cc.get("text"), "CodeableConcept.text")
    read = (coding(c) for c in codings)
    return Concept(codings=tuple(c for c in read if c is not None), text=text)


def optional_concept(cc: object) -> Concept | None:
    """As concept(), None when the element is absent (null) or names nothing (no code, no text)."""
    if cc is None:
        return None
    found = concept(cc)
    return found if found.codings or found.text else None


def coding(c: object) -> Code | None:
    """A raw Coding as a Code (None when it has no code); FhirDataError when it is not a valid Coding."""
    if not isinstance(c, Mapping):
        raise FhirDataError("expected a Coding (a JSON object)")
    code = c.get("code")
    if code is None:
        return None
    if not isinstance(code, str) or not code.strip():
        raise FhirDataError(f"Coding.code must be a non-empty string, not {type(code).__name__} {str(code)[:40]!r}")
    return Code(
        system=_optional_string(c.get("system"), "Coding.system"),
        code=code,
        display=_optional_string(c.get("display"), "Coding.display"),
    )


def readable_concept(cc: object) -> Concept:
    """As much of a CodeableConcept that may be invalid as can be read (see readable_codes). Never raises."""
    text = cc.get("text") if isinstance(cc, Mapping) else None
    return Concept(codings=readable_codes(cc), text=text if isinstance(text, str) else None)


def readable_codes(cc: object) -> tuple[Code, ...]:
    """The codes that can be read from a CodeableConcept that may be invalid (what a resource that failed to
    read is known to have been about): the valid codings, the rest skipped. Never raises."""
    codings = cc.get("coding") if isinstance(cc, Mapping) else None
    out: list[Code] = []
    for c in codings if isinstance(codings, list) else ():
        try:
            found = coding(c)
        except FhirDataError:
            continue
        if found is not None:
            out.append(found)
    return tuple(out)


def raw_codings(cc: RawValue) -> list[tuple[str | None, str]]:
    """(system, code) of each coding of a raw CodeableConcept, nothing checked and nothing built: the quick test
    on a resource's JSON before it is read (which codes may it be about?), run on every resource of a record.
    A coding whose code is not a string is passed over, a system that is not a string reads None, and anything
    that is not a CodeableConcept holds no codes; reading the resource itself says what is invalid."""
    codings = cc.get("coding") if isinstance(cc, dict) else None
    out: list[tuple[str | None, str]] = []
    if isinstance(codings, list):
        for c in codings:  # (a plain loop: a third faster than a comprehension with two walruses)
            if isinstance(c, dict):
                code = c.get("code")
                if isinstance(code, str):
                    system = c.get("system")
                    out.append((system if isinstance(system, str) else None, code))
    return out


def _optional_string(value: object, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise FhirDataError(f"{where} must be a string")
