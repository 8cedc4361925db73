"""QuestionnaireResponses: a symptom check-in's answers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from azaguard import fhirshapes as fs
from azaguard.fhirtypes.raw import RawObject
from azaguard.record.model import Code, Concept, Lasting, SignEntry
from azaguard.record.reading import as_latest, number_of, partial_date_note, raw_status, ref_of
from azaguard.record.state import BuilderState
from azaguard.terminology.signs import (
    answer_presence,
    length_from_words,
    length_in_days,
    sign_by_name,
    sign_of,
)


class QuestionnaireReading(BuilderState):
    """QuestionnaireResponses: a symptom check-in's answers."""

    # -- QuestionnaireResponse: a symptom check-in --
    def _questionnaire_response(self, raw: RawObject) -> None:
        qr = self.reader.read(raw, fs.QuestionnaireResponse)
        status = raw_status(raw)
        if status == "entered-in-error":
            return
        ref = ref_of(raw)
        when, note = as_latest(qr.authored), partial_date_note(qr.authored, "latest")
        questions = self._questions(qr.questionnaire, raw)
        lengths: dict[int, Lasting] = {}  # a length nested under an item: its own answer, not a sign
        for item in _response_items(qr.item or ()):
            if id(item) in lengths:
                continue
            question_codes, question_text = questions.get(item.linkId, ((), None))
            text = item.text or question_text
            question = Concept(codings=question_codes, text=text or item.linkId)
            lasting = self._nested_length(item, questions, lengths)
            for answer in item.answer or []:
                self._answer(ref, status, when, note, item.linkId, question, answer, lasting)

    def _nested_length(
        self, item: fs.QuestionnaireResponseItem, questions: dict[str, tuple[tuple[Code, ...], str | None]],
        seen: dict[int, Lasting],
    ) -> Lasting | None:
        """A length of time answered in an item nested under this one ("How many days?" under "Cough?"): a
        Quantity in a unit of time, or a number whose question names the unit. The nested item is marked as
        read so that it is not taken for a sign itself."""
        children = list(item.item or ()) + [c for a in item.answer or () for c in a.item or ()]
        for child in children:
            text = child.text or questions.get(child.linkId, ((), None))[1] or ""
            for answer in child.answer or []:
                q = answer.valueQuantity
                if q is not None:
                    days = length_in_days(number_of(q.value), q.code, q.unit, self.m)
                    said = f"{q.value:g} {q.unit or q.code or ''}".rstrip() if q.value is not None else "?"
                else:
                    number = answer.valueInteger if answer.valueInteger is not None else answer.valueDecimal
                    if number is None:
                        continue
                    days, said = length_from_words(number_of(number), [text, child.linkId], self.m), f"{number:g}"
                    if days is None:
                        continue  # a number that is not a length of time (a severity score)
                lasting = Lasting(f"answer '{said}' to '{text or child.linkId}'", days=days, unreadable=days is None)
                seen[id(child)] = lasting
                return lasting
        return None

    def _answer(
        self, ref: str, status: str, when: datetime | None, note: str | None, link_id: str, question: Concept,
        answer: fs.QuestionnaireResponseAnswer, lasting: Lasting | None = None,
    ) -> None:
        shown = f"'{question.text}'" if question.text else f"item {link_id}"
        coding = answer.valueCoding
        if coding is not None and coding.code is not None:
            code = coding.code
            coded = Concept(codings=(Code(coding.system, code, coding.display),))
            if sign_of(coded, self.m) is not None:  # the answer is the symptom ("Which symptoms?": Cough)
                self.signs.append(SignEntry(ref, "QuestionnaireResponse", coded, True, when, status,
                                            f"answer {coded.label} to {shown}", note, lasting))
                return
            present = answer_presence([(coding.system, code)], [coding.display or code], self.m)
            said = coding.display or code
        elif answer.valueBoolean is not None:
            present, said = bool(answer.valueBoolean), "Yes" if answer.valueBoolean else "No"
        elif answer.valueString is not None:
            present, said = answer_presence([], [answer.valueString], self.m), answer.valueString
            if present is None and sign_by_name([answer.valueString], self.m) is not None:
                self.signs.append(SignEntry(ref, "QuestionnaireResponse", Concept(text=answer.valueString), True,
                                            when, status, f"answer '{answer.valueString}' to {shown}", note,
                                            lasting))
                return
        elif answer.valueInteger is not None:  # a severity score: 0 is none
            present, said = answer.valueInteger > 0, str(answer.valueInteger)
        elif answer.valueQuantity is not None:  # the length itself ("Cough: for how long?" 3 d)
            q = answer.valueQuantity
            days = length_in_days(number_of(q.value), q.code, q.unit, self.m)
            said = f"{q.value:g} {q.unit or q.code or ''}".rstrip() if q.value is not None else "?"
            present = q.value is None or q.value > 0
            lasting = Lasting(f"answer '{said}' to {shown}", days=days, unreadable=days is None)
        else:
            return
        if present is None:
            return
        if sign_of(question, self.m) is None and sign_by_name([link_id], self.m) is None:
            return
        self.signs.append(SignEntry(ref, "QuestionnaireResponse", question, present, when, status,
                                    f"answer '{said}' to {shown}", note, lasting))

    def _questions(self, canonical: str | None, raw: RawObject) -> dict[str, tuple[tuple[Code, ...], str | None]]:
        """linkId -> (the Questionnaire item's codes, its text), from the Questionnaire the answers follow:
        contained ('#id'), or in the record by canonical URL (a '|version' ignored) or Questionnaire/id."""
        if not canonical:
            return {}
        target: RawObject | None = None
        if canonical.startswith("#"):
            target = self._target(canonical, raw)
        else:
            url = canonical.split("|")[0]
            target = next((q for q in self.of_type("Questionnaire") if q.get("url") == url), None)
            target = target or self._target(url, raw)
        if target is None or target.get("resourceType") != "Questionnaire":
            return {}
        questionnaire = self.reader.read(target, fs.Questionnaire)
        out: dict[str, tuple[tuple[Code, ...], str | None]] = {}
        for item in _questionnaire_items(questionnaire.item or ()):
            codes = tuple(Code(c.system, c.code, c.display) for c in item.code or [] if c.code is not None)
            out[item.linkId] = (codes, item.text)
        return out


def _response_items(items: Iterable[fs.QuestionnaireResponseItem]) -> Iterator[fs.QuestionnaireResponseItem]:
    """QuestionnaireResponse items depth first, with the items nested under items and under answers."""
    for item in items:
        yield item
        yield from _response_items(item.item or ())
        for answer in item.answer or ():
            yield from _response_items(answer.item or ())


def _questionnaire_items(items: Iterable[fs.QuestionnaireItem]) -> Iterator[fs.QuestionnaireItem]:
    """Questionnaire items depth first, with the items nested under them."""
    for item in items:
        yield item
        yield from _questionnaire_items(item.item or ())
