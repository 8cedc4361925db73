"""The SMART app: launch endpoints and the clinician's page.

Routes (mounted under /app by the site): /launch (EHR launch), /start
(standalone), /callback (redirect_uri), / (the page), /alerts (POST: write
alerts), /static. Tokens stay in the server-side session store; the browser
holds only a random session id (HttpOnly, SameSite=Lax) and, in the page URL,
the id of its launch so that two tabs with two patients never mix.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from azaguard import service
from azaguard.alerts import ExistingAlert, WriteOutcome
from azaguard.config import AppConfig, Scopes, load_app_config
from azaguard.display import format_date, format_day
from azaguard.fhir.client import PROCESS_POOLS, FhirClient
from azaguard.fhir.errors import AuthDenied, AuthExpired, FhirError
from azaguard.fhirtypes.reference import parse_reference
from azaguard.findings import STATUS_RANK, Severity, Status
from azaguard.mappings import Mappings, load_mappings
from azaguard.ops import audit, logs, metrics, runtime
from azaguard.registry import label
from azaguard.resources import InputError
from azaguard.smart.discovery import DiscoveryCache, DiscoveryError
from azaguard.smart.launch import (
    Identity,
    TokenError,
    TokenSet,
    authorize_url,
    can_read_alerts,
    can_write_alerts,
    exchange_code,
    is_patient_user,
    new_state,
    read_identity,
    refresh,
    select_scope,
)
from azaguard.smart.pkce import new_pkce
from azaguard.smart.session import LaunchContext, PendingAuthorization, Session, SessionStore
from azaguard.verdict import ACTION_STATUSES, Action, RuleLine, Verdict
from azaguard.web.charts import trend_charts
from azaguard.web.security import BodyLimit, PinnedOrigin, SecurityHeaders

if TYPE_CHECKING:
    from azaguard.terminology.server import TerminologyServer

log = logging.getLogger("azaguard.web")

HERE = Path(__file__).resolve().parent
COOKIE = "azaguard_session"
RELAUNCH = "Open azaguard again from the patient's chart in the EHR."

T = TypeVar("T")


class SessionExpired(Exception):
    """The access token is dead and could not be refreshed."""


@dataclass(frozen=True)
class RuleGroup:
    """A rule that needs action, with its actions (most urgent first)."""

    rule: str
    label: str
    status: str
    icon: str
    words: str
    actions: list[Action]


def rule_groups(verdict: Verdict) -> list[RuleGroup]:
    """Rules needing action, sorted hold → cannot-evaluate → caution (then by their most urgent action)."""
    groups = []
    for line in verdict.rules:
        if line.status not in ACTION_STATUSES:
            continue
        actions = [a for a in verdict.actions if a.rule == line.rule]
        if not actions:  # a rule with no result at all: cannot be relied on
            actions = [_no_result_action(line)]
        groups.append(RuleGroup(line.rule, line.label, line.status.value, line.icon, line.words, actions))
    first: dict[str, int] = {a.rule: i for i, a in reversed(list(enumerate(verdict.actions)))}
    return sorted(groups, key=lambda g: (STATUS_RANK[Status(g.status)], first.get(g.rule, 99)))


def _no_result_action(line: RuleLine) -> Action:
    return Action(
        rule=line.rule, code="no-result", status=Status.CANNOT_EVALUATE, severity=Severity.MODERATE,
        verb="Cannot check", object=line.label.lower(), reason="the check returned no result", advice=None,
        summary=line.summary, detail="This check returned no result, so it cannot be relied on; check by hand.",
    )


def zone_of(identity: Identity | None) -> tzinfo | None:
    """The EHR user's time zone (OpenID Connect `zoneinfo`), when the EHR says it and it is known."""
    if identity is None or not identity.zoneinfo:
        return None
    try:
        return ZoneInfo(identity.zoneinfo)
    except (ZoneInfoNotFoundError, ValueError):
        return None


# --- the app ------------------------------------------------------------------------------------


class _Web:
    def __init__(
        self,
        config: AppConfig,
        mappings: Mappings,
        now: Callable[[], datetime],
        transport: httpx.BaseTransport | None,
        terminology: TerminologyServer | None = None,
    ) -> None:
        self.config = config
        self.mappings = mappings
        # The site's terminology server: the page evaluates as `check` and the CDS hooks do.
        self.terminology = terminology
        self.now = now
        self.transport = transport
        self.http = httpx.Client(transport=transport, follow_redirects=False)
        # In this process, or shared by every replica (session_store: redis:// or database).
        self.sessions: SessionStore = runtime.session_store(config)
        self.audit = runtime.audit_trail(config)
        self.discovery = DiscoveryCache()  # a flood of launches sends one discovery per iss and TTL
        self.launch_limit = runtime.rate_limiter(config)  # /launch and /start, per client address
        # Write outcomes waiting for their redirect's GET, by (session id, launch id).
        self.written: dict[tuple[str, str], list[WriteOutcome]] = {}
        self.user_names: dict[str, str | None] = {}
        self.mappings_dir: Path | None = None  # where the patient's words are (None: the default mappings/)
        self.patient_view: Any = None  # web/patient.py's PatientView, once its routes are added
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    # -- helpers --
    def root(self, request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(root=self.root(request), **context)
        return HTMLResponse(html, status_code=status)

    def message(
        self,
        request: Request,
        status: int,
        heading: str,
        message: str,
        *,
        kind: str = "error",
        detail: str | None = None,
        advice: str | None = None,
    ) -> HTMLResponse:
        return self.render(
            request,
            "message.html",
            status,
            heading=heading,
            message=message,
            kind=kind,
            detail=detail,
            advice=advice,
        )

    def expired(self, request: Request, ctx: LaunchContext | None = None) -> HTMLResponse:
        ended = ""
        if ctx is not None and ctx.tokens.expires_at is not None:
            ended = f" {format_date(ctx.tokens.expires_at, self.now(), zone_of(ctx.identity))}"
        renew = "" if ctx is None or ctx.tokens.refresh_token else " The EHR gave azaguard no way to renew it."
        return self.message(
            request,
            401,
            "Session expired",
            f"Your session with the EHR ended{ended}.{renew}",
            kind="expired",
            advice=RELAUNCH,
        )

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE), self.now())

    def set_cookie(self, request: Request, response: Response, session: Session) -> None:
        # Inside an EHR iframe the app is a third party: the browser sends the cookie only when it is
        # SameSite=None, which browsers accept only with Secure (https). Browsers that block third-party
        # cookies (Chromium's default in new profiles) still keep a Partitioned one (CHIPS), in a jar of
        # its own for the EHR's site: the framed app keeps its session there. Plain-http loopback: Lax.
        secure = self.config.secure_cookies or request.url.scheme == "https"
        response.set_cookie(
            COOKIE,
            session.id,
            httponly=True,
            samesite="none" if secure else "lax",
            secure=secure,
            path=self.root(request) or "/",
        )
        if secure:  # the stdlib cookie writer knows the Partitioned attribute only from Python 3.14
            name, value = response.raw_headers[-1]
            response.raw_headers[-1] = (name, value + b"; Partitioned")

    # -- launch --
    def rate_limited(self, request: Request) -> Response | None:
        wait = self.launch_limit.allow(request.client.host if request.client else "")
        if not wait:
            return None
        metrics.refused(log, "launch refused", "rate-limited", retry_after=int(wait) + 1)
        response = self.message(
            request, 429, "Too many launches", "This address has started too many launches in a short time.",
            advice="Wait a minute, then open azaguard again from the EHR.",
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response

    def launch(self, request: Request) -> Response:
        limited = self.rate_limited(request)
        if limited is not None:
            return limited
        iss = request.query_params.get("iss", "")
        refused = self.refuse_iss(request, iss)
        if refused is not None:
            return refused
        launch = request.query_params.get("launch")
        if not launch:
            return self.message(
                request,
                400,
                "Launch refused",
                "The EHR launch carried no 'launch' parameter.",
                advice=RELAUNCH,
            )
        return self.begin(request, iss, launch)

    def start(self, request: Request) -> Response:
        limited = self.rate_limited(request)
        if limited is not None:
            return limited
        iss = request.query_params.get("iss") or self.config.allowed_iss[0]
        refused = self.refuse_iss(request, iss)
        return refused if refused is not None else self.begin(request, iss, None)

    def refuse_iss(self, request: Request, iss: str) -> Response | None:
        """Refuse a missing or unknown iss before any request leaves the app."""
        if not iss:
            return self.message(request, 400, "Launch refused", "The launch carried no 'iss' (FHIR server).")
        if not self.config.iss_allowed(iss):
            metrics.refused(log, "launch refused", "iss-not-allowed", iss=iss[:200])
            return self.message(
                request,
                400,
                "Launch refused",
                f"The FHIR server {iss} is not on this app's list of allowed servers, "
                "so azaguard did not contact it.",
                # The allowed servers are not listed: that list is configuration (some launcher URLs
                # embed a client secret), and whoever asks is not necessarily hospital IT.
                advice="Hospital IT: to trust this server, add it to allowed_iss in smart_launch.json.",
            )
        return None

    def begin(self, request: Request, iss: str, launch: str | None, *, scopes: Scopes | None = None) -> Response:
        iss = iss.rstrip("/")
        try:
            smart = self.discovery.discover(iss, self.http)
        except DiscoveryError as exc:
            metrics.refused(log, "launch failed", "discovery-failed", iss=iss, detail=str(exc)[:300])
            return self.message(request, 502, "Cannot reach the EHR's authorization server", str(exc))
        scope = select_scope(self.config, smart.capabilities, standalone=launch is None, scopes=scopes)
        pkce = new_pkce()  # S256 always, advertised or not
        state = new_state()
        address = request.client.host if request.client else ""
        session = self.sessions.get_or_create(request.cookies.get(COOKIE), self.now(), address)
        pending = PendingAuthorization(
            state=state,
            iss=iss,
            smart=smart,
            code_verifier=pkce.verifier,
            redirect_uri=self.config.redirect_uri,
            scope=scope,
            launch=launch,
            created=self.now(),
        )
        self.sessions.add_pending(session, pending)
        url = authorize_url(
            smart,
            client_id=self.config.client_id,
            redirect_uri=self.config.redirect_uri,
            scope=scope,
            state=state,
            code_challenge=pkce.challenge,
            launch=launch,
        )
        metrics.LAUNCHES.labels("started").inc()
        response = RedirectResponse(url, status_code=302)
        self.set_cookie(request, response, session)
        return response

    def callback(self, request: Request) -> Response:
        q = request.query_params
        session = self.session(request)
        state = q.get("state", "")
        pending = (
            self.sessions.take_pending(session, state, self.now()) if session is not None and state else None
        )
        if pending is None and state:
            # The launch is bound to its state server-side: a callback whose cookie the browser withheld (a
            # third-party frame, or the launch and the callback in different cookie partitions) still finds it,
            # from the client address that started it (a callback link sent to someone else's browser does
            # not). The state is 256 random bits, single use, 10 minutes; our PKCE verifier never leaves.
            owner = self.sessions.pending_owner(state, self.now())
            address = request.client.host if request.client else ""
            if owner is not None and owner.address == address:
                pending = self.sessions.take_pending(owner, state, self.now())
                if pending is not None:
                    session = session or owner
        if session is None or pending is None:
            metrics.refused(log, "launch refused", "state-unknown" if session is not None else "no-session")
            return self.message(
                request,
                400,
                "Launch refused",
                "The authorization response does not match a launch started in this browser "
                "(state mismatch).",
                advice=RELAUNCH,
            )
        if q.get("error"):
            metrics.refused(log, "launch refused", "authorization-denied", error=q.get("error", "")[:100])
            return self.message(
                request,
                400,
                "The EHR did not authorize azaguard",
                f"The authorization server answered: {q.get('error')}.",
                detail=q.get("error_description"),
                advice=RELAUNCH,
            )
        code = q.get("code")
        if not code:
            return self.message(request, 400, "Launch refused", "The authorization response carried no code.")
        try:
            tokens = exchange_code(
                self.http,
                self.config,
                pending.smart,
                code=code,
                code_verifier=pending.code_verifier,
                redirect_uri=pending.redirect_uri,
                requested_scope=pending.scope,
                now=self.now(),
            )
        except TokenError as exc:
            metrics.refused(log, "launch refused", "token-refused", error=exc.error[:100], status=exc.status)
            status = 400 if exc.status is not None and 400 <= exc.status < 500 else 502
            return self.message(
                request,
                status,
                "The EHR refused to issue a token",
                f"Token endpoint: {exc.error}.",
                detail=exc.description,
                advice=RELAUNCH,
            )
        identity: Identity | None = None
        granted = set(tokens.scope.split())
        if tokens.id_token and {"openid", "fhirUser"} <= granted:
            identity = read_identity(self.http, self.config, pending.smart, tokens.id_token, self.now())
        ctx = LaunchContext(
            id=secrets.token_urlsafe(16),
            iss=pending.iss,
            smart=pending.smart,
            tokens=tokens,
            requested_scope=pending.scope,
            identity=identity,
            created=self.now(),
        )
        self.sessions.add_launch(session, ctx)
        self.sessions.rotate(session, self.now())  # no fixation: the pre-login id is now worthless
        metrics.LAUNCHES.labels("completed").inc()
        log.info("launch completed", extra={"iss": ctx.iss, "patient": logs.patient(ctx.patient_id),
                                            "user": identity.fhir_user if identity else None})
        response = RedirectResponse(self.home_of(request, ctx), status_code=303)
        self.set_cookie(request, response, session)
        return response

    def home_of(self, request: Request, ctx: LaunchContext) -> str:
        """The clinician's page, or the patient view when the signed-in user is a patient."""
        where = "/patient/" if is_patient_user(ctx.identity) else "/"
        return f"{self.root(request)}{where}?{urlencode({'ctx': ctx.id})}"

    # -- the page --
    def page(self, request: Request) -> Response:
        session = self.session(request)
        ctx = self.sessions.launch(session, request.query_params.get("ctx")) if session else None
        if ctx is not None and is_patient_user(ctx.identity):
            return RedirectResponse(self.home_of(request, ctx), status_code=303)  # never the clinician's page
        if session is None or ctx is None:
            return self.message(
                request,
                401,
                "No patient open",
                "azaguard has no active launch in this browser.",
                kind="expired",
                advice=RELAUNCH,
            )
        # The outcome of a write, shown once after its redirect (POST-redirect-GET): a reload shows the chart.
        written = self.written.pop((session.id, ctx.id), None)
        return self.check_and_render(request, session, ctx, written=written)

    async def alerts(self, request: Request) -> Response:
        form = await request.form()
        return await run_in_threadpool(self.alerts_sync, request, form)

    def alerts_sync(self, request: Request, form: FormData) -> Response:
        session = self.session(request)
        sent = form.get("csrf_token")
        if session is None or not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf_token):
            return self.message(
                request,
                403,
                "Request refused",
                "The form was not sent from this session's page (CSRF check).",
                advice="Reload the page and try again.",
            )
        launch_id = form.get("ctx")
        ctx = self.sessions.launch(session, launch_id if isinstance(launch_id, str) else None)
        if ctx is None:
            return self.expired(request)
        if not can_write_alerts(ctx.tokens.scope):
            return self.message(
                request,
                403,
                "Alerts cannot be written",
                "This launch was not granted permission to write DetectedIssue and Flag resources.",
                detail=f"Granted: {ctx.tokens.scope}",
            )
        outcome = self.check(request, session, ctx, write=True)
        if isinstance(outcome, Response):
            return outcome
        self.written[(session.id, ctx.id)] = outcome.writes
        return RedirectResponse(f"{self.root(request)}/?{urlencode({'ctx': ctx.id})}#written", status_code=303)

    def check(
        self, request: Request, session: Session, ctx: LaunchContext, *, write: bool
    ) -> service.CheckResult | Response:
        """Gather, evaluate and (on write) write; an error page when the record cannot be read.
        Audited either way: who (fhirUser), which patient, view or write, outcome, from where."""
        return self.audited(request, ctx, "app.write-alerts" if write else "app.view",
                            lambda: self._check(request, session, ctx, write=write))

    def audited(
        self, request: Request, ctx: LaunchContext, action: str, access: Callable[[], T],
        outcome_of: Callable[[T], str] | None = None,
    ) -> T:
        """`access` to the patient's data, recorded in the audit trail with its outcome (an error page: its
        status; an exception: error); the alerts it writes are attributed to the same user."""
        identity = ctx.identity
        who = (identity.fhir_user or identity.subject) if identity else None
        audit.actor.set(audit.Actor(who=who or f"launch of {ctx.iss}", source=request.client.host if request.client
                                    else None, fhir_base=ctx.iss, token=lambda: ctx.tokens.access_token))
        try:
            result = access()
        except Exception:
            self.audit.record(action, patient=ctx.patient_id, outcome="error")
            raise
        if outcome_of is not None:
            outcome = outcome_of(result)
        else:
            outcome = f"refused {result.status_code}" if isinstance(result, Response) else "evaluated"
        self.audit.record(action, patient=ctx.patient_id, outcome=outcome)
        return result

    def _check(
        self, request: Request, session: Session, ctx: LaunchContext, *, write: bool
    ) -> service.CheckResult | Response:
        now = self.now()
        tz = zone_of(ctx.identity)
        try:
            return self.with_token(
                ctx,
                lambda client: service.check_on_server(
                    client,
                    ctx.patient_id,
                    mappings=self.mappings,
                    now=now,
                    write=write,
                    dry_run=not write,
                    tz=tz,
                    terminology=self.terminology,
                    # Not granted: not asked for (a server may refuse the whole batch for them).
                    read_alerts=can_read_alerts(ctx.tokens.scope),
                ),
            )
        except SessionExpired:
            # The launch is kept: a reload says the same (when and how to relaunch), never "No patient open".
            return self.expired(request, ctx)
        except AuthDenied as exc:
            return self.message(request, 403, "The EHR refused access", f"The FHIR server refused: {exc}")
        except (FhirError, InputError) as exc:
            return self.message(
                request,
                502,
                "Cannot read the patient's record",
                "The FHIR server could not provide the record, so nothing was evaluated.",
                detail=str(exc),
            )

    def check_and_render(
        self, request: Request, session: Session, ctx: LaunchContext, *, written: list[WriteOutcome] | None
    ) -> Response:
        result = self.check(request, session, ctx, write=False)
        if isinstance(result, Response):
            return result
        verdict = result.verdict
        assert verdict is not None  # noqa: S101 - service.check_on_server always builds it
        tz = zone_of(ctx.identity)
        to_add = [w for w in result.writes if w.outcome == "would-write"]
        failed = [w for w in written or [] if w.outcome == "failed"]
        return self.render(
            request,
            "page.html",
            banner=_banner(result) if ctx.tokens.need_patient_banner else None,
            identity=ctx.identity,
            user_name=self.user_name(ctx),
            verdict=verdict,
            groups=rule_groups(verdict),
            passed=verdict.passed,
            warnings=result.warnings,
            notes=result.notes,
            existing_alerts=[_existing_row(a, result.evaluated_at, tz, self.mappings) for a in result.existing_alerts],
            existing_problem=result.existing_alerts_problem,
            to_add=_planned_rows(to_add),
            written=_written_rows(written) if written is not None else None,
            failed_writes=failed,
            retry_helps=any(w.retryable for w in failed),
            charts=trend_charts(result.record, self.mappings, tz),
            can_write=can_write_alerts(ctx.tokens.scope),
            session_note=_session_note(ctx.tokens, self.now(), tz),
            csrf_token=session.csrf_token,
            ctx=ctx.id,
            fhir_base=ctx.iss,
            mappings_version=result.mappings_version,
        )

    def user_name(self, ctx: LaunchContext) -> str | None:
        """Who is signed in, by name: the id_token's name, else the fhirUser resource's name (read once)."""
        identity = ctx.identity
        if identity is None:
            return None
        if identity.name:
            return identity.name
        if ctx.id in self.user_names:
            return self.user_names[ctx.id]
        name = None
        target = _user_resource(identity.fhir_user, ctx.iss)
        if target is not None:
            try:
                resource = self.with_token(ctx, lambda client: client.read(*target))
                name = _human_name(resource)
            except (FhirError, SessionExpired):
                name = None  # not allowed to read it: the page says "signed in" without a name
        self.user_names[ctx.id] = name
        return name

    # -- tokens --
    def _client(self, ctx: LaunchContext) -> FhirClient:
        # A client per request over the process's kept-alive connections: a page pays the TCP/TLS
        # handshake with the EHR once per process, not on every request.
        return FhirClient(ctx.iss, token=lambda: ctx.tokens.access_token, transport=self.transport, pools=PROCESS_POOLS)

    def with_token(self, ctx: LaunchContext, call: Callable[[FhirClient], T]) -> T:
        """Run `call` with a fresh access token: refresh before expiry, and once more on a 401."""
        self.refresh(ctx, force=False)
        with self._client(ctx) as client:
            try:
                return call(client)
            except AuthExpired:
                self.refresh(ctx, force=True)
        with self._client(ctx) as client:
            try:
                return call(client)
            except AuthExpired as exc:
                raise SessionExpired from exc

    def refresh(self, ctx: LaunchContext, *, force: bool) -> None:
        """A new access token before this one expires (or, forced, after the EHR refused it). Without a refresh
        token, or when an early refresh fails, the current token serves until it actually expires."""
        seen = ctx.tokens
        with ctx.lock:
            if ctx.tokens is not seen:
                return  # another request refreshed meanwhile
            now = self.now()
            if not force and not ctx.tokens.needs_refresh(now):
                return
            try:
                ctx.tokens = refresh(self.http, self.config, ctx.smart, ctx.tokens, now)
            except TokenError as exc:
                metrics.refused(log, "token refresh refused", "refresh-refused", error=exc.error[:100])
                if force or ctx.tokens.expired(now):
                    raise SessionExpired from exc
                return
            self.sessions.update_launch(ctx)  # a shared store: every replica sees the new tokens


def _session_note(tokens: TokenSet, now: datetime, tz: tzinfo | None) -> str | None:
    """When the session cannot renew itself: when it ends and what to do then (None: it renews itself)."""
    if tokens.refresh_token or tokens.expires_at is None:
        return None
    minutes = max(0, int((tokens.expires_at - now).total_seconds() // 60))
    left = "less than a minute" if minutes < 1 else f"{minutes} minute{'s' if minutes != 1 else ''}"
    return (
        f"The EHR did not allow this session to be renewed: it ends {format_date(tokens.expires_at, now, tz)} "
        f"(in {left}). To keep working after that, open azaguard again from the patient's chart in the EHR."
    )


def _banner(result: service.CheckResult) -> dict[str, str]:
    p = result.patient
    return {
        "name": (p.name if p and p.name else "(name not recorded)"),
        "birth_date": format_day(p.birth_date) if p and p.birth_date else "(not recorded)",
        "gender": (p.gender if p and p.gender else "gender not recorded"),
        "ref": result.patient_ref,
    }


_WRITE_WORDS = {
    "created": "Created",
    "exists": "Already there",
    "updated": "Updated",
    "closed": "Closed (hold cleared)",
    "failed": "Failed",
    "would-write": "Would add",
}
_KIND = {"DetectedIssue": "Alert (DetectedIssue)", "Flag": "Flag", "Device": "azaguard device record"}


def _rule_label(rule: str | None, mappings: Mappings | None = None) -> str:
    return label(rule)


def _existing_row(a: ExistingAlert, now: datetime, tz: tzinfo | None, m: Mappings) -> dict[str, str]:
    return {
        "kind": _KIND.get(a.resource_type, a.resource_type),
        "rule": _rule_label(a.rule, m),
        "status": a.status,
        "summary": a.summary,
        "date": format_date(a.date, now, tz) if a.date else "",
        "reference": a.reference,
    }


def _planned_rows(writes: list[WriteOutcome]) -> list[dict[str, str]]:
    return [{"kind": _KIND.get(w.resource_type, w.resource_type), "rule": _rule_label(w.rule)} for w in writes]


def _written_rows(writes: list[WriteOutcome]) -> list[dict[str, str]]:
    return [
        {
            "kind": _KIND.get(w.resource_type, w.resource_type),
            "rule": _rule_label(w.rule),
            "outcome": w.outcome,
            "words": _WRITE_WORDS.get(w.outcome, w.outcome),
            "reference": w.reference or "",
            "error": w.error or "",
            "note": w.note or "",
        }
        for w in writes
    ]


_USER_TYPES = frozenset({"Practitioner", "Patient", "RelatedPerson", "Person"})  # PractitionerRole has no name


def _user_resource(fhir_user: str | None, iss: str) -> tuple[str, str] | None:
    """(type, id) of the fhirUser resource on this launch's FHIR server, or None (another server: the token
    never leaves for it). SMART 2: the claim may be absolute or relative to the FHIR base the app asked for."""
    if not fhir_user:
        return None
    if fhir_user.startswith(iss + "/"):
        relative = fhir_user[len(iss) + 1 :]
    elif "://" in fhir_user or fhir_user.startswith("/"):
        return None
    else:
        relative = fhir_user
    found = parse_reference(relative)
    if found is None or found.kind != "relative" or found.type not in _USER_TYPES or found.id is None:
        return None
    return found.type, found.id


def _human_name(resource: dict[str, Any]) -> str | None:
    for name in resource.get("name") or []:
        if not isinstance(name, dict):
            continue
        if name.get("text"):
            return str(name["text"])
        parts = [*(name.get("prefix") or []), *(name.get("given") or []), name.get("family") or ""]
        text = " ".join(str(p) for p in parts if p)
        if text:
            return text
    return None


def create_app(
    config: AppConfig,
    *,
    mappings: Mappings | None = None,
    now: Callable[[], datetime] | None = None,
    transport: httpx.BaseTransport | None = None,
    terminology: TerminologyServer | None = None,
) -> Starlette:
    """The SMART app as an ASGI app, to be mounted at the path of its launch_uri (e.g. /app)."""
    from azaguard.web.patient import patient_routes

    web = _Web(config, mappings or load_mappings(), now or (lambda: datetime.now(UTC)), transport, terminology)
    routes = [
        Route("/", web.page, name="page"),
        Route("/launch", web.launch, name="launch"),
        Route("/start", web.start, name="start"),
        Route("/callback", web.callback, name="callback"),
        Route("/alerts", web.alerts, methods=["POST"], name="alerts"),
        *patient_routes(web),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(SecurityHeaders, config=config)
    app.state.web = web  # tests reach the session store through app.state.web.sessions
    return app


def mount_path(config: AppConfig) -> str:
    """Where the app lives: the path of launch_uri without its last segment ('/app')."""
    return urlsplit(config.launch_uri).path.rsplit("/", 1)[0]


def served_app(
    config: AppConfig, *, insecure_cds: bool = False, terminology: TerminologyServer | None = None,
    **cds_options: Any,
) -> ASGIApp:
    """The app as `serve` runs it: mounted at its path, `/` redirecting there, pinned to the public origin,
    with the CDS Hooks service beside it at /cds-services; both evaluate with the site's terminology server."""
    from azaguard.cds.app import cds_routes, create_cds_service

    prefix = mount_path(config)
    cds = cds_routes(create_cds_service(config, insecure=insecure_cds, terminology=terminology, **cds_options))
    routes = [*cds, Mount(prefix or "/", app=create_app(config, terminology=terminology))]
    if prefix:
        home = prefix + "/"
        routes.append(Route("/", lambda r: RedirectResponse(home)))
    # The router's own redirects (/app → /app/) are built from the request: pin it to the public origin.
    from azaguard.ops.http import Operations

    # Bodies bounded outermost (web.security.BodyLimit), before anything reads them.
    return BodyLimit(Operations(
        PinnedOrigin(Starlette(routes=routes), config.public_base), routes=routes,
        checks=runtime.readiness_checks(config, load_mappings()), trusted_proxies=config.trusted_proxies,
        metrics_networks=config.metrics_networks, metrics_token=config.metrics_token(),
    ))


def serve(
    config_path: Path | None, host: str, port: int, *, insecure_cds: bool = False, log_format: str | None = None,
    terminology: TerminologyServer | None = None,
) -> None:
    """Run the app (for a real EHR) with uvicorn. SIGTERM: stop accepting, finish the requests in flight
    (up to 30 s), exit 0."""
    import uvicorn

    config = load_app_config(config_path)
    runtime.start(config, log_format=log_format)
    # The CDS hooks evaluate as `check` does, with the site's terminology server when one is given.
    app = served_app(config, insecure_cds=insecure_cds, terminology=terminology)
    store = runtime.shared_store(config)
    log.info("serving", extra={"url": f"http://{host}:{port}", "public_base": config.public_base,
                               "session_store": store.kind if store is not None else "memory",
                               "metrics": f"http://{host}:{port}/metrics"})
    # uvicorn's own access log is off (its line has the query string, which carries the authorization
    # code): ops.http writes one line per request with the route template instead.
    logs.exit_0_on_sigterm()
    uvicorn.run(app, host=host, port=port, proxy_headers=False, timeout_graceful_shutdown=30,
                **logs.uvicorn_options())
