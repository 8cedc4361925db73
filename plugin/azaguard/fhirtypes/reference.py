"""FHIR references (R4 §2.3.0 Reference.reference), read in one place.

    Patient/123                                  relative
    Patient/123/_history/4                       relative, versioned
    https://ehr.example/fhir/Patient/123[/_history/4]   absolute (base https://ehr.example/fhir)
    #med1                                        contained (a resource inside the referring one)
    urn:uuid:…, urn:oid:…                        a Bundle entry's fullUrl
    Patient?identifier=sys|val                   conditional (transaction Bundles)

Anything else (a bare id, a path with a leading '/', a type that is not a FHIR type name) is kind
"other": nothing is guessed from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from msgspec import Struct

Kind = Literal["relative", "absolute", "contained", "urn", "conditional", "other"]
_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")
_SEGMENT = re.compile(r"[^/\s?#]{1,200}")  # ids are checked by whoever needs FHIR id syntax (cliargs.check_id)


class Reference(Struct, frozen=True):
    text: str  # as written
    kind: Kind
    type: str | None = None
    id: str | None = None
    version: str | None = None  # the vid of a versioned reference
    base: str | None = None  # the server base of an absolute reference
    fragment: str | None = None  # the contained resource's id

    @property
    def relative(self) -> str | None:
        """'Type/id' (unversioned) for a relative or absolute reference, else None."""
        return f"{self.type}/{self.id}" if self.type and self.id else None

    @property
    def unversioned(self) -> str:
        """The reference as written, without its /_history/vid."""
        if self.version is None or self.relative is None:
            return self.text
        return f"{self.base}/{self.relative}" if self.base else self.relative

    def is_to(self, rtype: str) -> bool:
        return self.type == rtype and self.id is not None


def parse_reference(text: object) -> Reference | None:
    """A reference string read; None when it is not a non-empty string."""
    if not isinstance(text, str) or not text.strip():
        return None
    if text.startswith("#"):
        return Reference(text, "contained", fragment=text[1:] or None)
    if text.startswith(("urn:uuid:", "urn:oid:")):
        return Reference(text, "urn")
    head, question, _ = text.partition("?")
    if question:
        return Reference(text, "conditional", type=head) if _TYPE.fullmatch(head) else Reference(text, "other")
    path, history, version = text.rstrip("/").partition("/_history/")
    if history and not _SEGMENT.fullmatch(version):
        return Reference(text, "other")
    prefix, _, last = path.rpartition("/")
    base, _, rtype = prefix.rpartition("/")
    if not _TYPE.fullmatch(rtype) or not _SEGMENT.fullmatch(last):
        return Reference(text, "other")
    vid = version if history else None
    if not base:
        return Reference(text, "relative", type=rtype, id=last, version=vid) if not prefix.startswith("/") \
            else Reference(text, "other")
    if "://" not in base:
        return Reference(text, "other")
    return Reference(text, "absolute", type=rtype, id=last, version=vid, base=base)


def reference_in(element: object) -> Reference | None:
    """The reference a Reference element (a JSON object with "reference") holds, if any."""
    return parse_reference(element.get("reference")) if isinstance(element, Mapping) else None


def ref_of(raw: Mapping[str, object]) -> str:
    """The name a resource goes by in the record, its evidence and its messages: 'Type/id' ('Type/(no id)')."""
    rid = raw.get("id")
    return f"{raw.get('resourceType')}/{rid}" if isinstance(rid, str) else f"{raw.get('resourceType')}/(no id)"
