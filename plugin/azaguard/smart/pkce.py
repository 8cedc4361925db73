"""PKCE (RFC 7636), always S256: a fresh verifier per authorization request."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str
    method: str = "S256"


def s256_challenge(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(verifier))) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_pkce() -> Pkce:
    # 64 random bytes → 86 characters of the unreserved set, within RFC 7636's 43..128.
    verifier = secrets.token_urlsafe(64)
    return Pkce(verifier=verifier, challenge=s256_challenge(verifier))
