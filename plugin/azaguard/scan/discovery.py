"""Which patients to scan, and how they were found.

By default: the azathioprine code sets from mappings/ searched in MedicationRequest and
MedicationStatement (`code`), plus orders that reference a Medication resource, by chaining
(`medication.code`) where the server supports it, else in two steps (Medication?code=, then
orders by `medication`). Orders known only by text cannot be searched: `--group`, `--patients`
and `--all-patients` cover them, and the report says which way the patients were found.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from azaguard.fhir.client import FhirClient, Resource, check_id, searchset_resources
from azaguard.fhir.errors import FhirRejected
from azaguard.fhirtypes.reference import reference_in
from azaguard.mappings import Mappings
from azaguard.resources import InputError

Method = Literal["medication-codes", "group", "patients-file", "all-patients"]
METHOD_TEXT: dict[str, str] = {
    "medication-codes": "searched by the azathioprine code sets (orders and statements)",
    "group": "members of a FHIR Group",
    "patients-file": "a list of patient ids from a file",
    "all-patients": "every Patient on the server",
}
ORDER_TYPES = ("MedicationRequest", "MedicationStatement")
PAGE = "1000"
# Keeps each search URL well under the 8 KB that common servers and proxies accept.
MAX_QUERY_VALUE = 1500


@dataclass
class Discovery:
    """The patients to scan, in the order found (no duplicates), and how they were found."""

    method: Method
    patient_ids: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # "MedicationRequest?code=…: 19 patients"
    warnings: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return METHOD_TEXT[self.method]

    def add(self, ids: Iterable[str]) -> int:
        """Add ids not seen yet; how many were new."""
        seen = set(self.patient_ids)
        before = len(self.patient_ids)
        for pid in ids:
            if pid not in seen:
                seen.add(pid)
                self.patient_ids.append(pid)
        return len(self.patient_ids) - before


def code_tokens(mappings: Mappings) -> list[str]:
    """`system|code` for every azathioprine code, under every URI its system goes by."""
    tokens: list[str] = []
    for system_name, codes in sorted(mappings.medications.azathioprine.codes.items()):
        for uri in getattr(mappings.systems, system_name):
            tokens += [f"{uri}|{code}" for code in sorted(codes)]
    return list(dict.fromkeys(tokens))


def chunks(values: list[str], limit: int = MAX_QUERY_VALUE) -> Iterator[str]:
    """Comma-joined runs of `values`, each at most `limit` characters (one value may exceed it alone)."""
    run: list[str] = []
    size = 0
    for value in values:
        if run and size + len(value) + 1 > limit:
            yield ",".join(run)
            run, size = [], 0
        run.append(value)
        size += len(value) + 1
    if run:
        yield ",".join(run)


def patient_id_of(reference: object) -> str | None:
    """The id in a Patient reference (relative or absolute), else None."""
    ref = reference_in(reference)
    if ref is None or not ref.is_to("Patient"):
        return None
    try:
        return check_id(str(ref.id))
    except ValueError:
        return None


def _subjects(resources: Iterable[Resource]) -> list[str]:
    ids = (patient_id_of(r.get("subject")) for r in resources if r.get("resourceType") in ORDER_TYPES)
    return [i for i in ids if i is not None]


def _search(client: FhirClient, rtype: str, params: list[tuple[str, str]]) -> list[Resource]:
    return [r for page in client.search_pages(rtype, [*params, ("_count", PAGE)]) for r in searchset_resources(page)]


def by_medication_codes(client: FhirClient, mappings: Mappings) -> Discovery:
    """Patients with an azathioprine order or statement (any status: the rules decide what still counts)."""
    found = Discovery("medication-codes")
    tokens = code_tokens(mappings)
    for rtype in ORDER_TYPES:
        try:
            direct = [pid for v in chunks(tokens) for pid in _subjects(_search(client, rtype, [("code", v)]))]
        except FhirRejected as exc:
            if rtype == "MedicationRequest":
                raise  # the main source: without it the scan would silently find nobody
            found.warnings.append(f"{rtype} cannot be searched by code on this server ({exc.status}); skipped")
            continue
        new = found.add(direct)
        found.steps.append(f"{rtype}?code=(azathioprine codes): {len(set(direct))} patients, {new} new")
        found.add(_by_medication_resource(client, rtype, tokens, found))
    return found


def _by_medication_resource(client: FhirClient, rtype: str, tokens: list[str], found: Discovery) -> list[str]:
    """Orders that reference a Medication coded as azathioprine: chained search, else two steps."""
    try:
        ids = [pid for v in chunks(tokens) for pid in _subjects(_search(client, rtype, [("medication.code", v)]))]
    except FhirRejected as exc:
        found.warnings.append(f"{rtype}?medication.code= (chaining) refused ({exc.status}); used two steps")
    else:
        found.steps.append(f"{rtype}?medication.code=(azathioprine codes), chained: {len(set(ids))} patients")
        return ids
    medications = [
        f"Medication/{r['id']}"
        for value in chunks(tokens)
        for r in _search(client, "Medication", [("code", value)])
        if r.get("resourceType") == "Medication" and isinstance(r.get("id"), str)
    ]
    ids = [pid for v in chunks(medications) for pid in _subjects(_search(client, rtype, [("medication", v)]))]
    found.steps.append(
        f"Medication?code=(azathioprine codes): {len(medications)} Medications, then {rtype}?medication=: "
        f"{len(set(ids))} patients"
    )
    return ids


def by_group(client: FhirClient, group_id: str) -> Discovery:
    group = client.read("Group", check_id(group_id))
    found = Discovery("group")
    members = [m for m in group.get("member") or [] if isinstance(m, Mapping) and not m.get("inactive")]
    ids = [pid for pid in (patient_id_of(m.get("entity")) for m in members) if pid is not None]
    found.add(ids)
    found.steps.append(f"Group/{group_id}: {len(members)} active members, {len(found.patient_ids)} patients")
    if len(ids) < len(members):
        found.warnings.append(f"Group/{group_id}: {len(members) - len(ids)} members are not Patients; skipped")
    return found


def from_file(path: Path) -> Discovery:
    """Ids one a line; blank lines and `#` comments ignored; a bad id stops the scan before it starts."""
    found = Discovery("patients-file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read the patients file {path}: {exc.strerror}") from exc
    ids: list[str] = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        text = text.removeprefix("Patient/")
        try:
            ids.append(check_id(text))
        except ValueError as exc:
            raise InputError(f"{path}, line {number}: {text[:70]!r} is not a FHIR patient id") from exc
    new = found.add(ids)
    found.steps.append(f"{path.name}: {len(ids)} ids, {new} distinct")
    return found


def all_patients(client: FhirClient) -> Discovery:
    found = Discovery("all-patients")
    patients: list[dict[str, Any]] = _search(client, "Patient", [("_elements", "id")])
    found.add(str(p["id"]) for p in patients if p.get("resourceType") == "Patient" and isinstance(p.get("id"), str))
    found.steps.append(f"Patient (every page): {len(found.patient_ids)} patients")
    return found
