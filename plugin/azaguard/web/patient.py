"""The patient view: the SMART app for a patient signed in to their portal (standalone launch).

Routes, added to the app by create_app: /patient/start (the patient's standalone launch: the app's
`patient_scopes`), /patient/ (the view), /patient/checkin (POST: the check-in, POST-redirect-GET). A launch
whose user is a Patient (id_token fhirUser) lands here and never on the clinician's page; a clinician's
launch still opens the clinician's page. The view renders the check's findings through the patient's
wording table (patient/messages.py), the leaflet's guidance with their last tests, and the check-in form.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from azaguard import service
from azaguard.display import format_day
from azaguard.fhir.client import BatchResult
from azaguard.fhir.errors import FhirError
from azaguard.patient.checkin import (
    CHECKIN_ID,
    TEMPERATURE_UNITS,
    Answers,
    CheckinError,
    advice,
    answers_from_response,
    read_answers,
    transaction,
)
from azaguard.patient.content import (
    PatientContent,
    check_against,
    load_patient_content,
    load_questionnaire,
    sign_options,
)
from azaguard.patient.leaflet import GuidanceSection, guidance
from azaguard.patient.messages import PatientMessage, patient_messages
from azaguard.rules.monitoring import next_due
from azaguard.smart.launch import is_patient_user, permissions
from azaguard.smart.session import LaunchContext, Session
from azaguard.web.pages import FailureWords, address, cookie, root
from azaguard.web.tokens import SessionExpired
from azaguard.web.views import zone_of

if TYPE_CHECKING:
    from azaguard.web.context import WebContext

log = logging.getLogger("azaguard.web.patient")
RELAUNCH = "Open azaguard again from your patient portal."
NOT_FOUND = "We could not find your answers in your record. If you feel unwell, call your care team."
LATER = "Try again later. If you feel unwell, call your care team."
# What the patient's pages say when their record cannot be had (web.pages.Pages.failure), by status: in their
# words, without the server's (those are for hospital IT, in the log).
FAILURES = {
    401: FailureWords("You are signed out", "Your sign-in has ended.", kind="expired", advice=RELAUNCH),
    403: FailureWords("We cannot open your record", "Your record could not be read.", advice=RELAUNCH),
    502: FailureWords("We cannot open your record", "Your record could not be read just now, so we checked nothing.",
                      advice=LATER),
    500: FailureWords("Something went wrong", "azaguard could not finish this just now, so we checked nothing.",
                      advice=LATER),
}


@dataclass(frozen=True)
class CheckinOutcome:
    """What a check-in did: its advice, whether its answers are in the record, and why not."""

    messages: list[PatientMessage]
    saved: bool
    problem: str | None


@dataclass(frozen=True)
class PatientPage:
    """Every variable patient.html reads."""

    name: str | None
    checked: str  # the day of the check, in the patient's words
    messages: list[PatientMessage]
    sections: list[GuidanceSection]
    signs: list[tuple[str, str]]  # (code, label) of the check-in's warning signs
    units: list[tuple[str, str]]  # (UCUM code, symbol) of the temperature units
    question: dict[str, str]  # the check-in's question text by linkId
    checkin_id: str  # a fresh id: the check-in's idempotency key
    can_checkin: bool
    outcome: CheckinOutcome | None
    csrf_token: str
    ctx: str
    saved_words: str
    version: str

    def context(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class PatientView:
    def __init__(self, web: WebContext) -> None:
        self.web = web
        folder = web.mappings_dir
        self.content: PatientContent = load_patient_content(folder)
        self.questionnaire = load_questionnaire(folder)
        check_against(self.content, web.mappings)

    def url(self, request: Request, ctx: LaunchContext, checkin_id: str) -> str:
        query = urlencode({"ctx": ctx.id, "checkin": checkin_id})
        return f"{root(request)}/patient/?{query}#checkin-result"

    # -- routes --
    def start(self, request: Request) -> Response:
        web = self.web
        if web.config.patient_scopes is None:
            return web.pages.message(request, 404, "No patient launch", "This app is not set up for patients.")
        return web.pages.answer(request, web.flow.start(request.query_params, cookie(request), address(request),
                                                        scopes=web.config.patient_scopes))

    def _launch(self, request: Request, launch_id: str | None) -> tuple[Session, LaunchContext] | Response:
        session = self.web.session(request)
        ctx = self.web.sessions.launch(session, launch_id) if session else None
        if session is None or ctx is None:
            return self.web.pages.message(request, 401, "You are signed out",
                                          "azaguard has no open check for you here.", kind="expired", advice=RELAUNCH)
        return session, ctx

    def page(self, request: Request) -> Response:
        found = self._launch(request, request.query_params.get("ctx"))
        if isinstance(found, Response):
            return found
        session, ctx = found
        # After a check-in's redirect: its answers read back from the record (what is there, on any replica).
        shown = request.query_params.get("checkin", "")
        outcome = self.read_back(session, ctx, shown) if CHECKIN_ID.fullmatch(shown) else None
        return self.render_view(request, session, ctx, outcome)

    def render_view(
        self, request: Request, session: Session, ctx: LaunchContext, outcome: CheckinOutcome | None,
        status: int = 200,
    ) -> Response:
        result = self.web.audited(request, ctx, "patient.view", lambda: self.check(session, ctx))
        tz = zone_of(ctx.identity)
        now = result.evaluated_at
        model = PatientPage(
            name=result.patient.name if result.patient and result.patient.name else None,
            checked=format_day(now, tz),
            messages=patient_messages(result.findings, now, self.web.mappings, self.content, tz,
                                      due=next_due(result.record, self.web.mappings, now)),
            sections=guidance(result.record, now, self.content, tz),
            signs=[(o["code"], self.content.signs[o["code"]].label) for o in sign_options(self.questionnaire)],
            units=[(u, "°C" if u == "Cel" else "°F") for u in TEMPERATURE_UNITS],
            question={i["linkId"]: i["text"] for i in self.questionnaire["item"]},
            checkin_id=secrets.token_hex(16),
            can_checkin=can_write_checkin(ctx.tokens.scope),
            outcome=outcome,
            csrf_token=session.csrf_token,
            ctx=ctx.id,
            saved_words=self.content.checkin_advice.saved,
            version=self.content.version,
        )
        return self.web.pages.render(request, "patient.html", status, **model.context())

    async def checkin(self, request: Request) -> Response:
        form = await request.form()
        return await run_in_threadpool(self.checkin_sync, request, form)

    def checkin_sync(self, request: Request, form: FormData) -> Response:
        session = self.web.session(request)
        sent = form.get("csrf_token")
        if session is None or not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf_token):
            return self.web.pages.message(request, 403, "Request refused", "The form was not sent from your page.",
                                    advice="Go back, reload the page and try again.")
        launch_id = form.get("ctx")
        found = self._launch(request, launch_id if isinstance(launch_id, str) else None)
        if isinstance(found, Response):
            return found
        session, ctx = found
        fields = {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form}
        try:
            answers = read_answers(fields, self.questionnaire, self.web.mappings)
        except CheckinError as exc:  # nothing written: the page again, saying what to change
            return self.render_view(request, session, ctx, CheckinOutcome([], saved=False, problem=str(exc)), 400)
        saved, problem = self.web.audited(request, ctx, "patient.checkin", lambda: self.write(session, ctx, answers),
                                          lambda done: "written" if done[0] else "not written")
        messages = advice(answers, self.content, self.web.mappings)
        if not saved:  # the advice still stands, with why the answers are not in the record
            return self.render_view(request, session, ctx, CheckinOutcome(messages, saved=False, problem=problem))
        return RedirectResponse(self.url(request, ctx, answers.checkin_id), status_code=303)

    def read_back(self, session: Session, ctx: LaunchContext, checkin_id: str) -> CheckinOutcome:
        """The check-in as the record holds it, with the advice for it."""
        qr_id = f"azg-checkin-{checkin_id}"
        try:
            stored = self.web.tokens.with_token(session, ctx,
                                                lambda client: client.read("QuestionnaireResponse", qr_id))
        except (FhirError, SessionExpired):
            stored = {}
        answers = answers_from_response(stored, self.questionnaire, self.web.mappings)
        subject = (stored.get("subject") or {}).get("reference")
        if answers is None or subject != f"Patient/{ctx.patient_id}":
            return CheckinOutcome([], saved=False, problem=NOT_FOUND)
        return CheckinOutcome(advice(answers, self.content, self.web.mappings), saved=True, problem=None)

    # -- the EHR --
    def write(self, session: Session, ctx: LaunchContext, answers: Answers) -> tuple[bool, str | None]:
        """Write the check-in with the patient's token; (saved, why not)."""
        if not can_write_checkin(ctx.tokens.scope):
            return False, "Your sign-in does not allow azaguard to save answers to your record."
        entries = transaction(answers, ctx.patient_id, self.web.now(), self.questionnaire, self.web.mappings)
        try:
            results = self.web.tokens.with_token(session, ctx, lambda client: client.transaction(entries))
        except SessionExpired:
            return False, "You were signed out. Sign in again and send your answers again."
        except FhirError as exc:
            log.info("check-in not saved: %s", type(exc).__name__)
            return False, "We could not save your answers to your record. Please call your care team."
        if not stored_as_sent(entries, results):
            return False, "We could not save your answers to your record. Please call your care team."
        return True, None

    def check(self, session: Session, ctx: LaunchContext) -> service.CheckResult:
        """The patient's check; a failure leaves for the app's error page (FAILURES)."""
        now = self.web.now()
        return self.web.tokens.with_token(
            session, ctx,
            lambda client: service.check_on_server(
                client, ctx.patient_id, mappings=self.web.mappings, now=now, tz=zone_of(ctx.identity),
                read_alerts=False,  # the chart's alerts are for the clinician
                terminology=self.web.terminology,
            ),
        )


def stored_as_sent(entries: list[dict[str, Any]], results: list[BatchResult]) -> bool:
    """Each entry succeeded, and what came back (when the server returns it) is the resource sent, under its id:
    a 2xx naming another resource is not a saved check-in."""
    if len(results) != len(entries):
        return False
    for entry, result in zip(entries, results, strict=True):
        sent = entry["resource"]
        back = result.resource
        if not result.ok:
            return False
        if back is not None and (back.get("resourceType"), back.get("id")) != (sent["resourceType"], sent["id"]):
            return False
    return True


def can_write_checkin(granted: str) -> bool:
    """Saving a check-in creates a QuestionnaireResponse and an Observation (PUT: create or update)."""
    return all({"c", "u"} <= permissions(granted, t) for t in ("QuestionnaireResponse", "Observation"))


def is_patient_launch(ctx: LaunchContext) -> bool:
    return is_patient_user(ctx.identity)


def patient_routes(web: WebContext) -> list[Route]:
    view = PatientView(web)
    return [
        Route("/patient/", view.page, name="patient"),
        Route("/patient/start", view.start, name="patient-start"),
        Route("/patient/checkin", view.checkin, methods=["POST"], name="patient-checkin"),
    ]
