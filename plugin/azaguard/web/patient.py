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
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from azaguard import service
from azaguard.display import format_day
from azaguard.fhir.errors import AuthDenied, FhirError
from azaguard.patient.checkin import TEMPERATURE_UNITS, Answers, CheckinError, advice, read_answers, transaction
from azaguard.patient.content import (
    PatientContent,
    check_against,
    load_patient_content,
    load_questionnaire,
    sign_options,
)
from azaguard.patient.leaflet import guidance
from azaguard.patient.messages import PatientMessage, patient_messages
from azaguard.resources import InputError
from azaguard.rules.monitoring import next_due
from azaguard.smart.launch import is_patient_user, permissions
from azaguard.smart.session import LaunchContext, Session

if TYPE_CHECKING:
    from azaguard.web.app import _Web

log = logging.getLogger("azaguard.web.patient")
RELAUNCH = "Open azaguard again from your patient portal."


class CheckinOutcome:
    """What the last check-in did, shown once after its redirect."""

    def __init__(self, messages: list[PatientMessage], saved: bool, problem: str | None) -> None:
        self.messages = messages
        self.saved = saved
        self.problem = problem


class PatientView:
    def __init__(self, web: _Web) -> None:
        self.web = web
        folder = web.mappings_dir
        self.content: PatientContent = load_patient_content(folder)
        self.questionnaire = load_questionnaire(folder)
        check_against(self.content, web.mappings)
        self.outcomes: dict[tuple[str, str], CheckinOutcome] = {}

    def url(self, request: Request, ctx: LaunchContext, anchor: str = "") -> str:
        return f"{self.web.root(request)}/patient/?{urlencode({'ctx': ctx.id})}{anchor}"

    # -- routes --
    def start(self, request: Request) -> Response:
        limited = self.web.rate_limited(request)
        if limited is not None:
            return limited
        if self.web.config.patient_scopes is None:
            return self.web.message(request, 404, "No patient launch", "This app is not set up for patients.")
        iss = request.query_params.get("iss") or self.web.config.allowed_iss[0]
        refused = self.web.refuse_iss(request, iss)
        if refused is not None:
            return refused
        return self.web.begin(request, iss, None, scopes=self.web.config.patient_scopes)

    def _launch(self, request: Request, launch_id: str | None) -> tuple[Session, LaunchContext] | Response:
        session = self.web.session(request)
        ctx = self.web.sessions.launch(session, launch_id) if session else None
        if session is None or ctx is None:
            return self.web.message(request, 401, "You are signed out", "azaguard has no open check for you here.",
                                    kind="expired", advice=RELAUNCH)
        return session, ctx

    def page(self, request: Request) -> Response:
        found = self._launch(request, request.query_params.get("ctx"))
        if isinstance(found, Response):
            return found
        session, ctx = found
        result = self.web.audited(request, ctx, "patient.view", lambda: self.check(request, ctx))
        if isinstance(result, Response):
            return result
        from azaguard.web.app import zone_of

        tz = zone_of(ctx.identity)
        now = result.evaluated_at
        outcome = self.outcomes.pop((session.id, ctx.id), None)
        return self.web.render(
            request, "patient.html",
            name=result.patient.name if result.patient and result.patient.name else None,
            checked=format_day(now, tz),
            messages=patient_messages(result.findings, result.record, now, self.web.mappings, self.content, tz,
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

    async def checkin(self, request: Request) -> Response:
        form = await request.form()
        return await run_in_threadpool(self.checkin_sync, request, form)

    def checkin_sync(self, request: Request, form: FormData) -> Response:
        session = self.web.session(request)
        sent = form.get("csrf_token")
        if session is None or not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf_token):
            return self.web.message(request, 403, "Request refused", "The form was not sent from your page.",
                                    advice="Go back, reload the page and try again.")
        launch_id = form.get("ctx")
        found = self._launch(request, launch_id if isinstance(launch_id, str) else None)
        if isinstance(found, Response):
            return found
        session, ctx = found
        fields = {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form}
        try:
            answers = read_answers(fields, self.questionnaire, self.web.mappings)
        except CheckinError as exc:
            self.outcomes[(session.id, ctx.id)] = CheckinOutcome([], saved=False, problem=str(exc))
            return RedirectResponse(self.url(request, ctx, "#checkin"), status_code=303)
        saved, problem = self.web.audited(request, ctx, "patient.checkin", lambda: self.write(ctx, answers),
                                          lambda done: "written" if done[0] else "not written")
        messages = advice(answers, self.content, self.web.mappings)
        self.outcomes[(session.id, ctx.id)] = CheckinOutcome(messages, saved=saved, problem=problem)
        return RedirectResponse(self.url(request, ctx, "#checkin-result"), status_code=303)

    # -- the EHR --
    def write(self, ctx: LaunchContext, answers: Answers) -> tuple[bool, str | None]:
        """Write the check-in with the patient's token; (saved, why not)."""
        if not can_write_checkin(ctx.tokens.scope):
            return False, "Your sign-in does not allow azaguard to save answers to your record."
        entries = transaction(answers, ctx.patient_id, self.web.now(), self.questionnaire, self.web.mappings)
        from azaguard.web.app import SessionExpired

        try:
            results = self.web.with_token(ctx, lambda client: client.transaction(entries))
        except SessionExpired:
            return False, "You were signed out. Sign in again and send your answers again."
        except FhirError as exc:
            log.info("check-in not saved: %s", type(exc).__name__)
            return False, "We could not save your answers to your record. Please call your care team."
        if not all(r.ok for r in results):
            return False, "We could not save your answers to your record. Please call your care team."
        return True, None

    def check(self, request: Request, ctx: LaunchContext) -> service.CheckResult | Response:
        from azaguard.web.app import SessionExpired, zone_of

        now = self.web.now()
        try:
            return self.web.with_token(
                ctx,
                lambda client: service.check_on_server(
                    client, ctx.patient_id, mappings=self.web.mappings, now=now, tz=zone_of(ctx.identity),
                    read_alerts=False,  # the chart's alerts are for the clinician
                ),
            )
        except SessionExpired:
            return self.web.message(request, 401, "You are signed out", "Your sign-in has ended.", kind="expired",
                                    advice=RELAUNCH)
        except AuthDenied:
            return self.web.message(request, 403, "We cannot open your record", "Your record could not be read.",
                                    advice=RELAUNCH)
        except (FhirError, InputError):
            return self.web.message(request, 502, "We cannot open your record",
                                    "Your record could not be read just now, so we checked nothing.",
                                    advice="Try again later. If you feel unwell, call your care team.")


def can_write_checkin(granted: str) -> bool:
    """Saving a check-in creates a QuestionnaireResponse and an Observation (PUT: create or update)."""
    return all({"c", "u"} <= permissions(granted, t) for t in ("QuestionnaireResponse", "Observation"))


def is_patient_launch(ctx: LaunchContext) -> bool:
    return is_patient_user(ctx.identity)


def patient_routes(web: _Web) -> list[Route]:
    view = PatientView(web)
    web.patient_view = view
    return [
        Route("/patient/", view.page, name="patient"),
        Route("/patient/start", view.start, name="patient-start"),
        Route("/patient/checkin", view.checkin, methods=["POST"], name="patient-checkin"),
    ]
