"""One exception tree: every failure azaguard reports descends from AzaguardError and carries its exit code
and HTTP status; the CLI and the CDS service read them from the class (tested through the commands)."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import socket
from pathlib import Path

import pytest

import azaguard
from azaguard.cli import main
from azaguard.errors import AuthError, AzaguardError, ConfigError, FhirDataError, InputError, KnowledgeError

# Not failures azaguard reports: a programming error, private control flow, and httpx transport errors (they
# must stay httpx's for its retries).
NOT_REPORTED = {
    "azaguard.fhirview.SchemaError", "azaguard.fhirview._Invalid", "azaguard.resources._FullPath",
    "azaguard.sandbox.ehr.backend._Refused", "azaguard.smart.jwks._Unreadable", "azaguard.httpbound.ResponseTooLarge",
    "azaguard.httpbound.ResponseTooSlow",
}
STABLE = Path(__file__).resolve().parents[1] / "examples" / "aza-stable.json"


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(azaguard.__path__, "azaguard."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == info.name:
                found[f"{info.name}.{name}"] = value
    return found


def test_every_reported_failure_descends_from_one_root_and_none_is_a_value_error() -> None:
    classes = _exception_classes()
    assert len(classes) > 15  # the walk found them
    outside = sorted(n for n, c in classes.items() if not issubclass(c, AzaguardError) and n not in NOT_REPORTED)
    assert outside == []
    value_errors = sorted(n for n, c in classes.items() if issubclass(c, ValueError) and n not in NOT_REPORTED)
    assert value_errors == []


def test_each_branch_carries_its_exit_code_and_status() -> None:
    from azaguard.cds.prefetch import PreconditionFailed
    from azaguard.cds.request import BadRequest
    from azaguard.fhir.errors import AuthDenied, AuthExpired, FhirError, FhirUnavailable
    from azaguard.mappings import MappingsError
    from azaguard.smart.discovery import DiscoveryError

    table = {
        InputError: (2, 400), FhirDataError: (2, 400), BadRequest: (2, 400), PreconditionFailed: (2, 412),
        ConfigError: (2, 500), KnowledgeError: (2, 500), MappingsError: (2, 500),
        FhirError: (3, 502), FhirUnavailable: (3, 502), AuthExpired: (3, 401), AuthDenied: (3, 403),
        AuthError: (3, 401), DiscoveryError: (3, 502),
    }
    assert {c: (c.exit_code, c.http_status) for c in table} == table


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_exit_codes_through_the_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # input: 2
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["check", "--bundle", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    # knowledge: 2
    assert main(["check", "--bundle", str(STABLE), "--mappings", str(tmp_path / "none")]) == 2
    assert "azaguard: " in capsys.readouterr().err
    # FHIR server: 3, said as a FHIR server error
    url = f"http://127.0.0.1:{_closed_port()}/fhir"
    assert main(["check", "--fhir-url", url, "--patient", "p1", "--now", "2026-11-20T09:00:00Z"]) == 3
    assert "azaguard: FHIR server error: " in capsys.readouterr().err
    # configuration: 2, with the hint on its own line
    config = tmp_path / "smart_launch.json"
    config.write_text(json.dumps({"client_id": 5}))
    assert main(["serve", "--config", str(config), "--port", str(_closed_port())]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("azaguard: ") and lines[-1].startswith("(azaguard config check")


def test_the_cds_service_answers_from_the_class() -> None:
    from azaguard.cds.prefetch import PreconditionFailed
    from azaguard.errors import http_body

    assert http_body(PreconditionFailed("no data")) == {"error": "precondition-failed", "message": "no data"}
    assert http_body(KeyError("x")) == {"error": "internal-error", "message": "internal error"}
