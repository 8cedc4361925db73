"""What the app's pages share, built once by create_app: configuration, knowledge, the session store, the launch
flow, the token keeper, the audit trail and the templates. It holds no per-user state of its own: everything a
user's next request needs lives in their session (smart/session.py), in this process or the shared store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from azaguard.config import AppConfig
from azaguard.errors import AzaguardError, http_status
from azaguard.mappings import Mappings
from azaguard.ops import audit
from azaguard.ops.audit import AuditTrail
from azaguard.smart.session import LaunchContext, Session, SessionStore
from azaguard.web.launchflow import LaunchFlow
from azaguard.web.pages import Pages, address, cookie
from azaguard.web.tokens import Tokens

if TYPE_CHECKING:
    from azaguard.terminology.server import TerminologyServer

T = TypeVar("T")


@dataclass
class WebContext:
    config: AppConfig
    mappings: Mappings
    # The site's terminology server: the pages evaluate as `check` and the CDS hooks do.
    terminology: TerminologyServer | None
    now: Callable[[], datetime]
    sessions: SessionStore  # in this process, or shared by every replica (session_store: redis:// or database)
    flow: LaunchFlow
    tokens: Tokens
    audit: AuditTrail
    pages: Pages
    mappings_dir: Path | None = None  # where the patient's words are (None: the default mappings/)

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(cookie(request), self.now())

    def audited(
        self, request: Request, ctx: LaunchContext, action: str, access: Callable[[], T],
        outcome_of: Callable[[T], str] | None = None,
    ) -> T:
        """`access` to the patient's data, recorded in the audit trail with its outcome (an error page, or a
        failure the app's error page answers: its status; a bug: error); the alerts it writes are attributed to
        the same user."""
        identity = ctx.identity
        who = (identity.fhir_user or identity.subject) if identity else None
        audit.actor.set(audit.Actor(who=who or f"launch of {ctx.iss}", source=address(request) or None,
                                    fhir_base=ctx.iss, token=lambda: ctx.tokens.access_token))
        try:
            result = access()
        except Exception as exc:  # answered by the app's error page, with the status recorded here
            outcome = f"refused {http_status(exc, gateway=True)}" if isinstance(exc, AzaguardError) else "error"
            self.audit.record(action, patient=ctx.patient_id, outcome=outcome)
            raise
        if outcome_of is not None:
            outcome = outcome_of(result)
        else:
            outcome = f"refused {result.status_code}" if isinstance(result, Response) else "evaluated"
        self.audit.record(action, patient=ctx.patient_id, outcome=outcome)
        return result
