"""The committed warning-sign value sets are what the ICD-10 hierarchies give for their roots (as the infection
sets are), and every sign's codes are keyed by known systems."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from azaguard.mappings import load_mappings

ROOT = Path(__file__).resolve().parent.parent


def test_committed_sign_value_sets_match_the_hierarchies() -> None:
    script = ROOT / "scripts" / "generate_sign_valuesets.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_roots_expand_to_their_subcodes() -> None:
    signs = load_mappings().signs.signs
    assert {"R05.1", "R05.9"} <= set(signs["cough"].codes["icd10cm"])  # ICD-10-CM splits R05 since 2021
    assert set(signs["cough"].codes["icd10"]) == {"R05"}  # WHO ICD-10 does not
    assert {"R11.0", "R11.2", "R19.7"} <= set(signs["gastrointestinal"].codes["icd10cm"])
    assert "R31.0" in signs["urine_appearance"].codes["icd10cm"]
