"""The scan's files: owner-only and never written through a link; hostile export files and results lines
are one sentence (naming the file and line) and a non-zero exit, or a line skipped and named."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
from pathlib import Path

import pytest

from azaguard.cli import build_parser
from azaguard.mappings import load_mappings
from azaguard.sandbox.patients import build_patients
from azaguard.scan.command import EXIT_INPUT, EXIT_OK, run
from azaguard.scan.results import RESULTS_FILE
from tests.hardening.common import NOW

MAPPINGS = load_mappings()


def _export(folder: Path, scenario: str = "aza-febrile-c") -> Path:
    """One synthetic patient as a Bulk Data export (Type.ndjson files)."""
    folder.mkdir(parents=True, exist_ok=True)
    patient = next(p for p in build_patients(NOW) if p.id == scenario)
    by_type: dict[str, list[str]] = {}
    for r in patient.resources:
        by_type.setdefault(r["resourceType"], []).append(json.dumps(r))
    for rtype, lines in by_type.items():
        (folder / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    return folder


def _scan(out: Path, *argv: str) -> tuple[int, str]:
    args = build_parser().parse_args(["scan", *argv, "--out", str(out), "--now", NOW.isoformat()])
    err = io.StringIO()
    code = run(args, MAPPINGS, stderr=err)
    return code, err.getvalue()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outputs_are_owner_only_and_links_are_replaced_not_followed(tmp_path: Path) -> None:
    export = _export(tmp_path / "export")
    out = tmp_path / "out"
    out.mkdir(mode=0o755)
    out.chmod(0o755)
    victim = tmp_path / "victim.txt"
    victim.write_text("not patient data\n")
    victim.chmod(0o644)
    (out / "report.html").symlink_to(victim)
    (out / "actions.csv").symlink_to(victim)
    (out / "run.json").write_text("{}")
    (out / "run.json").chmod(0o644)
    code, err = _scan(out, "--ndjson", str(export))
    assert code == EXIT_OK, err
    assert victim.read_text() == "not patient data\n" and _mode(victim) == 0o644
    for name in (RESULTS_FILE, "report.html", "actions.csv", "run.json"):
        assert not (out / name).is_symlink()
        assert _mode(out / name) == 0o600, name
    assert f"the results folder {out} can be read by others" in err
    # --resume appends to results.ndjson: a link there is refused, never followed.
    (out / RESULTS_FILE).unlink()
    (out / RESULTS_FILE).symlink_to(victim)
    code, err = _scan(out, "--ndjson", str(export), "--resume")
    assert victim.read_text() == "not patient data\n"


def test_resume_skips_and_names_bad_results_lines(tmp_path: Path) -> None:
    export = _export(tmp_path / "export")
    out = tmp_path / "out"
    code, err = _scan(out, "--ndjson", str(export))
    assert code == EXIT_OK, err
    results = out / RESULTS_FILE
    good = results.read_bytes()
    hostile = [
        b"not json at all\n",
        b"[1, 2, 3]\n",
        b'{"patient": 5, "outcome": "evaluated"}\n',
        b'{"patient": "../../etc", "outcome": "evaluated"}\n',
        b'{"patient": "p-odd", "outcome": "evaluated", "statuses": "hold"}\n',
        b'{"patient": "p-utf", "outcome": "evaluated", "verdict": "\xff\xfe"}\n',
        b"[" * 50_000 + b"\n",
        b'{"patient": "p-torn", "outcome": "eval',
    ]
    results.write_bytes(good + b"".join(hostile))
    code, err = _scan(out, "--ndjson", str(export), "--resume")
    assert code == EXIT_OK, err
    assert "Traceback" not in err
    for number in range(2, 2 + len(hostile)):
        assert f"results.ndjson line {number}: skipped" in err, (number, err)
    lines = [json.loads(x) for x in results.read_text().splitlines()]
    assert [line["patient"] for line in lines] == ["aza-febrile-c"]


@pytest.mark.parametrize("case", ["invalid-utf8", "cut-gzip", "fake-gz", "endless-line"])
def test_hostile_export_files_are_one_sentence_naming_the_file(tmp_path: Path, case: str) -> None:
    export = _export(tmp_path / "export")
    target = export / "MedicationRequest.ndjson"
    text = target.read_bytes()
    if case == "invalid-utf8":
        target.write_bytes(text + b'{"resourceType": "MedicationRequest", "id": "\xff\xfe"}\n')
        named = "MedicationRequest.ndjson, line 2: not UTF-8"
    elif case == "cut-gzip":
        target.unlink()
        (export / "MedicationRequest.ndjson.gz").write_bytes(gzip.compress(text * 50)[:-40])
        named = "MedicationRequest.ndjson.gz, after line"
    elif case == "fake-gz":
        target.unlink()
        (export / "MedicationRequest.ndjson.gz").write_bytes(text)
        named = "MedicationRequest.ndjson.gz, after line 0: unreadable"
    else:
        with target.open("ab") as fh:
            for _ in range(40):
                fh.write(b" " * (1 << 20))
        named = "MedicationRequest.ndjson, line 2: longer than"
    code, err = _scan(tmp_path / "out", "--ndjson", str(export))
    assert code == EXIT_INPUT, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("azaguard scan: ") and named in last, last


def test_the_cds_store_is_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from azaguard.cds.store import CdsStore

    monkeypatch.delenv("AZAGUARD_CDS_DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    (tmp_path / "state" / "azaguard").mkdir(parents=True, mode=0o755)
    (tmp_path / "state" / "azaguard").chmod(0o755)
    old = os.umask(0o022)
    try:
        store = CdsStore()
        store.feedback_since(NOW)
        store.close()
    finally:
        os.umask(old)
    folder = tmp_path / "state" / "azaguard"
    assert _mode(folder) == 0o700
    assert _mode(folder / "cds.sqlite") == 0o600


@pytest.mark.parametrize("name", ["run.json", "report.html", "actions.csv"])
def test_a_full_disk_after_the_scan_is_one_sentence_and_resume_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    import errno
    import tempfile

    export = _export(tmp_path / "export")
    out = tmp_path / "out"
    real = tempfile.mkstemp

    def full(*args: object, prefix: str = "", **kwargs: object) -> tuple[int, str]:
        if prefix.startswith(f".{name}."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, prefix=prefix, **kwargs)  # type: ignore[call-overload,no-any-return]

    with monkeypatch.context() as patched:
        patched.setattr(tempfile, "mkstemp", full)
        code, err = _scan(out, "--ndjson", str(export))
    assert code == EXIT_INPUT, err
    assert "Traceback" not in err
    assert "No space left on device" in err and "--resume" in err
    code, err = _scan(out, "--ndjson", str(export), "--resume")
    assert code == EXIT_OK, err
    assert (out / name).exists()
