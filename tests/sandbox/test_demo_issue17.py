"""The sandbox shows issue 17's findings: `azaguard demo`'s patient list, and `check` against the sandbox server.

aza-warning-signs (a nurse's checklist answered by linkId, its items coded only in a Questionnaire held on the
server; TPMT measured as an activity number), aza-cmv-viraemia (a CMV viral load over the lab's limit),
aza-pancreatitis (lipase over 3x the lab's upper limit), aza-tpmt-activity-low (TPMT activity below the lab's
range, by its LOINC code alone).
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from datetime import UTC, datetime
from typing import Any

import pytest

from azaguard.cli import main
from azaguard.fhir import FhirClient
from azaguard.mappings import load_mappings
from azaguard.registry import short
from azaguard.sandbox.demo import run_demo
from azaguard.sandbox.patients import build_patients, transaction_bundle

pytestmark = pytest.mark.integration

# patient -> (rule, status shown in the list, finding code)
SHOWN = {
    "aza-warning-signs": ("infection-hold", "caution", "warning-signs"),
    "aza-cmv-viraemia": ("infection-hold", "hold", "lab-proven-infection"),
    "aza-pancreatitis": ("pancreatitis", "hold", "lipase-high"),
    "aza-tpmt-activity-low": ("tpmt", "caution", "tpmt-intermediate"),
}
_CELL = {"hold": "HOLD", "caution": "caution"}


def test_the_demo_lists_the_new_patients_with_their_findings() -> None:
    out = io.StringIO()
    assert run_demo(port=0, serve=False, now=datetime.now(UTC), mappings=load_mappings(), fhir_port=0, out=out) == 0
    lines = out.getvalue().splitlines()
    header = lines[next(i for i, line in enumerate(lines) if line.startswith("patient "))].split()
    for pid, (rule, status, _) in SHOWN.items():
        row = next(line for line in lines if line.startswith(f"{pid} "))
        cells = dict(zip(header[1:-1], row.split()[1:-1], strict=True))
        # The finding's rule shows it; every other check passes (the TPMT activity number was found on the
        # server: not "cannot").
        assert {c: v for c, v in cells.items() if v != "ok"} == {short(rule): _CELL[status]}, (pid, row)


@pytest.fixture(scope="module")
def loaded(fhir_server: Any) -> str:
    wanted = [p for p in build_patients(datetime.now(UTC)) if p.id in SHOWN]
    with FhirClient(fhir_server.base_url) as client:
        results = client.transaction(transaction_bundle(wanted))
        assert all(r.ok for r in results)
    return str(fhir_server.base_url)


@pytest.mark.parametrize("pid", list(SHOWN))
def test_check_against_the_sandbox_shows_the_finding(loaded: str, pid: str) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        main(["check", "--fhir-url", loaded, "--patient", pid, "--format", "json"])
    findings = json.loads(out.getvalue())["findings"]
    rule, status, code = SHOWN[pid]
    first = next(f for f in findings if f["rule"] == rule)
    assert (first["status"], first["code"]) == (status, code)
    assert all(f["status"] in ("ok", "not-applicable") for f in findings if f["rule"] != rule), findings
