"""Which network addresses an outbound connection may reach, resolved once.

A check that resolves a host name and a connection that resolves it again can be told two different
answers (DNS rebinding: public for the check, 127.0.0.1 or 169.254.169.254 for the connection). So
where the address matters, the connection itself resolves, checks every address it got, and connects
only to a checked one (`PinnedBackend`, under an httpx transport): the address checked is the address
reached. The URL keeps its name, so the Host header, TLS SNI and certificate verification are for the
name, never for the IP.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import typing
from collections.abc import Callable, Sequence

import httpcore
import httpx

Resolver = Callable[[str, int], Sequence[str]]
Accept = Callable[[str], bool]


def resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]


def is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_public(address: str) -> bool:
    """A globally routable unicast address (an IPv4-mapped IPv6 address judged as its IPv4)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def checked(host: str, port: int, accept: Accept, resolver: Resolver = resolve) -> list[str]:
    """The addresses of `host` (a literal IP is not resolved), all of them accepted, else OSError."""
    addresses = [host] if is_literal(host) else list(resolver(host, port))
    if not addresses:
        raise OSError(f"{host} has no address")
    if not all(accept(a) for a in addresses):
        raise OSError(f"{host} resolves to an address that may not be reached")
    return addresses


class PinnedBackend(httpcore.NetworkBackend):
    """httpcore's synchronous backend, connecting only to addresses `accept` allows, resolved here once."""

    def __init__(self, accept: Accept, resolver: Resolver = resolve) -> None:
        self._accept, self._resolver = accept, resolver
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = checked(host, port, self._accept, self._resolver)
        except (OSError, ValueError, UnicodeError) as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:  # as socket.create_connection: the first that answers
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # noqa: S101 (addresses is never empty)
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("no Unix sockets for outbound HTTP")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class PinnedTransport(httpx.HTTPTransport):
    """An httpx transport whose connections reach only addresses `accept` allows (see the module doc)."""

    def __init__(self, accept: Accept, *, resolver: Resolver = resolve, verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(verify=verify, trust_env=False)
        context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
        # httpx 0.28 takes no network backend: the pool it built is replaced by one on the pinned backend.
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinnedBackend(accept, resolver),
        )
