"""Hostile input files, `--now` at the calendar's edges, control characters, and a token over http:
a clear error and exit 2 (or clean output), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azaguard.cli import EXIT_INPUT, EXIT_OK, main
from azaguard.resources import MAX_DEPTH, MAX_ENTRIES, MAX_STRING_CHARS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STABLE = EXAMPLES / "aza-stable.json"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _nested(depth: int) -> str:
    return '{"resourceType": "Bundle", "type": "collection", "entry": [' + "[" * depth + "]" * depth + "]}"


CASES = {
    "nested-past-python": (_nested(5000), "nested deeper"),
    "nested-past-the-limit": (_nested(MAX_DEPTH + 5), "nested deeper"),
    "huge-integer": ('{"resourceType": "Bundle", "total": ' + "9" * 5000 + "}", "digits"),
    "number-overflow": ('{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Observation", '
                        '"valueQuantity": {"value": 1e999}}}]}', "out of range"),
    "nan": ('{"resourceType": "Bundle", "total": NaN}', "NaN"),
    "huge-string": ('{"resourceType": "Bundle", "id": "' + "a" * (MAX_STRING_CHARS + 1) + '"}', "string of"),
    "too-many-entries": ('{"resourceType": "Bundle", "entry": [' + ",".join(["{}"] * (MAX_ENTRIES + 1)) + "]}",
                         "list of"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_bundles_are_refused_with_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str
) -> None:
    text, words = CASES[case]
    path = tmp_path / f"{case}.json"
    path.write_text(text)
    code, out, err = _run(capsys, "check", "--bundle", str(path))
    assert code == EXIT_INPUT, err
    assert words in err and "Traceback" not in err and out == ""


@pytest.mark.parametrize(
    "now",
    ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
     "1899-12-31", "3000-01-01", "2026-13-01", "x" * 100],
)
def test_now_at_the_calendars_edges_is_refused(capsys: pytest.CaptureFixture[str], now: str) -> None:
    code, out, err = _run(capsys, "check", "--bundle", str(STABLE), "--now", now)
    assert code == EXIT_INPUT and "--now" in err and out == ""


@pytest.mark.parametrize("now", ["1900-01-01T00:00:00Z", "2999-12-31T00:00:00Z"])
def test_now_inside_the_range_evaluates(capsys: pytest.CaptureFixture[str], now: str) -> None:
    code, _, err = _run(capsys, "check", "--bundle", str(STABLE), "--now", now)
    assert code == EXIT_OK, err


def test_control_characters_in_a_name_never_reach_the_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bundle = json.loads(STABLE.read_text())
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["name"] = [{"given": ["\x1b[2J\x1b[31mEvil\x07"], "family": "Name\r\n[ok] all clear\u202e"}]
    path = tmp_path / "ansi.json"
    path.write_text(json.dumps(bundle))
    code, out, _ = _run(capsys, "check", "--bundle", str(path))
    assert code == EXIT_OK
    assert "Evil" in out
    assert not any(c in out for c in "\x1b\x07\r\u202e")
    assert not any(line.startswith("[ok] all clear") for line in out.splitlines())


def test_a_bearer_token_is_not_sent_over_plain_http_to_another_host(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZAGUARD_FHIR_TOKEN", "secret-token")
    # 192.0.2.1 (TEST-NET) is never contacted: the refusal comes before any request.
    code, out, err = _run(capsys, "check", "--fhir-url", "http://192.0.2.1/fhir", "--patient", "p1")
    assert code == EXIT_INPUT and "plain http" in err and "--allow-insecure-http" in err
    assert "secret-token" not in out + err
