"""What every sandbox EHR endpoint shares: URLs, the upstream client, the auth server, launches, templates."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from azaguard.sandbox.ehr.authserver import Clock, RegisteredClient, SandboxAuthServer
from azaguard.sandbox.ehr.backend import BackendServices
from azaguard.sandbox.ehr.upstream import Upstream

if TYPE_CHECKING:
    from azaguard.sandbox.ehr.cdsclient import SandboxCdsClient

TEMPLATES = Path(__file__).parent / "templates"
HTML_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # launch ids in the page are single use: never show a stale copy
}


@dataclass(frozen=True)
class LaunchContext:
    launch_id: str
    patient_id: str
    client_id: str
    expires_at: float


@dataclass
class LaunchStore:
    """Opaque EHR-launch ids: each maps to one patient and one app, expires, and is consumed at authorize."""

    clock: Clock
    lifetime: float
    launches: dict[str, LaunchContext] = field(default_factory=dict)

    def create(self, patient_id: str, client_id: str) -> str:
        now = self.clock()
        for key in [k for k, v in self.launches.items() if v.expires_at <= now]:
            del self.launches[key]
        launch_id = secrets.token_urlsafe(24)
        self.launches[launch_id] = LaunchContext(launch_id, patient_id, client_id, now + self.lifetime)
        return launch_id

    def consume(self, launch_id: str, client_id: str) -> LaunchContext | None:
        found = self.launches.pop(launch_id, None)
        if found is None or found.client_id != client_id or found.expires_at <= self.clock():
            return None
        return found


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class EhrContext:
    public_base: str
    upstream: Upstream
    auth: SandboxAuthServer
    launches: LaunchStore
    client: RegisteredClient  # the app the launcher page launches
    # Standalone launches waiting for the clinician to pick a patient: id -> (authorize params, expiry).
    pending: dict[str, tuple[list[tuple[str, str]], float]] = field(default_factory=dict)
    # The EHR as a CDS Hooks client (charts, order form), when a CDS service is configured.
    cds: SandboxCdsClient | None = None
    backend: BackendServices | None = None  # SMART Backend Services clients (client_credentials grant)
    # Patient portal sign-ins: cookie value -> (patient id, name, expiry). See portal.py.
    portal: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    templates: jinja2.Environment = field(
        default_factory=lambda: jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
        )
    )

    @property
    def ehr_base(self) -> str:
        return f"{self.public_base}/ehr"

    @property
    def fhir_base(self) -> str:
        return f"{self.public_base}/ehr/fhir"

    @property
    def authorize_url(self) -> str:
        return f"{self.ehr_base}/auth/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.ehr_base}/auth/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.ehr_base}/auth/jwks"

    def launch_url(self, patient_id: str) -> str:
        """A fresh EHR launch of the registered app for this patient (what the launcher links to)."""
        launch = self.launches.create(patient_id, self.client.client_id)
        sep = "&" if "?" in self.client.launch_uri else "?"
        return f"{self.client.launch_uri}{sep}{urlencode({'iss': self.fhir_base, 'launch': launch})}"

    @property
    def patient_start_url(self) -> str:
        """The app's standalone launch for patients (beside its launch_uri), with this EHR as iss."""
        start = self.client.launch_uri.rsplit("/", 1)[0] + "/patient/start"
        return f"{start}?{urlencode({'iss': self.fhir_base})}"

    def page(self, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(ehr_base=self.ehr_base, **values)
        # The patient picker's form ends in a redirect to the app: allow the app's origins as form targets.
        targets = " ".join(sorted({_origin(u) for u in self.client.redirect_uris}))
        csp = f"default-src 'none'; style-src 'self'; form-action 'self' {targets}; frame-ancestors 'self'"
        return HTMLResponse(html, status_code=status_code, headers={**HTML_HEADERS, "Content-Security-Policy": csp})


def ehr(request: Request) -> EhrContext:
    context: EhrContext = request.app.state.ehr
    return context
