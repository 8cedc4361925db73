"""The sandbox EHR's one pooled async client to the upstream FHIR server (the proxies and the CDS client use it)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx


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
