"""Lab results by analyte, not by one code: pathogens (lab_infections.json), enzyme activity and named analytes.

A lab-local code carries the analyte only in its display or text, so recognition is by the LOINC codes in
common use first, then by the analyte's name. A pathogen's name counts only beside a direct method (NAA/PCR,
DNA/RNA, antigen, culture, viral load) and never beside an antibody or immunity word: a CMV IgG is past
exposure, not infection. Reading a result (positive / negative / equivocal) and an activity (normal /
intermediate / poor) uses what the lab said: the coded value, the interpretation flags, the words, and a
number against the lab's own reference range or its "<" floor; never a cut-off of azaguard's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

from msgspec import Struct

from azaguard.mappings import Mappings
from azaguard.terminology._common import NameSet, fold, names_match

if TYPE_CHECKING:
    from azaguard.fhirtypes.concept import Concept
    from azaguard.units import Quantity

ResultClass = Literal["positive", "negative", "equivocal", "unknown"]
ActivityClass = Literal["normal", "intermediate", "poor"]


class PathogenMatch(Struct, frozen=True):
    key: str
    how: str  # "LOINC 94500-6" / "by name 'cmv' (CMV DNA PCR Quant)"


def pathogen_of(concept: Concept, m: Mappings) -> PathogenMatch | None:
    """The pathogen a lab test's code proves (with a direct method), if any."""
    lab = m.lab_infections
    codes = concept.codes_in(m.systems.loinc)
    for key, p in lab.pathogens.items():
        hit = codes.intersection(p.loinc)
        if hit:
            return PathogenMatch(key, f"LOINC {sorted(hit)[0]}")
    names = [f" {fold(n).lower()} " for n in concept.names]
    if not names or names_match(names, lab.not_proof_words) or not _any_substring(names, lab.method_words):
        return None
    for key, p in lab.pathogens.items():
        word = names_match(names, p.names)
        if word:
            return PathogenMatch(key, f"by name '{word}' ({concept.label})")
    return None


def _any_substring(names: list[str], words: Iterable[str]) -> bool:
    return any(w in n for n in names for w in words)


def activity_of(concept: Concept, m: Mappings) -> str | None:
    """'tpmt-activity' / 'nudt15-activity' when the code is an enzyme activity test (its value decides)."""
    codes = concept.codes_in(m.systems.loinc)
    for key, spec in m.analytes.activity_analytes.by_key.items():
        if codes.intersection(spec.loinc) or names_match(concept.names, spec.names):
            return key
    return None


LIPASE = "lipase"  # the record's analyte key for a lipase result (read as the lab sent it)


def is_lipase(concept: Concept, m: Mappings) -> bool:
    spec = m.pancreatitis.lipase
    if concept.codes_in(m.systems.loinc).intersection(spec.loinc):
        return True
    return bool(names_match(concept.names, spec.names)) and not names_match(concept.names, spec.exclude_names)


def analyte_by_name(concept: Concept, m: Mappings) -> str | None:
    """A measured analyte known only by name (6-TGN, 6-MMP under a lab-local code)."""
    for key, a in m.analytes.analytes.items():
        if a.names and names_match(concept.names, a.names):
            return key
    return None


def named_anything(m: Mappings) -> NameSet:
    """One screen for every name that makes an Observation worth reading (signs, pathogens, named analytes,
    enzyme activities): the record builder's quick test on codes it does not know."""
    return m.derived(_named_anything)


def _named_anything(mm: Mappings) -> NameSet:
    return NameSet(screened_names(mm))


def screened_names(mm: Mappings) -> set[str]:
    """Every name the record builder's screen looks for."""
    words: set[str] = set()
    for sign in mm.signs.signs.values():
        words.update(sign.names)
    for p in mm.lab_infections.pathogens.values():
        words.update(p.names)
    for a in mm.analytes.analytes.values():
        words.update(a.names)
    for spec in mm.analytes.activity_analytes.by_key.values():
        words.update(spec.names)
    words.update(mm.pancreatitis.lipase.names)
    return words


# --- reading a result ---------------------------------------------------------------------------


class LabValue(Protocol):
    """What a lab result says (the record's Result, whichever kind): each kind reads None for the others'."""

    @property
    def recorded(self) -> Quantity | None: ...
    @property
    def concept(self) -> Concept | None: ...
    @property
    def text(self) -> str | None: ...


class LabResult(Protocol):
    """What the result readers below read of a lab result (the record's Measurement is one): terminology
    reads a result by what it holds, not by the record's type (the record imports terminology, not back)."""

    @property
    def result(self) -> LabValue: ...
    @property
    def interpretation(self) -> tuple[str, ...]: ...
    @property
    def interpretation_text(self) -> tuple[str, ...]: ...
    @property
    def range_low(self) -> float | None: ...
    @property
    def range_high(self) -> float | None: ...
    @property
    def range_unit(self) -> str | None: ...
    @property
    def range_text(self) -> str | None: ...


def result_class(meas: LabResult, m: Mappings, *, culture: bool = False) -> tuple[ResultClass, str]:
    """Positive / negative / equivocal / unknown, and what said so. Any positive signal wins (fail safe)."""
    lab = m.lab_infections
    found: dict[ResultClass, str] = {}
    value = meas.result.concept
    if value is not None:
        coded = _coded_class(value, m)
        if coded is not None:
            found.setdefault(coded, f"value {value.label}")
        else:
            worded = _word_class(value.names, m)
            if worded is not None:
                found.setdefault(worded, f"value '{value.label}'")
            elif culture:
                found.setdefault("positive", f"organism reported: {value.label}")
    if meas.result.text:
        worded = _word_class([meas.result.text], m)
        if worded is not None:
            found.setdefault(worded, f"value '{meas.result.text}'")
        elif culture and meas.result.text.strip():
            found.setdefault("positive", f"organism reported: '{meas.result.text}'")
    for flag in meas.interpretation:
        for cls in ("positive", "negative", "equivocal"):
            if flag in getattr(lab.interpretation, cls):
                found.setdefault(cls, f"interpretation {flag}")
    q = meas.result.recorded
    if q is not None and q.value is not None:
        found_q = _quantity_class(meas)
        if found_q is not None:
            found.setdefault(found_q[0], found_q[1])
    for cls in ("positive", "equivocal", "negative"):
        if cls in found:
            return cls, found[cls]
    return "unknown", "no detected/not detected value, interpretation or reference limit"


def _coded_class(value: Concept, m: Mappings) -> ResultClass | None:
    codes = m.lab_infections.result_values
    for coding in value.codings:
        system = m.systems.name_of(coding.system)
        if system is None:
            continue
        for cls in ("negative", "equivocal", "positive"):
            if coding.code in getattr(codes, cls).get(system, frozenset()):
                return cls
    return None


def _word_class(names: Sequence[str], m: Mappings) -> ResultClass | None:
    words = m.lab_infections.result_words
    for cls in ("negative", "equivocal", "positive"):  # "not detected" holds "detected"
        if names_match(names, getattr(words, cls)):
            return cls
    return None


_FLOOR = re.compile(r"^\s*<\s*=?\s*(\d+(?:\.\d+)?)")


def _quantity_class(meas: LabResult) -> tuple[ResultClass, str] | None:
    q = meas.result.recorded
    assert q is not None and q.value is not None  # noqa: S101 - checked by the caller
    if q.comparator in ("<", "<="):
        return "negative", f"{q.comparator}{q.value:g}: below the lab's limit"
    if q.value == 0:
        return "negative", "0: none measured"
    high = meas.range_high
    if high is None and meas.range_text:
        floor = _FLOOR.match(meas.range_text)
        high = float(floor.group(1)) if floor else None
    if high is None or not _same_unit(meas):
        return None
    if q.value > high:
        return "positive", f"{q.value:g} above the lab's limit {high:g}"
    return "negative", f"{q.value:g} within the lab's limit {high:g}"


def _same_unit(meas: LabResult) -> bool:
    """The range's unit is the value's (or not given): only then do the numbers compare."""
    q = meas.result.recorded
    unit = meas.range_unit
    return unit is None or q is None or unit in (q.code, q.unit)


def activity_class(meas: LabResult, m: Mappings) -> tuple[ActivityClass | None, str]:
    """A TPMT/NUDT15 activity by the lab's flags, words or reference range; (None, why) when none says."""
    spec = m.analytes.activity_analytes
    flags = set(meas.interpretation)
    if flags & spec.poor_interpretations:
        return "poor", f"interpretation {sorted(flags & spec.poor_interpretations)[0]}"
    words = list(meas.interpretation_text) + ([meas.result.text] if meas.result.text else [])
    if meas.result.concept is not None:
        words += meas.result.concept.names
    for cls, listed in (("poor", spec.poor_words), ("intermediate", spec.low_words), ("normal", spec.normal_words)):
        word = names_match(words, listed)
        if word:
            return cls, f"reported as '{word}'"  # type: ignore[return-value]
    if flags & spec.low_interpretations:
        return "intermediate", f"interpretation {sorted(flags & spec.low_interpretations)[0]} (below the range)"
    if flags & spec.normal_interpretations:
        return "normal", f"interpretation {sorted(flags & spec.normal_interpretations)[0]}"
    q = meas.result.recorded
    if q is None or q.value is None:
        return None, "no value"
    if meas.range_low is None:
        return None, "no reference range and no interpretation from the lab"
    if not _same_unit(meas):
        return None, "the reference range is in another unit than the value"
    shown = f"{q.comparator or ''}{q.value:g}"
    if q.comparator in ("<", "<=") and q.value <= meas.range_low:
        return "intermediate", f"{shown}, below the lab's range (from {meas.range_low:g})"
    if q.comparator is None and q.value < meas.range_low:
        return "intermediate", f"{shown}, below the lab's range (from {meas.range_low:g})"
    if q.comparator in (None, ">", ">="):
        return "normal", f"{shown}, within the lab's range (from {meas.range_low:g})"
    return None, f"{shown} cannot be compared with the lab's range"
