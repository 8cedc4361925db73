"""One reading of FHIR dates, with one supported range (years 1900 to 2999)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from azaguard.errors import FhirDataError, InputError
from azaguard.fhirtypes import dates


def test_partial_dates_read_earliest_or_latest() -> None:
    assert dates.earliest("2026") == datetime(2026, 1, 1, tzinfo=UTC)
    assert dates.earliest("2026-08") == datetime(2026, 8, 1, tzinfo=UTC)
    assert dates.latest("2026") == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert dates.latest("2026-02") == datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC)
    assert dates.latest("2026-02-03") == datetime(2026, 2, 3, tzinfo=UTC)
    assert dates.latest("2999") == dates.SUPPORTED[1]


def test_a_time_without_a_zone_is_utc_and_objects_already_read_pass_through() -> None:
    assert dates.earliest("2026-08-01T10:00:00") == datetime(2026, 8, 1, 10, tzinfo=UTC)
    plus2 = timezone(timedelta(hours=2))
    assert dates.earliest("2026-08-01T10:00:00+02:00") == datetime(2026, 8, 1, 10, tzinfo=plus2)
    assert dates.earliest(date(2026, 8, 1)) == datetime(2026, 8, 1, tzinfo=UTC)
    assert dates.earliest(datetime(2026, 8, 1, 10)) == datetime(2026, 8, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize("value", [None, 5, "", "yesterday", "2026-02-30", "2026-13", "1899-12-31",
                                   "3000-01-01", "0001-01-01T00:00:00Z", "1899"])
def test_lenient_readers_give_no_date_for_what_is_not_one_in_range(value: object) -> None:
    assert dates.earliest(value) is None and dates.latest(value) is None


@pytest.mark.parametrize(("text", "ok"), [
    ("1900-01-01", True), ("1899-12-31", False), ("1899-12-31T23:59:59-01:00", True),
    ("2999-12-31T23:59:59Z", True), ("3000-01-01", False), ("2999-12-31T23:59:59-00:01", False),
])
def test_one_range_at_its_edges(text: str, ok: bool) -> None:
    if ok:
        assert dates.moment(text).tzinfo == UTC
    else:
        with pytest.raises(InputError, match="outside the supported range"):
            dates.moment(text)


def test_fhir_readers_refuse_off_calendar_and_out_of_range_values() -> None:
    assert dates.fhir_date("2026-02-28") == date(2026, 2, 28)
    for bad in ("2026-02-30", "1899-12-31"):
        with pytest.raises(FhirDataError):
            dates.fhir_date(bad)
    assert dates.fhir_datetime("2026-02-28T10:00:00.1234567Z") == datetime(2026, 2, 28, 10, 0, 0, 123456, tzinfo=UTC)
    with pytest.raises(FhirDataError):
        dates.fhir_datetime("0001-01-01T00:00:00Z")
    with pytest.raises(FhirDataError):
        dates.partial_year("1899")


def test_zoned_needs_a_time_and_its_zone() -> None:
    assert dates.zoned("2026-08-01T10:00:00Z") == datetime(2026, 8, 1, 10, tzinfo=UTC)
    assert dates.zoned("2026-08-01T10:00:00") is None
    assert dates.zoned("2026-08-01") is None


def test_partial_note_says_how_a_partial_date_was_read() -> None:
    assert dates.partial_note("2026-08-01", "latest") is None
    note = dates.partial_note("2026-08", "latest")
    assert note is not None and "month only" in note and "31 Aug 2026" in note
    note = dates.partial_note("2026", "earliest")
    assert note is not None and "year only" in note and "01 Jan 2026" in note
