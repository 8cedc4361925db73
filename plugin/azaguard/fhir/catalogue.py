"""What azaguard reads and writes on a FHIR server: one catalogue, derived from the gatherer's search plan.

The SMART scopes in smart_launch.json, the backend-services (scan) scopes, the CDS Hooks prefetch
templates (cds/discovery.py, from the same plan) and the discovery's usageRequirements are all made
from here, so a search added to fhir/gather.py is asked for, advertised and prefetched everywhere
(tests/fhir/test_catalogue.py holds them together). Regenerate smart_launch.json's scopes with
`python -m azaguard.fhir.catalogue smart_launch.json` (the clinician's `scopes` and the patient's `patient_scopes`).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from azaguard.fhir.gather import plan_alert_searches, plan_searches
from azaguard.mappings import Mappings, load_mappings

# The alerts azaguard writes, and the Device it names as their author (read, then created if absent).
WRITES = ("DetectedIssue", "Flag", "Device")
# What a patient's own check-in writes (patient/checkin.py's transaction: create-or-update by id).
CHECKIN_WRITES = ("QuestionnaireResponse", "Observation")
# A bulk export's patient list (scan --group): read by the backend service only.
SCAN_ONLY_READS = ("Group",)
# What an _include's search parameter brings back.
_INCLUDED = {"medication": "Medication"}
# Read after the searches, by what the record points at: the Questionnaire a check-in follows (by canonical URL,
# fhir/gather.py's _add_missing_questionnaires).
FOLLOWED = ("Questionnaire",)
_ANY_DAY = datetime(2000, 1, 1, tzinfo=UTC)

Version = Literal["v1", "v2"]


def record_reads(mappings: Mappings | None = None) -> tuple[str, ...]:
    """The resource types the rules read for one patient: the Patient, each search's type and what it includes."""
    out = ["Patient"]
    for search in plan_searches("catalogue", mappings or load_mappings(), _ANY_DAY):
        out.append(search.resource_type)
        for key, value in search.params:
            if key == "_include":
                param = value.split(":", 2)[1]
                if param not in _INCLUDED:
                    raise ValueError(f"catalogue: unknown _include parameter {value!r}: name its resource type")
                out.append(_INCLUDED[param])
    return tuple(dict.fromkeys([*out, *FOLLOWED]))


def reads(mappings: Mappings | None = None) -> tuple[str, ...]:
    """Every type azaguard reads from a chart: the record, the existing alerts and their author."""
    alerts = [s.resource_type for s in plan_alert_searches("catalogue")]
    return tuple(dict.fromkeys([*record_reads(mappings), *alerts, *WRITES]))


def scopes(
    version: Version, *, context: Literal["patient", "system"], write: bool, mappings: Mappings | None = None
) -> list[str]:
    """Resource scopes for what azaguard reads (and, with `write`, writes): v2 'rs'/'crus', v1 'read'/'write'."""
    types = reads(mappings) + (SCAN_ONLY_READS if context == "system" else ())
    return _resource_scopes(version, context, types, WRITES if write else ())


def _resource_scopes(version: Version, context: str, types: tuple[str, ...], writes: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for rtype in dict.fromkeys(types + writes):
        if version == "v2":
            out.append(f"{context}/{rtype}.{'crus' if rtype in writes else 'rs'}")
        else:
            out.append(f"{context}/{rtype}.read")
    if version == "v1":
        out += [f"{context}/{rtype}.write" for rtype in writes]
    return out


def launch_scopes(version: Version, mappings: Mappings | None = None) -> str:
    """The SMART App Launch scopes (smart_launch.json): launch, identity, and patient-context resource scopes."""
    return " ".join(["launch", "openid", "fhirUser", *scopes(version, context="patient", write=True,
                                                             mappings=mappings)])


def patient_launch_scopes(version: Version, mappings: Mappings | None = None) -> str:
    """The patient's own launch (smart_launch.json's patient_scopes, the patient view): the record the rules read
    (not the chart's alerts: those are for the clinician) and what the check-in writes."""
    resource = _resource_scopes(version, "patient", record_reads(mappings), CHECKIN_WRITES)
    return " ".join(["launch/patient", "openid", "fhirUser", *resource])


def usage_requirements(mappings: Mappings | None = None) -> str:
    """The CDS services' usageRequirements: what a fhirAuthorization must be able to read."""
    types = record_reads(mappings)
    listed = ", ".join(types[:-1]) + " and " + types[-1]
    return (
        "Send the prefetch (a key sent as null means no data) or fhirServer with a fhirAuthorization whose "
        f"scope can read {listed} for the patient. Every call carries a JWT signed (RS384 or ES384) by a "
        "client registered in cds_clients."
    )


def write_launch_scopes(path: Path) -> None:
    """Set the scopes of an app registration file to the catalogue's (the rest of the file kept)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data["scopes"] = {"v2": launch_scopes("v2"), "v1": launch_scopes("v1")}
    if "patient_scopes" in data:  # a site that offers the patient's own launch
        data["patient_scopes"] = {"v2": patient_launch_scopes("v2"), "v1": patient_launch_scopes("v1")}
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    write_launch_scopes(Path(sys.argv[1]))
