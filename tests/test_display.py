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
    unit_text,
)
from azaguard.findings import Quantity
from azaguard.mappings import MappingsError, load_mappings, load_mappings_from
from azaguard.wording import Words, sentence

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


def test_recorded_quantities_are_shown_in_display_units() -> None:
    words = Words(NOW, M)
    assert words.quantity(Quantity(value=101.8, unit="[degF]", decimals=1)) == "101.8 °F"
    assert words.quantity(Quantity(value=0.5, unit="10*3/uL", comparator="<", decimals=1)) == "<0.5 ×10³/µL"
    assert words.quantity(Quantity(value=5.9, unit="G/L", decimals=1)) == "5.9 G/L"  # unknown: as recorded
    assert words.quantity(Quantity(value=38.78, unit="Cel")) == "38.8 °C"


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
