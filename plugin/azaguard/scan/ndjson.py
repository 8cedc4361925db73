"""Evaluate a Bulk Data export (NDJSON files) in two passes, memory bounded by the patients on azathioprine.

Pass 1 reads only the medication files: Medications coded as azathioprine, then the orders and
statements that name it (by code or name) or reference such a Medication -> the patients to evaluate.
Pass 2 streams every other file and keeps only those patients' resources (plus the shared resources
they point at: the Medications their orders reference, the Questionnaires their check-ins follow); each
patient's resources then go through the same record builder and rules as `check` (service.check_resources).
A line is parsed only when a cheap text test says it may concern a kept patient: most of an export is never
parsed.

The functions here are pure and picklable, so the Dask engine maps the very same ones.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from azaguard.errors import FhirDataError
from azaguard.evaluate import check_resources
from azaguard.fhirtypes.concept import optional_concept
from azaguard.fhirtypes.reference import reference_in
from azaguard.mappings import Mappings
from azaguard.record_meaning import surviving_ids
from azaguard.resources import InputError, ResourceSet, loads_limited
from azaguard.scan.discovery import patient_id_of
from azaguard.scan.results import Line, evaluated_line
from azaguard.terminology import drug_ingredients

# The element that ties each resource type the rules read to its patient.
PATIENT_ELEMENT: dict[str, str] = {
    "MedicationRequest": "subject",
    "MedicationStatement": "subject",
    "MedicationDispense": "subject",
    "MedicationAdministration": "subject",
    "Observation": "subject",
    "Condition": "subject",
    "ServiceRequest": "subject",
    "Immunization": "patient",
    "ImmunizationRecommendation": "patient",
    "DiagnosticReport": "subject",
    "QuestionnaireResponse": "subject",
    "FamilyMemberHistory": "patient",
    "Procedure": "subject",
    "Encounter": "subject",
}
# Every resource that can show therapy: pass 1 reads them all (cheap), as the rules do.
ORDER_TYPES = ("MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration")
# Outside every patient's compartment, read for the kept patients that point at them: a Medication by its id (an
# order's medicationReference), a Questionnaire by its canonical URL (a check-in's items may be coded only there).
SHARED_TYPES = ("Medication", "Questionnaire")
EXPORT_TYPES = ("Patient", *SHARED_TYPES, *PATIENT_ELEMENT)
_PATIENT_REF = re.compile(r'Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^"]*)?"')
_ID = re.compile(r'"id"\s*:\s*"([A-Za-z0-9\-.]{1,64})"')
UNREADABLE = "(unreadable line)"  # marks a line of a kept patient that is not valid JSON
_CODE = re.compile(r'"code"\s*:\s*"([^"]{1,64})"')
_MEDICATION_REF = re.compile(r'Medication/([A-Za-z0-9\-.]{1,64})"')


@dataclass(frozen=True)
class ExportFile:
    path: Path
    resource_type: str


@dataclass(frozen=True)
class Matcher:
    """Is this concept azathioprine? The terminology package decides; a cheap text test comes first."""

    mappings: Mappings
    code_values: frozenset[str]  # every azathioprine code, as written and normalised
    name_words: tuple[str, ...]  # lower-case first word of every name and brand

    @classmethod
    def of(cls, mappings: Mappings) -> Matcher:
        aza = mappings.medications.azathioprine
        codes = {c.strip() for values in aza.codes.values() for c in values}
        codes |= {c.replace("-", "") for c in codes} | {c.upper() for c in codes}
        words = {re.split(r"[\s\-/]+", n.strip().lower())[0] for n in (*aza.names, *aza.brands) if n.strip()}
        return cls(mappings, frozenset(codes), tuple(sorted(words)))

    def may_mention(self, line: str) -> bool:
        """False when the line cannot mention azathioprine: none of its codes is ours, no name in it.

        Substring tests and one simple regex (a big case-insensitive alternation was 10x slower)."""
        for code in _CODE.findall(line):
            code = code.strip()
            if code in self.code_values or code.replace("-", "") in self.code_values:
                return True
        low = line.lower()
        return any(word in low for word in self.name_words)

    def concept(self, cc: object) -> bool:
        """Azathioprine, or a concept that cannot be read (it may be: the patient is evaluated, and the record
        says what could not be read)."""
        try:
            read = optional_concept(cc)
        except FhirDataError:
            return True
        return drug_ingredients(read, self.mappings).azathioprine is not None

    def medication(self, resource: Mapping[str, Any]) -> bool:
        if self.concept(resource.get("code")):
            return True
        return any(
            isinstance(i, Mapping) and self.concept(i.get("itemCodeableConcept"))
            for i in resource.get("ingredient") or []
        )


# --- files --------------------------------------------------------------------------------------


def export_files(directory: Path) -> list[ExportFile]:
    """The NDJSON files of an export folder (`Type.ndjson`, `Type.2.ndjson`, `Type-x.ndjson[.gz]`)."""
    if not directory.is_dir():
        raise InputError(f"--ndjson {directory}: not a folder")
    found: list[ExportFile] = []
    for path in sorted(directory.iterdir()):
        if not path.name.endswith((".ndjson", ".ndjson.gz")):
            continue
        rtype = re.split(r"[.\-_]", path.name, maxsplit=1)[0]
        if rtype not in EXPORT_TYPES:
            rtype = _first_type(path) or ""
        if rtype in EXPORT_TYPES:
            found.append(ExportFile(path, rtype))
    if not found:
        types = ", ".join(EXPORT_TYPES)
        raise InputError(f"--ndjson {directory}: no NDJSON files of the types the rules read ({types})")
    return found


# One NDJSON line is one resource: a line longer than this is not read (a file without newlines, a bomb).
MAX_LINE_BYTES = 32 << 20


def _lines(path: Path) -> Iterator[str]:
    """The lines of one export file; a file that cannot be read (not gzip, gzip cut short, not UTF-8, a line
    past MAX_LINE_BYTES) is an InputError naming the file and the line."""
    number = 0
    try:
        with gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb") as fh:
            while raw := fh.readline(MAX_LINE_BYTES + 1):
                number += 1
                if len(raw) > MAX_LINE_BYTES:
                    raise InputError(f"{path}, line {number}: longer than {MAX_LINE_BYTES} bytes; not read")
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(f"{path}, line {number}: not UTF-8 text (byte {exc.start + 1})") from exc
    except (OSError, EOFError, zlib.error) as exc:
        what = "a gzip file cut short" if isinstance(exc, EOFError) else f"unreadable ({exc})"
        raise InputError(f"{path}, after line {number}: {what}") from exc


def _first_type(path: Path) -> str | None:
    for line in _lines(path):
        if line.strip():
            try:
                value = orjson.loads(line).get("resourceType")
            except (ValueError, AttributeError):
                return None
            return value if isinstance(value, str) else None
    return None


def read_lines(paths: Iterable[Path]) -> Iterator[str]:
    for path in paths:
        yield from _lines(path)


def of_type(files: Sequence[ExportFile], *types: str) -> list[Path]:
    return [f.path for f in files if f.resource_type in types]


# --- pass 1: who is on azathioprine (pure, line by line) ------------------------------------------


def medication_entry(line: str, matcher: Matcher) -> tuple[str, bool] | None:
    """(Medication id, is it azathioprine) for a Medication line; only ids are kept from pass 1."""
    ids = _ID.findall(line)
    if not ids:
        return None
    if not matcher.may_mention(line):
        return ids[0], False  # cannot be azathioprine; the first "id" is the resource's own in FHIR JSON
    resource = _parse(line)
    if resource is None or resource.get("resourceType") != "Medication" or not isinstance(resource.get("id"), str):
        return None
    return resource["id"], matcher.medication(resource)


def aza_patient(line: str, matcher: Matcher, aza: frozenset[str], known: frozenset[str]) -> str | None:
    """The patient of an order or statement on this line that is, or may be, azathioprine; else None.

    "May be": it references a Medication that is not in the export (a Group export may leave them
    out); the rules then answer cannot-evaluate for that patient rather than the scan missing them.
    """
    refs = set(_MEDICATION_REF.findall(line))
    if not (refs & aza or refs - known) and not matcher.may_mention(line):
        return None
    resource = _parse(line)
    if resource is None:
        return UNREADABLE if line.strip() else None  # may be azathioprine: counted, reported
    if resource.get("resourceType") not in ORDER_TYPES:
        return None
    ref = reference_in(resource.get("medicationReference"))
    if ref is not None:
        rid = ref.id or ref.text  # a contained "#id" or a urn: as written: not a known Medication id
        if rid in aza or rid not in known:
            return patient_id_of(resource.get("subject"))
    if matcher.concept(resource.get("medicationCodeableConcept")):
        return patient_id_of(resource.get("subject"))
    return None


# --- merged records: Patient.link (pure, line by line) -------------------------------------------------


def linked_patient(line: str) -> dict[str, Any] | None:
    """The Patient on this line when it carries Patient.link (a merged record), else None (most lines: no parse)."""
    if '"link"' not in line or '"Patient"' not in line:
        return None
    resource = _parse(line)
    if resource is None or resource.get("resourceType") != "Patient" or not isinstance(resource.get("link"), list):
        return None
    return resource


def merged_ids(patients: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Each Patient id Patient.link joins to another -> the id of the person's surviving record: a merged record's
    old id is the same patient, evaluated once under the surviving id (record_meaning.surviving_ids)."""
    return surviving_ids(list(patients))


def find_links(files: Sequence[ExportFile]) -> dict[str, str]:
    return merged_ids(p for p in (linked_patient(line) for line in read_lines(of_type(files, "Patient"))) if p)


def under_survivors(found: Iterable[str], links: Mapping[str, str]) -> set[str]:
    """Patient ids with every merged id replaced by its surviving record's."""
    return {links.get(pid, pid) for pid in found}


def with_merged(kept: frozenset[str], links: Mapping[str, str]) -> frozenset[str]:
    """The kept patients and every id merged into one of them (their resources are theirs)."""
    return kept | {old for old, survivor in links.items() if survivor in kept}


# --- pass 2: keep the kept patients' resources (pure, line by line) -------------------------------


def owned(line: str, kept: frozenset[str]) -> tuple[str, dict[str, Any]] | None:
    """(patient id, resource) when the line is a resource of a kept patient, else None."""
    # Every resource of a kept patient names it as `Patient/<id>"` (a Patient resource as `"id":"<id>"`).
    ids = _PATIENT_REF.findall(line)
    if '"Patient"' in line:
        ids += _ID.findall(line)
    if not ids or kept.isdisjoint(ids):
        if line.startswith("{") and line.endswith(("}\n", "}")):
            return None  # the usual case, without copying the line
        text = line.strip()
        if text and not (text[0] == "{" and text[-1] == "}"):
            return UNREADABLE, {"resourceType": UNREADABLE}  # cut short or garbled: whose, nobody can say
        return None
    resource = _parse(line)
    if resource is None:
        # A line that names a kept patient but cannot be read: that patient must not be evaluated as if
        # the data were not there.
        return sorted(kept.intersection(ids))[0], {"resourceType": UNREADABLE}
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        pid = resource.get("id")
        return (pid, resource) if isinstance(pid, str) and pid in kept else None
    element = PATIENT_ELEMENT.get(str(rtype))
    pid = patient_id_of(resource.get(element)) if element else None
    return (pid, resource) if pid is not None and pid in kept else None


def shared_refs(resources: Iterable[Mapping[str, Any]]) -> set[str]:
    """Keys of the shared resources these point at: 'Medication/<id>', 'Questionnaire|<canonical URL>'."""
    out: set[str] = set()
    for r in resources:
        ref = reference_in(r.get("medicationReference")) if r.get("resourceType") in ORDER_TYPES else None
        if ref is not None and ref.is_to("Medication"):
            out.add(f"Medication/{ref.id}")
        canonical = r.get("questionnaire") if r.get("resourceType") == "QuestionnaireResponse" else None
        if isinstance(canonical, str) and canonical and not canonical.startswith("#"):
            out.add("Questionnaire|" + canonical.split("|")[0])
    return out


def _shared_key(resource: Mapping[str, Any]) -> str | None:
    rtype, rid, url = resource.get("resourceType"), resource.get("id"), resource.get("url")
    if rtype == "Medication" and isinstance(rid, str):
        return f"Medication/{rid}"
    if rtype == "Questionnaire" and isinstance(url, str):
        return f"Questionnaire|{url}"
    return None


@lru_cache(maxsize=4)  # one `wanted` per pass, asked once per line of every Medication/Questionnaire file
def _questionnaire_urls(wanted: frozenset[str]) -> tuple[str, ...]:
    return tuple(k.split("|", 1)[1] for k in wanted if k.startswith("Questionnaire|"))


def wanted_shared(line: str, wanted: frozenset[str]) -> tuple[str, dict[str, Any]] | None:
    """(key, resource) for a Medication or Questionnaire line a kept patient points at; parsed only when its
    id or canonical URL is in the line."""
    ids = _ID.findall(line)
    if not any(f"Medication/{i}" in wanted for i in ids) and not any(u in line for u in _questionnaire_urls(wanted)):
        return None
    resource = _parse(line)
    key = _shared_key(resource) if resource is not None else None
    return (key, resource) if key is not None and key in wanted and resource is not None else None


# --- the evaluation (pure) -------------------------------------------------------------------------


def evaluate_patient(
    patient_id: str,
    resources: Sequence[dict[str, Any]],
    shared: Mapping[str, dict[str, Any]],
    mappings: Mappings,
    now: datetime,
) -> Line:
    """The same record builder and rules as `check`, over one patient's exported resources (with those filed
    under the ids merged into it: one record, one verdict, and the shared resources they point at, by
    shared_refs key)."""
    unreadable = sum(1 for r in resources if r.get("resourceType") == UNREADABLE)
    if unreadable:
        return {"patient": patient_id, "outcome": "failed", "error_kind": "InputError",
                "error": f"{unreadable} line(s) of the export that name Patient/{patient_id} are not valid JSON"}
    wanted = shared_refs(resources)
    everything = [*resources, *(shared[k] for k in sorted(wanted) if k in shared)]
    if not any(r.get("resourceType") == "Patient" for r in resources):
        return {"patient": patient_id, "outcome": "failed", "error_kind": "InputError",
                "error": f"the export has orders for Patient/{patient_id} but not the Patient resource"}  # fmt: skip
    result = check_resources(ResourceSet.from_resources(everything), mappings=mappings, now=now)
    line = evaluated_line(patient_id, result, mappings)
    merged = sorted({str(r["id"]) for r in resources if r.get("resourceType") == "Patient"} - {patient_id})
    if merged:
        line["merged_ids"] = merged  # Patient.link: the same person's other records, read as this one
    return line


def _parse(line: str) -> dict[str, Any] | None:
    """One line, with the project's JSON decoder and its limits (orjson; no NaN, bounded nesting)."""
    if not line.strip():
        return None
    try:
        value = loads_limited(line, "a line of the export")
    except InputError:
        return None
    return value if isinstance(value, dict) else None


# --- the in-process engine ------------------------------------------------------------------------


@dataclass
class Pass1:
    medications: frozenset[str]  # Medications coded as azathioprine
    patients: list[str]  # sorted
    known_medications: int = 0
    unreadable: bool = False  # some medication line that may be azathioprine is not valid JSON
    unreadable_lines: int = 0  # pass 2: lines cut short or garbled that name no kept patient

    @classmethod
    def of(cls, aza: frozenset[str], found: Iterable[str], known: int) -> Pass1:
        found = set(found)
        return cls(aza, sorted(found - {UNREADABLE}), known, UNREADABLE in found)


def find_patients(files: Sequence[ExportFile], matcher: Matcher) -> Pass1:
    entries = [e for e in (medication_entry(line, matcher) for line in read_lines(of_type(files, "Medication"))) if e]
    aza = frozenset(mid for mid, is_aza in entries if is_aza)
    known = frozenset(mid for mid, _ in entries)
    lines = read_lines(of_type(files, *ORDER_TYPES))
    found = {p for p in (aza_patient(line, matcher, aza, known) for line in lines) if p}
    return Pass1.of(aza, found, len(known))


def evaluate_files(
    files: Sequence[ExportFile],
    mappings: Mappings,
    now: datetime,
    *,
    skip: frozenset[str] = frozenset(),
    on_found: Callable[[Pass1], None] | None = None,
) -> Iterator[Line]:
    """The in-process engine: a line per patient on azathioprine (sorted by id), minus `skip`."""
    first = find_patients(files, Matcher.of(mappings))
    links = find_links(files)
    first.patients = sorted(under_survivors(first.patients, links))
    kept = frozenset(first.patients) - skip
    groups: dict[str, list[dict[str, Any]]] = {pid: [] for pid in sorted(kept)}
    types = [t for t in EXPORT_TYPES if t not in SHARED_TYPES]
    owners = with_merged(kept, links)
    for line in read_lines(of_type(files, *types)):
        hit = owned(line, owners)
        if hit is None:
            continue
        if hit[0] == UNREADABLE:
            first.unreadable_lines += 1
        else:
            groups[links.get(hit[0], hit[0])].append(hit[1])
    wanted = frozenset(k for resources in groups.values() for k in shared_refs(resources))
    shared: dict[str, dict[str, Any]] = {}
    if wanted:
        for line in read_lines(of_type(files, *SHARED_TYPES)):
            found = wanted_shared(line, wanted)
            if found is not None:
                shared.setdefault(*found)
    if on_found is not None:
        on_found(first)  # after pass 2: the unreadable lines are counted
    for pid in sorted(groups):
        yield evaluate_patient(pid, groups.pop(pid), shared, mappings, now)
