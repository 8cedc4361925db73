"""The bearer token on outbound requests, renewed once when a server refuses it: one `httpx.Auth`.

Every request carries the token its source gives now (a source may renew it before it expires). A 401
calls `renew` with the refused token (a source shared by many threads renews once for all of them:
see BackendServicesAuth.renew) and, when that gave a different token, sends the request once more.
httpx reads the refused answer before sending again: that read is capped (RENEW_BODY_BYTES), so a 401
with an endless page costs nothing. The FHIR client and the Bulk Data export both send through it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator

import httpx

from azaguard.httpbound import ResponseTooLarge

TokenSource = str | Callable[[], str | None] | None
Renew = Callable[[str | None], None]  # given the token a server refused (401): get a new one, if still current
RENEW_BODY_BYTES = 8 << 10  # a 401's body (an OperationOutcome at most) read before the request is sent again


class BearerAuth(httpx.Auth):
    def __init__(self, token: TokenSource, renew: Renew | None = None) -> None:
        self._token, self._renew = token, renew
        self.renewals = 0  # requests sent again with a renewed token

    def current(self) -> str | None:
        return self._token() if callable(self._token) else self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        sent = self.current()
        if sent:
            request.headers["Authorization"] = f"Bearer {sent}"
        response = yield request
        if response.status_code != 401 or self._renew is None:
            return
        self._renew(sent)
        fresh = self.current()
        if not fresh or fresh == sent:
            return  # nothing new to offer: the 401 stands
        if isinstance(response.stream, httpx.SyncByteStream):
            response.stream = _Capped(response.stream, RENEW_BODY_BYTES, request)
        request.headers["Authorization"] = f"Bearer {fresh}"
        self.renewals += 1
        yield request


class _Capped(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, cap: int, request: httpx.Request) -> None:
        self._inner, self._cap, self._request = inner, cap, request

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self._inner:
            size += len(chunk)
            if size > self._cap:
                raise ResponseTooLarge(f"the 401 answer is larger than {self._cap} bytes", request=self._request)
            yield chunk

    def close(self) -> None:
        self._inner.close()
