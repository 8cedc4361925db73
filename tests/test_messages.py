"""One clinical message made from facts: the wording bugs it fixes, and that nothing re-parses rule text."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from azaguard.findings import RULE_IDS, Finding, RuleId, Severity, Status
from azaguard.mappings import load_mappings
from azaguard.registry import RULES, SPEC
from azaguard.verdict import action_of
from azaguard.wording import TABLES, Words, key_for
from tests.clinical import builders as b

M = load_mappings()
PLUGIN = Path(__file__).resolve().parents[1] / "plugin" / "azaguard"


def _vaccine_action(*resources: b.Resource, ordering_context: bool = False) -> str:
    found = [f for f in b.findings(*resources, ordering_context=ordering_context) if f.rule == "vaccination-hold"]
    assert found[0].code == "live-vaccine-planned", found
    return action_of(found[0], b.NOW, M).summary


@pytest.mark.parametrize(
    "therapy",
    [
        pytest.param(lambda: b.azathioprine(status="stopped", started_days_ago=300, ended_days_ago=20),
                     id="order stopped"),
        pytest.param(lambda: b.azathioprine(status="completed", started_days_ago=300, ended_days_ago=20),
                     id="order completed"),
        pytest.param(lambda: b.medication_statement(status="stopped", started_days_ago=300, ended_days_ago=20),
                     id="statement stopped"),
        pytest.param(lambda: b.medication_statement(status="completed", started_days_ago=300, ended_days_ago=20),
                     id="statement completed"),
    ],
)
def test_stopped_azathioprine_and_a_live_vaccine_says_stopped_not_on(therapy: object) -> None:
    summary = _vaccine_action(therapy(), b.recommendation("03"))  # type: ignore[operator]
    assert "stopped less than 3 months ago" in summary, summary
    assert "is on azathioprine" not in summary


def test_current_azathioprine_and_a_live_vaccine_says_on_azathioprine() -> None:
    summary = _vaccine_action(b.azathioprine(), b.recommendation("03"))
    assert summary == ("Do not give the MMR vaccine (live) — the patient is on azathioprine; "
                       "discuss with the prescriber.")


def test_a_new_azathioprine_order_for_a_patient_not_on_it_says_before_starting() -> None:
    summary = _vaccine_action(b.azathioprine(status="draft", started_days_ago=None), b.recommendation("03"),
                              ordering_context=True)
    assert "before starting azathioprine" in summary and "is on azathioprine" not in summary, summary


def test_a_new_order_beside_current_therapy_still_says_on_azathioprine() -> None:
    summary = _vaccine_action(b.azathioprine(), b.azathioprine(status="draft", started_days_ago=None),
                              b.recommendation("03"), ordering_context=True)
    assert "the patient is on azathioprine" in summary


@pytest.mark.parametrize(
    ("record", "words"),
    [
        (lambda: b.medication_request("723", display="Amoxicillin 500 MG Oral Tablet", started_days_ago=2),
         "amoxicillin 500 mg tablets ordered"),  # the drug named as a clinician writes it (issue 20)
        (lambda: b.medication_statement("723", display="Amoxicillin 500 MG Oral Tablet", started_days_ago=2),
         "taking amoxicillin 500 mg tablets (recorded"),
        (lambda: b.medication_dispense("723", display="Amoxicillin 500 MG Oral Tablet", handed_over_days_ago=2),
         "amoxicillin 500 mg tablets dispensed"),
        (lambda: b.medication_administration("723", display="Amoxicillin 500 MG Oral Tablet", days_ago=0.5),
         "amoxicillin 500 mg tablets given"),
    ],
    ids=["request", "statement", "dispense", "administration"],
)
def test_an_anti_infective_reads_as_it_was_recorded(record: object, words: str) -> None:
    normal = b.observation("8310-5", 36.8, "Cel", days_ago=0, hours_ago=3)
    found = [f for f in b.findings(b.azathioprine(), normal, record())  # type: ignore[operator]
             if f.code == "anti-infective"]
    summary = action_of(found[0], b.NOW, M).summary
    assert summary.startswith("Hold azathioprine — " + words), summary
    if "ordered" not in words:
        assert "order" not in summary.lower()


# --- one registry, one wording table --------------------------------------------------------------


def test_the_registry_is_the_one_list_of_rules() -> None:
    assert RULE_IDS == tuple(s.id for s in RULES) == get_args(RuleId)
    assert len({s.label for s in RULES}) == len(RULES)
    for spec in RULES:
        assert callable(spec.load())


@pytest.mark.parametrize("rule", RULE_IDS)
@pytest.mark.parametrize("status", [Status.HOLD, Status.CAUTION, Status.CANNOT_EVALUATE])
def test_every_rule_has_wording_for_every_actionable_status(rule: RuleId, status: Status) -> None:
    f = Finding(rule=rule, code="some-new-code", status=status, severity=Severity.MODERATE,
                reason="something found", mappings_version=M.version)
    action = Words(b.NOW, M).action(f)
    assert action.verb and action.object and action.reason and len(action.summary) < 140 and action.detail
    assert key_for(TABLES["patient"], f)  # the patient's words too (at least the rule's or everyone's)


def test_labels_are_the_registrys_on_every_surface() -> None:
    from azaguard.cds.cards import Links, _source

    for spec in RULES:
        assert _source(spec.id, Links(None, None))["topic"]["display"] == SPEC[spec.id].label


# --- nothing re-parses rule text ------------------------------------------------------------------

_REPARSING = re.compile(
    r"humanise_text|humanise_quantity|clinician_text|_name_after_colon|_vaccine_name|_after_colon|_last_clause|"
    r"\.split\(\" overdue\"|\"status stopped\" in|startswith\(\"azathioprine order\"\)"
)


def test_no_surface_re_parses_what_a_rule_wrote() -> None:
    hits = [
        f"{p.relative_to(PLUGIN)}:{n}: {line.strip()}"
        for p in PLUGIN.rglob("*.py")
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if _REPARSING.search(line)
    ]
    assert not hits, "\n".join(hits)
    for module in ("verdict.py", "display.py", "wording.py"):
        assert not re.search(r"^import re$", (PLUGIN / module).read_text(encoding="utf-8"), re.MULTILINE), module


def test_the_140_character_limit_lives_in_one_place() -> None:
    hits = [f"{p.relative_to(PLUGIN)}:{n}" for p in PLUGIN.rglob("*.py")
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if re.search(r"[<>]=? *1(38|39|40)\b|\[: *1(38|39|40)\]", line.split("#", 1)[0])
            and "SUMMARY_MAX_CHARS" not in line]
    assert not hits, hits


# --- findings carry facts, not sentences (issue 22) ------------------------------------------------

_RULE_CALLS = ("make_finding", "Finding", "add")  # add: the lab rules' _Report.add


def test_a_finding_has_no_sentence_fields() -> None:
    assert not {"summary", "detail", "text", "message"} & set(Finding.__struct_fields__)


def test_no_rule_constructs_a_sentence_for_a_finding() -> None:
    """Every Finding a rule builds passes facts only: no summary/detail keyword, and nothing positional beyond
    (mappings, rule, code, status, severity) — a sentence would have to come in as one of those."""
    import ast

    problems = []
    for path in sorted((PLUGIN / "rules").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name not in _RULE_CALLS:
                continue
            words = {k.arg for k in node.keywords} & {"summary", "detail", "text", "message"}
            limit = 5 if name == "make_finding" else 4 if name == "add" else 0
            strings = [a for a in node.args[limit:] if isinstance(a, ast.JoinedStr | ast.Constant | ast.BinOp)]
            if words or strings:
                problems.append(f"{path.name}:{node.lineno}: {name}() given {sorted(words) or 'a sentence'}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("days_later", [0, 40, 120])
def test_missing_data_never_words_as_ok(days_later: int) -> None:
    """Every cannot-evaluate finding of every example and sandbox patient (and as the data ages) says "Cannot
    check" and what is needed; an ok or does-not-apply finding never asks for data."""
    from datetime import timedelta

    from azaguard.resources import load_json_file
    from azaguard.sandbox.patients import EXAMPLES_NOW
    from azaguard.service import check_resources

    now = EXAMPLES_NOW + timedelta(days=days_later)
    said = Words(now, M, None, "absolute")
    examples = sorted((PLUGIN.parents[1] / "examples").glob("aza-*.json"))
    problems = []
    for path in examples:
        for f in check_resources(load_json_file(path), mappings=M, now=now).findings:
            line = said.line(f)
            if f.status is Status.CANNOT_EVALUATE and not line.startswith("Cannot check"):
                problems.append(f"{path.stem} {f.rule}/{f.code}: {line!r}")
            if f.status in (Status.OK, Status.NOT_APPLICABLE) and (f.missing or line.startswith("Cannot")):
                problems.append(f"{path.stem} {f.rule}/{f.code} ({f.status}): asks for {f.missing} / {line!r}")
    assert not problems, "\n".join(problems)
