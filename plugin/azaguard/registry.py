"""The rule registry: one table of what each rule is. Ids, report order, labels, what a cannot-check
says it cannot check, and whether a rule still applies after azathioprine is stopped are all read here.

Adding a rule is one entry (and its function); its wording lives in azaguard.wording. The function is
named as "module:attribute" and imported when the engine first runs (rules.load), so this table imports
nothing: the findings, the rules and the wording all read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from msgspec import Struct

if TYPE_CHECKING:
    from azaguard.findings import RuleId


class RuleSpec(Struct, frozen=True, kw_only=True):
    id: RuleId
    function: str  # "azaguard.rules.labs:liver"
    applies_after_stop: bool  # True: judged while stopped less than the recent window ago
    label: str  # the rule's one label on every surface: page, cards, scan, chart
    checks: str  # what "Cannot check …" names: "the blood count"
    short: str = ""  # a column header of at most 9 characters (the demo's summary table); default: the label
    # The resource types it reads besides the therapy (every rule reads that): a failed read of one of them
    # leaves the rule unable to say ok (rules._unread).
    reads: tuple[str, ...] = ()


_RESULTS = ("Observation", "DiagnosticReport")
RULES: tuple[RuleSpec, ...] = (
    RuleSpec(id="vaccination-hold", function="azaguard.rules.vaccination:evaluate", applies_after_stop=True,
             short="vaccine", label="Vaccines", checks="live vaccines",
             reads=("Immunization", "ImmunizationRecommendation", "ServiceRequest")),
    RuleSpec(id="infection-hold", function="azaguard.rules.infection:evaluate", applies_after_stop=False,
             short="infection", label="Infection", checks="for infection",
             reads=(*_RESULTS, "Condition", "QuestionnaireResponse")),
    RuleSpec(id="blood-counts", function="azaguard.rules.labs:blood_counts", applies_after_stop=False,
             short="counts", label="Blood count", checks="the blood count",
             reads=(*_RESULTS, "Condition", "QuestionnaireResponse")),
    RuleSpec(id="liver", function="azaguard.rules.labs:liver", applies_after_stop=False,
             short="liver", label="Liver", checks="liver tests",
             reads=(*_RESULTS, "Condition", "QuestionnaireResponse")),
    RuleSpec(id="kidney", function="azaguard.rules.labs:kidney", applies_after_stop=False,
             short="kidney", label="Kidney", checks="kidney function", reads=(*_RESULTS, "Condition")),
    RuleSpec(id="monitoring-schedule", function="azaguard.rules.monitoring:evaluate", applies_after_stop=False,
             short="monitor", label="Blood test schedule", checks="the blood test schedule", reads=_RESULTS),
    RuleSpec(id="dose", function="azaguard.rules.dosing:dose", applies_after_stop=False,
             short="dose", label="Dose", checks="the dose", reads=_RESULTS),
    RuleSpec(id="tpmt", function="azaguard.rules.dosing:tpmt", applies_after_stop=False,
             short="tpmt", label="TPMT", checks="TPMT status",
             reads=(*_RESULTS, "FamilyMemberHistory", "Procedure")),
    RuleSpec(id="interactions", function="azaguard.rules.dosing:interactions", applies_after_stop=False,
             short="interact", label="Interactions", checks="interactions"),
    RuleSpec(id="pancreatitis", function="azaguard.rules.pancreatitis:evaluate", applies_after_stop=False,
             short="pancreas", label="Pancreatitis", checks="for pancreatitis", reads=(*_RESULTS, "Condition")),
)
SPEC: dict[str, RuleSpec] = {s.id: s for s in RULES}


def short(rule: str) -> str:
    """The rule's column header (at most 9 characters)."""
    spec = SPEC.get(rule)
    return (spec.short or spec.label)[:9] if spec else rule[:9]


def label(rule: str | None) -> str:
    """The rule's label ('Blood count'); an unknown id (an old alert's) as written."""
    spec = SPEC.get(rule or "")
    return spec.label if spec else (rule or "")
