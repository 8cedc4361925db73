"""Unrecognised items are shown: a medication the terminology could not identify at all is listed as
"could not identify: ..." on the CDS card and in the check's JSON and text (the page shows the same basis)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azaguard.cli import EXIT_OK, main
from tests.cds.conftest import Caller
from tests.cds.hookdata import body, sandbox_chart
from tests.clinical import builders as b

LOCAL = "urn:oid:1.2.840.114350.1.13.0.1.7.2.698288"


def _unknown_drug(patient: str = "p1") -> dict[str, object]:
    return {"resourceType": "MedicationRequest", "id": "xyz", "status": "active", "intent": "order",
            "subject": {"reference": f"Patient/{patient}"}, "authoredOn": b.when(3),
            "medicationCodeableConcept": {"coding": [{"system": LOCAL, "code": "X-99"}], "text": "Xyzzolan 10 mg"}}


def test_the_card_lists_what_could_not_be_identified(call: Caller) -> None:
    chart = [*sandbox_chart("aza-mmr-due"), _unknown_drug("aza-mmr-due")]
    cards = call("azaguard-patient-view", body("patient-view", chart, patient_id="aza-mmr-due")).json()["cards"]
    assert cards and all("Could not identify: Xyzzolan 10 mg" in c["detail"] for c in cards)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_the_check_report_lists_what_could_not_be_identified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    path = tmp_path / "record.json"
    path.write_text(json.dumps([b.patient(), b.azathioprine(), _unknown_drug()]), encoding="utf-8")
    assert main(["check", "--bundle", str(path), "--format", fmt, "--now", b.NOW.isoformat()]) == EXIT_OK
    out = capsys.readouterr().out
    if fmt == "json":
        verdict = json.loads(out)["verdict"]
        assert verdict["unidentified"] == ["Xyzzolan 10 mg"]
        assert "Could not identify: Xyzzolan 10 mg." in verdict["basis"]
    else:
        assert "Could not identify: Xyzzolan 10 mg." in out


def test_nothing_is_listed_when_everything_is_identified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "record.json"
    path.write_text(json.dumps([b.patient(), b.azathioprine()]), encoding="utf-8")
    main(["check", "--bundle", str(path), "--format", "json", "--now", b.NOW.isoformat()])
    verdict = json.loads(capsys.readouterr().out)["verdict"]
    assert verdict["unidentified"] == [] and "Could not identify" not in verdict["basis"]
