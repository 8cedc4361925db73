"""Which FHIR servers a CDS client may make azaguard fetch from, and in how long.

A hook's `fhirServer` is chosen by the caller: unchecked, any registered EHR (or a stolen key) could make
the service reach internal hosts. A client's `fhir_servers` list is its allow-list; without one only https
servers whose every address is public are fetched from. Every refusal or failure to connect reads the same
(no oracle for which internal ports are open)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

Resolver = Callable[[str, int], Sequence[str]]


def resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]


@dataclass(frozen=True)
class FetchPolicy:
    """What one caller may make the service fetch: `listed` servers (URL prefixes; an entry without a
    port matches any port), else https on public addresses only; all of a hook's fetches within
    `deadline` seconds."""

    listed: tuple[str, ...] = ()
    deadline: float = 4.0
    resolver: Resolver = resolve

    def refusal(self, what: str) -> str:
        """The one sentence for every refusal, failure to connect and timeout."""
        return (f"fetching {what} from fhirServer failed: the server is not allowed for this client, could not "
                f"be reached, or did not answer within {self.deadline:g} s")

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        if not parts.hostname or parts.username is not None or parts.password is not None:
            return False
        if self.listed:
            return any(_under(parts.geturl(), entry) for entry in self.listed)
        if parts.scheme != "https":
            return False
        try:
            port = parts.port or 443
            addresses = [parts.hostname] if _literal(parts.hostname) else self.resolver(parts.hostname, port)
        except (OSError, ValueError, UnicodeError):
            return False
        return bool(addresses) and all(_public(a) for a in addresses)


def _under(url: str, entry: str) -> bool:
    a, b = urlsplit(url), urlsplit(entry)
    if (a.scheme, a.hostname) != (b.scheme, b.hostname) or (b.port is not None and a.port != b.port):
        return False
    prefix = b.path.rstrip("/")
    return a.path.rstrip("/") == prefix or a.path.startswith(prefix + "/")


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
