"""The sandbox EHR as a CDS Hooks client: it signs every call (ES384, its own key, JWKS published at
/ehr/cds/jwks), fills the services' prefetch from the FHIR server, calls the hooks and sends feedback.

One clinician, in memory: each open chart keeps its draft orders and the cards on screen.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

from azaguard.errors import AzaguardError
from azaguard.sandbox.ehr.upstream import Upstream

Resource = dict[str, Any]
JWT_LIFETIME = 300


@dataclass
class Chart:
    """What the clinician sees on one patient's chart."""

    patient_id: str
    prefetch: dict[str, Any] | None = None
    drafts: list[Resource] = field(default_factory=list)
    view_cards: list[dict[str, Any]] = field(default_factory=list)
    order_cards: list[dict[str, Any]] = field(default_factory=list)
    overridden_drafts: set[str] = field(default_factory=set)
    message: str | None = None
    problem: str | None = None
    opened: bool = False

    def card(self, card_uuid: str) -> tuple[dict[str, Any], str] | None:
        """The card on screen with this uuid, and the hook it came from."""
        for hook, cards in (("patient-view", self.view_cards), ("order", self.order_cards)):
            for c in cards:
                if c.get("uuid") == card_uuid:
                    return c, hook
        return None

    def drop_card(self, card_uuid: str) -> None:
        self.view_cards = [c for c in self.view_cards if c.get("uuid") != card_uuid]
        self.order_cards = [c for c in self.order_cards if c.get("uuid") != card_uuid]


class CdsError(AzaguardError):
    """The CDS service could not be called or answered an error (shown on the chart, never a crash)."""


class SandboxCdsClient:
    def __init__(self, *, iss: str, cds_base: str, upstream: Upstream,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.iss = iss
        self.cds_base = cds_base.rstrip("/")
        self.upstream = upstream
        self.transport = transport
        self.key = ECKey.generate_key("P-384", parameters={"kid": "sandbox-ehr-cds", "use": "sig", "alg": "ES384"})
        self.charts: dict[str, Chart] = {}
        self._services: dict[str, dict[str, Any]] | None = None

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def chart(self, patient_id: str) -> Chart:
        return self.charts.setdefault(patient_id, Chart(patient_id))

    def _token(self, url: str) -> str:
        now = int(time.time())
        claims = {"iss": self.iss, "aud": url, "iat": now, "exp": now + JWT_LIFETIME, "jti": str(uuid.uuid4())}
        return jwt.encode({"alg": "ES384", "typ": "JWT", "kid": self.key.kid}, claims, self.key, algorithms=["ES384"])

    async def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.cds_base}{path}"
        headers = {"Authorization": f"Bearer {self._token(url)}", "Accept": "application/json"}
        try:
            async with httpx.AsyncClient(transport=self.transport, timeout=10.0) as client:
                response = await client.request(method, url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise CdsError(f"the CDS service at {self.cds_base} could not be reached ({type(exc).__name__})") from exc
        if response.status_code != 200:
            try:
                message = response.json().get("message", response.text[:200])
            except ValueError:
                message = response.text[:200]
            raise CdsError(f"the CDS service answered {response.status_code}: {message}")
        return response.json()

    async def services(self) -> dict[str, dict[str, Any]]:
        if self._services is None:
            found = await self._send("GET", "/cds-services")
            self._services = {s["hook"]: s for s in found.get("services", []) if s.get("id", "").startswith("azaguard")}
        return self._services

    async def _prefetch(self, chart: Chart, templates: dict[str, str]) -> dict[str, Any]:
        if chart.prefetch is None:
            keys = list(templates)
            queries = [templates[k].replace("{{context.patientId}}", chart.patient_id) for k in keys]
            found = await asyncio.gather(*(self.upstream.get_json(q) for q in queries), return_exceptions=True)
            out: dict[str, Any] = {}
            for key, value in zip(keys, found, strict=True):
                if isinstance(value, BaseException):
                    continue  # not fetched: the key is left out, as the spec says
                empty = isinstance(value, dict) and value.get("resourceType") == "Bundle" and not value.get("entry")
                out[key] = None if empty else value
            chart.prefetch = out
        return chart.prefetch

    async def call(self, hook: str, chart: Chart, *, selections: list[str] | None = None) -> list[dict[str, Any]]:
        service = (await self.services()).get(hook)
        if service is None:
            raise CdsError(f"no azaguard service for the {hook} hook")
        context: dict[str, Any] = {"userId": "Practitioner/sandbox-clinician", "patientId": chart.patient_id}
        if hook != "patient-view":
            context["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                                      "entry": [{"resource": d} for d in chart.drafts]}
        if selections is not None:
            context["selections"] = selections
        body = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context,
                "prefetch": await self._prefetch(chart, service.get("prefetch") or {})}
        found = await self._send("POST", f"/cds-services/{service['id']}", body)
        cards: list[dict[str, Any]] = [dict(c, _service=service["id"]) for c in found.get("cards", [])]
        return cards

    async def feedback(self, card: dict[str, Any], outcome: str, *, suggestion: str | None = None,
                       reason: dict[str, Any] | None = None, comment: str | None = None) -> None:
        entry: dict[str, Any] = {"card": card["uuid"], "outcome": outcome,
                                 "outcomeTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        if suggestion:
            entry["acceptedSuggestions"] = [{"id": suggestion}]
        if reason or comment:
            entry["overrideReason"] = {**({"reason": reason} if reason else {}),
                                       **({"userComment": comment} if comment else {})}
        await self._send("POST", f"/cds-services/{card['_service']}/feedback", {"feedback": [entry]})
