"""Every message a patient can be shown reads at grade 8 or below (Flesch-Kincaid, textstat)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from azaguard.mappings import Mappings
from azaguard.patient.checkin import advice, read_answers
from azaguard.patient.content import PatientContent, sign_options
from azaguard.patient.leaflet import guidance
from azaguard.patient.messages import patient_messages
from azaguard.rules.monitoring import next_due
from azaguard.service import CheckResult
from azaguard.wording import PATIENT, fill
from tests.patient.conftest import LONDON

textstat = pytest.importorskip("textstat")
GRADE = 8.0


def grade(text: str) -> float:
    return float(textstat.flesch_kincaid_grade(text))


def test_the_grade_measure_can_fail() -> None:
    hard = ("Azathioprine-associated myelosuppression necessitates comprehensive haematological surveillance "
            "notwithstanding apparently satisfactory clinical circumstances.")
    assert grade(hard) > GRADE


def test_every_message_for_the_sandbox_patients(
    checked: dict[str, CheckResult], mappings: Mappings, content: PatientContent, now: datetime
) -> None:
    too_hard = []
    for patient_id, result in checked.items():
        due = next_due(result.record, mappings, now)
        for m in patient_messages(result.findings, now, mappings, content, LONDON, due=due):
            if grade(m.sentence) > GRADE:
                too_hard.append(f"{patient_id}: {grade(m.sentence):.1f} {m.sentence}")
    assert not too_hard, "\n".join(too_hard)


def test_the_guidance_and_its_test_dates(
    checked: dict[str, CheckResult], content: PatientContent, now: datetime
) -> None:
    sections = guidance(checked["aza-stable"].record, now, content, LONDON)
    texts = [" ".join((f"{s.heading}.", *s.paragraphs, *s.tests)) for s in sections]  # each section as read
    too_hard = [f"{grade(t):.1f} {t}" for t in texts if grade(t) > GRADE]
    assert not too_hard, "\n".join(too_hard)


def test_every_check_in_advice_and_sign(
    questionnaire: dict[str, Any], mappings: Mappings, content: PatientContent
) -> None:
    forms = [
        {"temperature": ["38.6"], "sign": ["43724002", "162397003"]},
        {"temperature": ["37.9"], "sign": ["49727002"]},
        {"sign": ["131148009"]},
        {"sign": ["260413007"]},
    ]
    form_text = " ".join(
        [str(i["text"]) for i in questionnaire["item"]]
        + [f"{content.signs[o['code']].label}." for o in sign_options(questionnaire)]
    )  # the form as read: its questions, then each sign as a line
    texts = [content.checkin_advice.saved, form_text]
    for form in forms:
        answers = read_answers({"checkin": ["0" * 32], **form}, questionnaire, mappings)
        texts += [m.sentence for m in advice(answers, content, mappings)]
    too_hard = [f"{grade(t):.1f} {t}" for t in texts if grade(t) > GRADE]
    assert not too_hard, "\n".join(too_hard)


def test_every_row_of_the_wording_table(content: PatientContent) -> None:
    """Rows no sandbox patient reaches (a lab-proven infection, a reported side effect…), with sample facts."""
    facts = {"temperature": "38.4 °C", "when": "yesterday evening", "condition": "Pneumonia", "drug": "allopurinol",
             "vaccine": "yellow fever", "planned": "due on 12 Dec", "date": "on 12 Oct", "test": "blood count",
             "check": "dose", "threshold": "38.0 °C", "contact": content.contact}
    rows = [*PATIENT.values(), content.next_test.due, content.next_test.due_now, content.not_on_medicine]
    texts = [fill(f"{row.text} {row.todo}", facts, content.fallbacks) for row in rows]
    too_hard = [f"{grade(t):.1f} {t}" for t in texts if grade(t) > GRADE]
    assert not too_hard, "\n".join(too_hard)
