"""SMART App Launch, app side: discovery, PKCE, the authorization code flow, sessions."""

from __future__ import annotations

from azaguard.smart.discovery import DiscoveryError, SmartConfiguration, discover
from azaguard.smart.launch import TokenError, TokenSet, can_write_alerts, select_scope
from azaguard.smart.pkce import Pkce, new_pkce, s256_challenge

__all__ = [
    "DiscoveryError",
    "Pkce",
    "SmartConfiguration",
    "TokenError",
    "TokenSet",
    "can_write_alerts",
    "discover",
    "new_pkce",
    "s256_challenge",
    "select_scope",
]
