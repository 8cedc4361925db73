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
]
RULE_IDS: tuple[RuleId, ...] = (
    "vaccination-hold",
    "infection-hold",
    "blood-counts",
    "liver",
    "kidney",
    "monitoring-schedule",
    "dose",
    "tpmt",
    "interactions",
)


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
SUMMARY_MAX_CHARS = 139  # a summary fits a 140-character alert line


class Evidence(Struct, frozen=True, kw_only=True):
    """One resource (and the value in it) that a finding rests on."""

    reference: str  # "Observation/123"
    description: str  # "WBC", "MMR vaccine recommended", ...
    value: str | None = None  # as recorded: "3.1 10*3/uL", "101.2 [degF]"
    normalised: str | None = None  # canonical: "3.1 10*9/L", "38.4 Cel"
    date: str | None = None  # ISO-8601 as recorded

    def as_json(self) -> dict[str, Any]:
        """The evidence as JSON, unset fields left out."""
        return {k: v for k, v in asdict(self).items() if v is not None}


class Finding(Struct, frozen=True, kw_only=True):
    """A rule's verdict on one aspect of the patient's safety."""

    rule: RuleId
    code: str  # stable sub-code within the rule, e.g. "live-vaccine-planned"
    status: Status
    severity: Severity
    summary: str
    detail: str
    evidence: tuple[Evidence, ...] = ()
    missing: tuple[str, ...] = ()
    # Resources the alert is about (the azathioprine order, a vaccine order):
    # DetectedIssue.implicated when written back.
    implicated: tuple[str, ...] = ()
    mappings_version: str

    def __post_init__(self) -> None:
        if len(self.summary) > SUMMARY_MAX_CHARS:
            raise ValueError(f"finding {self.code!r}: summary longer than {SUMMARY_MAX_CHARS} characters")

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
