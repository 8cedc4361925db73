from __future__ import annotations

import re

from azaguard.smart.launch import new_state
from azaguard.smart.pkce import new_pkce, s256_challenge


def test_s256_matches_rfc7636_appendix_b() -> None:
    assert (
        s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_new_pkce_is_s256_of_a_valid_fresh_verifier() -> None:
    a, b = new_pkce(), new_pkce()
    assert a.method == "S256"
    assert 43 <= len(a.verifier) <= 128
    assert re.fullmatch(r"[A-Za-z0-9\-._~]+", a.verifier)
    assert a.challenge == s256_challenge(a.verifier)
    assert a.verifier != b.verifier


def test_state_carries_at_least_122_random_bits() -> None:
    state = new_state()
    # token_urlsafe(32): 32 bytes = 256 bits → 43 base64url characters (6 bits each).
    assert len(state) * 6 >= 256 - 6
    assert re.fullmatch(r"[A-Za-z0-9_\-]+", state)
    assert len({new_state() for _ in range(50)}) == 50
