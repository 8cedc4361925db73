"""What the app answers a browser with: rendered templates, error pages, and the session cookie.

The only module of web/ besides app.py that knows Starlette's Request and Response. A failure that leaves a route
(an AzaguardError, or a bug) becomes one page here (`Pages.failure`, the app's one exception handler): its status
from errors.http_status, its words from the audience's table (the clinician's, the patient's) by that status.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from azaguard.display import format_date
from azaguard.errors import AzaguardError, http_status, log_failure
from azaguard.smart.session import LaunchContext, Session
from azaguard.web.launchflow import RELAUNCH, Redirect, Refusal
from azaguard.web.views import zone_of

HERE = Path(__file__).resolve().parent
COOKIE = "azaguard_session"
log = logging.getLogger("azaguard.web")


@dataclass(frozen=True)
class FailureWords:
    """What an error page says for a status: heading, sentence ("{error}": the error's own sentence, written for
    hospital IT), advice; `detail`: the error's sentence beneath. Never a traceback or a path of this machine."""

    heading: str
    message: str
    kind: str = "error"
    advice: str | None = None
    detail: bool = False


# An audience's words by status; 500's serve any status the table does not name.
FailureTable = Mapping[int, FailureWords]


def root(request: Request) -> str:
    """The app's own path prefix ('/app'), from where it is mounted."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def address(request: Request) -> str:
    return request.client.host if request.client else ""


def cookie(request: Request) -> str | None:
    return request.cookies.get(COOKIE)


def set_cookie(request: Request, response: Response, session: Session, *, secure_cookies: bool) -> None:
    # Inside an EHR iframe the app is a third party: the browser sends the cookie only when it is
    # SameSite=None, which browsers accept only with Secure (https). Browsers that block third-party
    # cookies (Chromium's default in new profiles) still keep a Partitioned one (CHIPS), in a jar of
    # its own for the EHR's site: the framed app keeps its session there. Plain-http loopback: Lax.
    secure = secure_cookies or request.url.scheme == "https"
    response.set_cookie(
        COOKIE, session.id, httponly=True, samesite="none" if secure else "lax", secure=secure,
        path=root(request) or "/",
    )
    if secure:  # the stdlib cookie writer knows the Partitioned attribute only from Python 3.14
        name, value = response.raw_headers[-1]
        response.raw_headers[-1] = (name, value + b"; Partitioned")


class Pages:
    """Templates rendered with the app's root; error pages; launch outcomes as responses."""

    def __init__(self, *, secure_cookies: bool) -> None:
        self.secure_cookies = secure_cookies
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined,
        )

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(root=root(request), **context)
        return HTMLResponse(html, status_code=status)

    def message(
        self, request: Request, status: int, heading: str, message: str, *, kind: str = "error",
        detail: str | None = None, advice: str | None = None,
    ) -> HTMLResponse:
        return self.render(request, "message.html", status, heading=heading, message=message, kind=kind,
                           detail=detail, advice=advice)

    def refusal(self, request: Request, refused: Refusal) -> HTMLResponse:
        response = self.message(request, refused.status, refused.heading, refused.message, detail=refused.detail,
                                advice=refused.advice)
        if refused.retry_after is not None:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response

    def answer(self, request: Request, outcome: Redirect | Refusal) -> Response:
        """A launch step's outcome as the browser's answer (a redirect below the app's root sets the cookie)."""
        if isinstance(outcome, Refusal):
            return self.refusal(request, outcome)
        url = outcome.url if "://" in outcome.url else root(request) + outcome.url
        response = RedirectResponse(url, status_code=outcome.status)
        set_cookie(request, response, outcome.session, secure_cookies=self.secure_cookies)
        return response

    def failure(self, request: Request, exc: Exception, words: FailureTable) -> HTMLResponse:
        """The page for a failure that left a route: status from the error tree (the app answers for the EHR's
        data: errors.http_status's gateway view), words from `words`."""
        status = http_status(exc, gateway=True)
        said = words.get(status) or words[500]
        known = isinstance(exc, AzaguardError)
        log_failure(log, "request failed", exc, status)  # a bug's traceback: for the log, never for the page
        return self.message(request, status, said.heading, said.message.format(error=exc if known else ""),
                            kind=said.kind, advice=said.advice, detail=str(exc) if said.detail and known else None)

    def expired(self, request: Request, now: datetime, ctx: LaunchContext | None = None) -> HTMLResponse:
        ended = ""
        if ctx is not None and ctx.tokens.expires_at is not None:
            ended = f" {format_date(ctx.tokens.expires_at, now, zone_of(ctx.identity))}"
        renew = "" if ctx is None or ctx.tokens.refresh_token else " The EHR gave azaguard no way to renew it."
        return self.message(request, 401, "Session expired", f"Your session with the EHR ended{ended}.{renew}",
                            kind="expired", advice=RELAUNCH)
