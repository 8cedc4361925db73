"""The patient's wording table over the sandbox patients' findings (a clinician can read the table below)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from azaguard.findings import RULE_IDS, Evidence, Finding, Severity, Status
from azaguard.mappings import Mappings
from azaguard.patient.content import PatientContent
from azaguard.patient.messages import patient_messages
from azaguard.service import CheckResult
from azaguard.verdict import ACTION_STATUSES
from azaguard.wording import TABLES, key_for
from tests.patient.conftest import LONDON

# patient → (first message's urgency, words it must hold). The examples' now is 1 Nov 2026 12:00 UTC.
FIRST = {
    "aza-stable": ("info", "We found nothing in your record that you need to act on today."),
    "aza-febrile-c": ("today", "Your temperature was 38.6 °C this morning. Call your care team today."),
    "aza-febrile-f": ("today", "Your temperature was 101.8 °F this morning."),  # as recorded
    "aza-pneumonia": ("today", "Your record shows an infection: pneumonia."),
    "aza-antibiotic": ("today", "You have a new medicine for an infection: Amoxicillin 500 MG Oral Tablet."),
    "aza-mmr-due": ("before", "Your record shows the MMR vaccine due on 8 Nov. It is a live vaccine."),
    "aza-yellow-fever-order": ("before", "the yellow fever vaccine ordered this morning. It is a live vaccine. "
                               "Talk to your doctor before you have it."),
    "aza-shingrix": ("before", "It is not a live vaccine. Ask your doctor if it is OK before you have it."),
    "aza-leukopenic": ("today", "Your last blood count needs a look from your care team."),
    "aza-alt-raised": ("today", "Your last liver test needs a look from your care team."),
    "aza-cbc-overdue": ("week", "Your blood count is overdue. Your last one was on 12 Sep. Book a blood test"),
    "aza-no-weight": ("next-visit", "We could not check your dose from your record."),
    "aza-stopped": ("before", "It is a live vaccine."),
    "aza-not-on": ("next-visit", "Your record does not show that you take azathioprine now."),
    "aza-allopurinol": ("today", "allopurinol 100 MG Oral Tablet, can change how azathioprine works. Call your "
                        "care team today."),
    "aza-tpmt-intermediate": ("next-visit", "Ask about your dose at your next visit."),
}
# Never an instruction about the medicine itself: whom to contact and how soon, only.
MEDICINE_ORDERS = re.compile(r"\b(?:stop|stopping|pause|skip|halve|reduce|change your dose|hold)\b", re.IGNORECASE)


@pytest.mark.parametrize("patient_id", sorted(FIRST))
def test_the_first_message_says_what_to_do_and_how_soon(
    patient_id: str, checked: dict[str, CheckResult], mappings: Mappings, content: PatientContent, now: datetime
) -> None:
    result = checked[patient_id]
    messages = patient_messages(result.findings, now, mappings, content, LONDON)
    urgency, words = FIRST[patient_id]
    assert messages[0].urgency == urgency, messages
    assert words in messages[0].sentence


def test_messages_are_most_urgent_first_and_never_order_a_medicine_change(
    checked: dict[str, CheckResult], mappings: Mappings, content: PatientContent, now: datetime
) -> None:
    for patient_id, result in checked.items():
        messages = patient_messages(result.findings, now, mappings, content, LONDON)
        ranks = [content.urgency_rank(m.urgency) for m in messages]
        assert ranks == sorted(ranks), patient_id
        for m in messages:
            assert not MEDICINE_ORDERS.search(m.sentence), (patient_id, m.sentence)


def test_every_actionable_finding_of_the_sandbox_patients_has_a_row(
    checked: dict[str, CheckResult], content: PatientContent
) -> None:
    """Every hold or caution of the sandbox patients has words of its own rule, not the catch-all "something
    needs a look" (wording.TABLES["patient"], one table with the clinician's; cannot-evaluate names the check)."""
    unworded = [
        (f.rule, f.code) for result in checked.values() for f in result.findings
        if f.status in ACTION_STATUSES and key_for(TABLES["patient"], f) in ("*/hold", "*/caution")
    ]
    assert not unworded


def _fever(reference: str) -> Finding:
    return Finding(rule="infection-hold", code="fever", status=Status.HOLD, severity=Severity.HIGH,
                   mappings_version="x",
                   evidence=(Evidence(reference=reference, description="temperature", value="38.4 Cel"),))


def test_a_fact_the_record_does_not_hold_is_never_guessed(
    checked: dict[str, CheckResult], mappings: Mappings, content: PatientContent, now: datetime
) -> None:
    # A fever finding that states no trigger (no temperature, no time): the neutral words, never a guess, and
    # never a value re-read from the record by the evidence's reference.
    message = patient_messages([_fever("Observation/gone")], now, mappings, content, LONDON)[0]
    assert message.text == "Your temperature was high in the last few days."


def test_the_fever_is_dated_as_a_patient_says_it(
    checked: dict[str, CheckResult], mappings: Mappings, content: PatientContent, now: datetime
) -> None:
    result = checked["aza-febrile-c"]
    later = now + timedelta(hours=14)  # 06:00 seen from 02:00 the next day
    message = patient_messages(result.findings, later, mappings, content, LONDON)[0]
    assert message.text == "Your temperature was 38.6 °C yesterday morning."


def test_nothing_to_do_needs_a_passed_check(mappings: Mappings, content: PatientContent, now: datetime) -> None:
    cannot = Finding(rule="dose", code="dose-cannot-evaluate", status=Status.CANNOT_EVALUATE,
                     severity=Severity.MODERATE, mappings_version="x")
    messages = patient_messages([cannot], now, mappings, content, LONDON)
    assert [m.text for m in messages] == ["We could not check your dose from your record."]
    assert patient_messages([], now, mappings, content, LONDON)[0].text == (
        "Your record does not show that you take azathioprine now."
    )


@pytest.mark.parametrize(
    ("before_due", "urgency", "text"),
    [
        (timedelta(days=20), "info", "Your next blood test is due by 22 Nov."),
        (timedelta(days=7, minutes=1), "info", "Your next blood test is due by 22 Nov."),
        (timedelta(days=7), "week", "Your next blood test is due by 22 Nov."),  # soon_days: this week
        (timedelta(0), "week", "Your next blood test is due now."),
    ],
)
def test_the_next_blood_test_date(
    before_due: timedelta, urgency: str, text: str, checked: dict[str, CheckResult], mappings: Mappings,
    content: PatientContent, now: datetime,
) -> None:
    from azaguard.rules.monitoring import next_due

    record = checked["aza-stable"].record
    due = next_due(record, mappings, now)
    assert set(due) == {"cbc", "lft"}
    at = min(due.values()) - before_due
    messages = patient_messages(checked["aza-stable"].findings, at, mappings, content, LONDON, due=due)
    nxt = next(m for m in messages if m.code == "next-due")
    assert (nxt.urgency, nxt.text) == (urgency, text)


def test_an_overdue_test_is_not_also_given_a_due_date(
    checked: dict[str, CheckResult], mappings: Mappings, content: PatientContent, now: datetime
) -> None:
    from azaguard.rules.monitoring import next_due

    result = checked["aza-cbc-overdue"]
    due = next_due(result.record, mappings, now)
    messages = patient_messages(result.findings, now, mappings, content, LONDON, due=due)
    assert [m.code for m in messages] == ["cbc-overdue"]
    assert next_due(checked["aza-stopped"].record, mappings, now) == {}  # not on therapy: no schedule


@pytest.mark.parametrize("status", [Status.HOLD, Status.CAUTION, Status.CANNOT_EVALUATE])
@pytest.mark.parametrize("rule", RULE_IDS)
def test_a_finding_code_added_later_still_reaches_the_patient(
    rule: str, status: Status, mappings: Mappings, content: PatientContent, now: datetime
) -> None:
    finding = Finding(rule=rule, code="a-code-added-later", status=status,  # type: ignore[arg-type]
                      severity=Severity.MODERATE, mappings_version="x")
    messages = patient_messages([finding], now, mappings, content, LONDON)
    assert [m.rule for m in messages] == [rule]
    expected = {"hold": "today", "caution": "next-visit", "cannot-evaluate": "next-visit"}[status]
    if rule == "vaccination-hold" and status is not Status.CANNOT_EVALUATE:
        expected = "before"  # any vaccine the record plans: talk to the doctor before it
    assert messages[0].urgency == expected
