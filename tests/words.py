"""A finding in the clinician's words for tests: its line and explanation as the JSON report carries them
(the wording layer's; a finding carries no text of its own)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from azaguard.findings import Finding
from azaguard.mappings import load_mappings
from azaguard.wording import Words
from tests.clinical.builders import NOW


class Said(NamedTuple):
    summary: str
    detail: str


def said(f: Finding, now: datetime = NOW) -> Said:
    """The finding's line and explanation (absolute dates, as in the chart)."""
    words = Words(now, load_mappings(), None, "absolute")
    return Said(words.line(f), words.detail(f))
