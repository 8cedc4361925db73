"""Numbers, units and dates as a clinician reads them (display.py over mappings/display.json)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from azaguard.display import (
    cite,
    format_date,
    format_moment,
    format_quantity,
    humanise_quantity,
    humanise_text,
    sentence,
    unit_text,
)
from azaguard.mappings import MappingsError, load_mappings, load_mappings_from

M = load_mappings()
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
REPO_MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"


@pytest.mark.parametrize(
    ("code", "shown"),
    [("10*9/L", "×10⁹/L"), ("Cel", "°C"), ("[degF]", "°F"), ("mL/min/{1.73_m2}", "mL/min/1.73 m²"),
     ("umol/L", "µmol/L"), ("mg/kg/d", "mg/kg/day"), ("U/L", "U/L"), ("g/L", "g/L"), ("fL", "fL"),
     ("G/L", "G/L")],  # an unknown code is shown as recorded, never guessed
)
def test_units_are_shown_as_clinicians_write_them(code: str, shown: str) -> None:
    assert unit_text(code, M) == shown


@pytest.mark.parametrize(
    ("value", "unit", "recorded", "shown"),
    [
        (38.78, "Cel", None, "38.8 °C"),  # converted from °F: the meaningful digit
        (79.56, "umol/L", None, "80 µmol/L"),  # creatinine in whole µmol/L
        (146, "U/L", 0, "146 U/L"),
        (6.0, "10*9/L", 0, "6 ×10⁹/L"),  # never more decimals than recorded
        (3.14159, "10*9/L", 5, "3.1 ×10⁹/L"),
        (88.4, "mL/min/{1.73_m2}", 1, "88 mL/min/1.73 m²"),
        (-0.04, "Cel", None, "0.0 °C"),  # no "-0.0"
    ],
)
def test_values_are_rounded_to_the_source_or_the_meaningful_digit(
    value: float, unit: str, recorded: int | None, shown: str
) -> None:
    assert format_quantity(value, unit, M, recorded_decimals=recorded) == shown


def test_recorded_values_are_humanised_and_text_is_left_alone() -> None:
    assert humanise_quantity("101.8 [degF]", M) == "101.8 °F"
    assert humanise_quantity("<0.5 10*3/uL", M) == "<0.5 ×10³/µL"
    assert humanise_quantity("5.9 G/L", M) == "5.9 G/L"
    assert humanise_quantity("Intermediate metabolizer", M) == "Intermediate metabolizer"


def test_rule_text_loses_raw_codes_echoes_and_iso_dates() -> None:
    text = "WBC 2.9 10*3/uL (= 2.9 10*9/L) on 2026-10-22 is < 3.5 10*9/L; eGFR 88 mL/min/{1.73_m2}; 38.78 Cel"
    out = humanise_text(text, M, NOW)
    assert out == "WBC 2.9 ×10³/µL on 22 Oct 2026 is < 3.5 ×10⁹/L; eGFR 88 mL/min/1.73 m²; 38.8 °C"
    assert humanise_text("3.45 mg/kg/day", M, NOW) == "3.45 mg/kg/day"  # 'mg' inside another unit: untouched
    assert humanise_text("Some NHS protocols use 2.0 x10^9/L", M, NOW).endswith("2.0 ×10⁹/L")


def test_dates_read_as_a_clinician_says_them_in_the_users_zone() -> None:
    assert format_date("2026-11-21T09:00:00Z", NOW) == "21 Nov 2026, 9 days ago"
    assert format_date("2026-11-30T06:00:00Z", NOW) == "today 06:00"
    assert format_date("2026-11-29T18:30:00+00:00", NOW) == "yesterday 18:30"
    assert format_date(date(2026, 12, 7), NOW) == "7 Dec 2026, in 7 days"
    assert format_date("2026-11", NOW).startswith("1 Nov 2026")  # a FHIR partial date
    assert format_date(None, NOW) == "date not recorded"
    # 02:00 UTC on the 30th is still the 29th in New York: the user's zone decides "today".
    assert format_date("2026-11-30T02:00:00Z", NOW) == "today 02:00"
    assert format_date("2026-11-30T02:00:00Z", NOW, ZoneInfo("America/New_York")) == "yesterday 21:00"
    assert format_moment("2026-11-30T06:00:00.123456Z") == "30 Nov 2026 06:00"  # no microseconds


def test_sources_are_cited_by_name_never_as_project_files() -> None:
    assert cite("BSR/BHPR 2017: withhold if WBC < 3.5 x10^9/L", M) == "BSR 2017 monitoring guideline"
    assert cite("CPIC thiopurines 2018 (Relling et al., CPT 2019) and 2024 update", M) == (
        "CPIC thiopurine guideline (2018, updated 2024)"
    )
    assert cite("something unknown", M) is None


def test_summaries_are_whole_sentences_under_140_characters() -> None:
    long = "Order CBC with platelets — last one 12 Sep 2026, 50 days ago; due every 31 days and " + "x" * 80
    out = sentence(long)
    assert len(out) < 140 and out.endswith(".") and "xxx" not in out
    assert sentence("hold azathioprine") == "Hold azathioprine."


def test_display_table_is_validated_on_load(tmp_path: Path) -> None:
    for f in REPO_MAPPINGS.glob("*.json"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    display = json.loads((tmp_path / "display.json").read_text(encoding="utf-8"))
    del display["units"]["Cel"]  # a canonical unit without a display
    (tmp_path / "display.json").write_text(json.dumps(display), encoding="utf-8")
    with pytest.raises(MappingsError, match="no display for temperature"):
        load_mappings_from(tmp_path)
    display["units"]["Cel"] = {"text": "°C", "decimals": 7}
    (tmp_path / "display.json").write_text(json.dumps(display), encoding="utf-8")
    with pytest.raises(MappingsError, match="decimals"):
        load_mappings_from(tmp_path)
