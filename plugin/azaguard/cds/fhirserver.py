"""Which FHIR servers a CDS client may make azaguard fetch from, and in how long.

A hook's `fhirServer` is chosen by the caller: unchecked, any registered EHR (or a stolen key) could make
the service reach internal hosts. A client's `fhir_servers` list is its allow-list; without one only https
servers whose every address is public are fetched from. Every refusal or failure to connect reads the same
(no oracle for which internal ports are open). The check here refuses early; the connection itself
(addresses.PinnedTransport, `only_public`) checks the addresses it connects to, so a host that answers
public for this check and private for the connection (DNS rebinding) is never reached."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from azaguard.addresses import Resolver, checked, is_public, resolve


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

    @property
    def only_public(self) -> bool:
        """Connections must reach public addresses only (nothing listed): pinned at connect time."""
        return not self.listed

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        if not parts.hostname or parts.username is not None or parts.password is not None:
            return False
        if self.listed:
            return any(_under(parts.geturl(), entry) for entry in self.listed)
        if parts.scheme != "https":
            return False
        try:
            checked(parts.hostname, parts.port or 443, is_public, self.resolver)
        except (OSError, ValueError, UnicodeError):
            return False
        return True


def _under(url: str, entry: str) -> bool:
    a, b = urlsplit(url), urlsplit(entry)
    if (a.scheme, a.hostname) != (b.scheme, b.hostname) or (b.port is not None and a.port != b.port):
        return False
    prefix = b.path.rstrip("/")
    return a.path.rstrip("/") == prefix or a.path.startswith(prefix + "/")
