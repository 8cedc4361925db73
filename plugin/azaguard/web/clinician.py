"""The clinician's page: / (the patient's verdict, evidence, charts and the alerts in the chart) and /alerts
(POST: write the alerts, then POST-redirect-GET to the page, which shows what the write did, once)."""

from __future__ import annotations

import hmac
from urllib.parse import urlencode

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from azaguard import service
from azaguard.smart.launch import can_read_alerts, can_write_alerts, is_patient_user
from azaguard.smart.session import LaunchContext, Session
from azaguard.web.context import WebContext
from azaguard.web.launchflow import RELAUNCH, home_path
from azaguard.web.names import user_name
from azaguard.web.pages import FailureWords, root
from azaguard.web.tokens import SessionExpired
from azaguard.web.views import WriteReport, page_model, write_report, zone_of

# What the clinician's pages say when the record cannot be had (web.pages.Pages.failure), by status.
FAILURES = {
    401: FailureWords("Session expired", "Your session with the EHR ended.", kind="expired", advice=RELAUNCH),
    403: FailureWords("The EHR refused access", "The FHIR server refused: {error}"),
    502: FailureWords("Cannot read the patient's record",
                      "The FHIR server could not provide the record, so nothing was evaluated.", detail=True),
    500: FailureWords("azaguard could not finish this", "Something went wrong inside azaguard, so nothing was "
                      "evaluated. Hospital IT: the service's log says what."),
}


class ClinicianPage:
    def __init__(self, web: WebContext) -> None:
        self.web = web

    def page(self, request: Request) -> Response:
        web = self.web
        session = web.session(request)
        ctx = web.sessions.launch(session, request.query_params.get("ctx")) if session else None
        if ctx is not None and is_patient_user(ctx.identity):
            return RedirectResponse(root(request) + home_path(ctx), status_code=303)  # never the clinician's page
        if session is None or ctx is None:
            return web.pages.message(request, 401, "No patient open", "azaguard has no active launch in this browser.",
                                     kind="expired", advice=RELAUNCH)
        # The outcome of a write, shown once after its redirect (POST-redirect-GET): a reload shows the chart.
        written = self.take_written(session, ctx)
        result = self.check(request, session, ctx, write=False)
        if isinstance(result, Response):
            return result
        model = page_model(
            result, mappings=web.mappings, tokens=ctx.tokens, identity=ctx.identity,
            user_name=user_name(web.sessions, web.tokens, session, ctx), written=written,
            can_write=can_write_alerts(ctx.tokens.scope), csrf_token=session.csrf_token, ctx=ctx.id,
            fhir_base=ctx.iss, now=web.now(),
        )
        return web.pages.render(request, "page.html", **model.context())

    async def alerts(self, request: Request) -> Response:
        form = await request.form()
        return await run_in_threadpool(self.alerts_sync, request, form)

    def alerts_sync(self, request: Request, form: FormData) -> Response:
        web = self.web
        session = web.session(request)
        sent = form.get("csrf_token")
        if session is None or not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf_token):
            return web.pages.message(request, 403, "Request refused",
                                     "The form was not sent from this session's page (CSRF check).",
                                     advice="Reload the page and try again.")
        launch_id = form.get("ctx")
        ctx = web.sessions.launch(session, launch_id if isinstance(launch_id, str) else None)
        if ctx is None:
            return web.pages.expired(request, web.now())
        if not can_write_alerts(ctx.tokens.scope):
            return web.pages.message(
                request, 403, "Alerts cannot be written",
                "This launch was not granted permission to write DetectedIssue and Flag resources.",
                detail=f"Granted: {ctx.tokens.scope}",
            )
        outcome = self.check(request, session, ctx, write=True)
        if isinstance(outcome, Response):
            return outcome
        ctx.written = msgspec.json.encode(write_report(outcome.writes))
        web.sessions.update_launch(session, ctx)
        return RedirectResponse(f"{root(request)}/?{urlencode({'ctx': ctx.id})}#written", status_code=303)

    def take_written(self, session: Session, ctx: LaunchContext) -> WriteReport | None:
        """The last write's report, forgotten as it is read (the page after the redirect shows it once)."""
        if ctx.written is None:
            return None
        report = msgspec.json.decode(ctx.written, type=WriteReport)
        ctx.written = None
        self.web.sessions.update_launch(session, ctx)
        return report

    def check(
        self, request: Request, session: Session, ctx: LaunchContext, *, write: bool
    ) -> service.CheckResult | Response:
        """Gather, evaluate and (on write) write; the expired page when the session with the EHR is over (any
        other failure leaves for the app's error page). Audited either way: who (fhirUser), which patient, view
        or write, outcome, from where."""
        return self.web.audited(request, ctx, "app.write-alerts" if write else "app.view",
                                lambda: self._check(request, session, ctx, write=write))

    def _check(
        self, request: Request, session: Session, ctx: LaunchContext, *, write: bool
    ) -> service.CheckResult | Response:
        web = self.web
        now = web.now()
        tz = zone_of(ctx.identity)
        try:
            return web.tokens.with_token(
                session, ctx,
                lambda client: service.check_on_server(
                    client, ctx.patient_id, mappings=web.mappings, now=now, write=write, dry_run=not write, tz=tz,
                    terminology=web.terminology,
                    # Not granted: not asked for (a server may refuse the whole batch for them).
                    read_alerts=can_read_alerts(ctx.tokens.scope),
                ),
            )
        except SessionExpired:
            # The launch is kept: a reload says the same (when and how to relaunch), never "No patient open".
            return web.pages.expired(request, web.now(), ctx)
