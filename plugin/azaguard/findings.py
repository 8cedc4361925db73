"""What a rule says about one patient: the Finding and its vocabulary."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from msgspec import Struct
from msgspec.structs import asdict

RuleId = Literal[
    "vaccination-hold",
    "infection-hold",
    "blood-counts",
    "liver",
    "kidney",
    "monitoring-schedule",
    "dose",
    "tpmt",
    "interactions",
    "pancreatitis",
]


def _rule_ids() -> tuple[RuleId, ...]:
    from azaguard.registry import RULES  # the registry's order is the report order

    return tuple(spec.id for spec in RULES)


RULE_IDS: tuple[RuleId, ...] = _rule_ids()


class Status(StrEnum):
    HOLD = "hold"
    CAUTION = "caution"
    OK = "ok"
    NOT_APPLICABLE = "not-applicable"
    CANNOT_EVALUATE = "cannot-evaluate"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MODERATE = "moderate"
    LOW = "low"
    INFO = "info"


# Most urgent first: used to order findings and pick a rule's headline.
STATUS_RANK: dict[Status, int] = {
    Status.HOLD: 0,
    Status.CANNOT_EVALUATE: 1,
    Status.CAUTION: 2,
    Status.OK: 3,
    Status.NOT_APPLICABLE: 4,
}
SEVERITY_RANK: dict[Severity, int] = {
    Severity.CRITICAL: 0,
    Severity.HIGH: 1,
    Severity.MODERATE: 2,
    Severity.LOW: 3,
    Severity.INFO: 4,
}


# Findings are frozen msgspec Structs (defined and built in C): a check imports no validation library
# (pydantic costs ~80 ms of a process); rules build them from typed values, which mypy checks.
SUMMARY_MAX_CHARS = 139  # the one limit: a summary fits a 140-character alert line (wording.sentence)


# --- facts ----------------------------------------------------------------------------------
# A rule states what it found as typed values; the wording layer (azaguard.wording) turns them into
# words for an audience: the rule writes no sentence (no summary, no detail; tests/test_messages.py). The
# names and clauses it does give (subject, reason, advice, missing, evidence description) are for people:
# no FHIR id, no raw UCUM code, no project document name.

Role = Literal["therapy", "trigger", "context"]
TherapyState = Literal["current", "on-hold", "starting", "stopped", "completed", "stop-date-unknown"]
TherapySource = Literal["request", "statement", "dispense", "administration"]


class Quantity(Struct, frozen=True, kw_only=True):
    """A value with its UCUM unit, as recorded or as normalised: the wording layer shows it in display units."""

    value: float
    unit: str | None = None  # UCUM code
    comparator: str = ""  # "<", ">=", ...
    decimals: int | None = None  # as recorded: never shown more precise than this


class Trigger(Struct, frozen=True, kw_only=True):
    """What set the finding off: a concept (named for people), its quantity, when, and where it is recorded."""

    concept: str  # "fever", "WBC", "Amoxicillin 500 MG Oral Tablet", "MMR"
    quantity: Quantity | None = None
    at: str | None = None  # ISO-8601 instant
    reference: str | None = None  # "Observation/123": linked, never shown as text
    source: TherapySource | None = None  # for a drug: how it is recorded (an order reads differently)

    @property
    def recorded_in(self) -> str | None:
        """The kind of record that holds it ("Immunization", "ImmunizationRecommendation"): a forecast is
        "due", a dose "given"."""
        return self.reference.split("/", 1)[0] if self.reference else None


class TherapyFact(Struct, frozen=True, kw_only=True):
    """The patient's azathioprine at evaluation time, as the rule judged it."""

    state: TherapyState
    source: TherapySource
    reference: str
    since: str | None = None  # ISO start
    stopped: str | None = None  # ISO end, for stopped/completed


class Evidence(Struct, frozen=True, kw_only=True):
    """One resource (and the value in it) that a finding rests on, with its role in the finding."""

    reference: str  # "Observation/123": linked, never shown as text
    description: str  # what, for people: "WBC", "live vaccine planned: MMR"
    role: Role = "context"
    quantity: Quantity | None = None  # the value as recorded (shown in display units)
    text: str | None = None  # a coded or text value, for people
    value: str | None = None  # as recorded: "3.1 10*3/uL", "101.2 [degF]" (JSON only)
    normalised: str | None = None  # canonical: "3.1 10*9/L", "38.4 Cel" (JSON only)
    date: str | None = None  # ISO-8601 as recorded

    def as_json(self) -> dict[str, Any]:
        """The evidence as JSON, unset fields left out."""
        return {k: v for k, v in asdict(self).items() if v is not None and k != "quantity"}


class Finding(Struct, frozen=True, kw_only=True):
    """A rule's verdict on one aspect of the patient's safety."""

    rule: RuleId
    code: str  # stable sub-code within the rule, e.g. "live-vaccine-planned"
    status: Status
    severity: Severity
    trigger: Trigger | None = None
    therapy: TherapyFact | None = None
    subject: str | None = None  # what the action is about, named: "MMR", "Full blood count", "allopurinol"
    reason: str | None = None  # a clause saying why, when no trigger says it: "3.2 mg/kg/day, above 2.5"
    advice: str | None = None  # a clause saying what else to do: "reduce the dose to 25 %"
    # The mappings source the finding rests on (a threshold's, a window's, a value set's): the wording layer
    # cites it by name ("BSR 2017 monitoring guideline"), never the raw text.
    source: str | None = None
    # What the rule checked or how it worked a value out, as short phrases for people ("WBC 5.2 ×10⁹/L
    # (30 Oct 2026)", "100 mg/day from 2 × 50 mg a day"): the explanation lists them.
    checked: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    missing: tuple[str, ...] = ()
    # Resources the alert is about (the azathioprine order, a vaccine order):
    # DetectedIssue.implicated when written back.
    implicated: tuple[str, ...] = ()
    mappings_version: str

    @property
    def actionable(self) -> bool:
        """Worth an alert in the chart (hold, caution, or cannot-evaluate)."""
        return self.status in (Status.HOLD, Status.CAUTION, Status.CANNOT_EVALUATE)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Rule order as in RULE_IDS, then most urgent first within a rule."""
    return sorted(
        findings,
        key=lambda f: (RULE_IDS.index(f.rule), STATUS_RANK[f.status], SEVERITY_RANK[f.severity], f.code),
    )
