"""What every sandbox EHR endpoint shares: URLs, the upstream client, the auth server, launches, templates."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from azaguard.sandbox.ehr.authserver import Clock, RegisteredClient, SandboxAuthServer
from azaguard.sandbox.ehr.backend import BackendServices

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


def _aliases(base: str) -> tuple[str, ...]:
    """The upstream base and its loopback twin (a server may name itself localhost or 127.0.0.1)."""
    parts = urlsplit(base.rstrip("/"))
    names = {parts.netloc}
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    for a, b in (("127.0.0.1", "localhost"), ("localhost", "127.0.0.1")):
        if host == a:
            names.add(f"{b}{port}")
    return tuple(urlunsplit((parts.scheme, n, parts.path, "", "")) for n in sorted(names))


class Upstream:
    """One pooled async httpx client to the upstream FHIR server, per event loop.

    Uvicorn runs one loop for the life of the site; test clients may start a fresh loop per
    request, and a pooled connection must not outlive the loop that opened it.
    """

    def __init__(self, base: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base = base.rstrip("/")
        self.aliases = _aliases(self.base)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(30.0, connect=5.0),
                follow_redirects=False,
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            )
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None

    async def get_json(self, path_and_query: str) -> Any:
        response = await self.client().get(f"{self.base}/{path_and_query}", headers={"Accept": "application/fhir+json"})
        response.raise_for_status()
        return response.json()


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
