"""How `azaguard scan` authorizes: a bearer token from the environment, or SMART Backend Services."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable

from azaguard.cliopts import TOKEN_ENV
from azaguard.errors import AuthError
from azaguard.httpauth import Renew
from azaguard.smart.backend import BackendAuthError, BackendServicesAuth, key_file_warning, load_private_key


class AuthFailed(AuthError):
    """The authorization server refused the backend client: a configuration problem, before any patient."""


def token_source(
    args: argparse.Namespace, warn: Callable[[str], None] = lambda _: None
) -> tuple[str | Callable[[], str] | None, Renew | None, str]:
    """The bearer token (a callable that renews, for backend services), a renew hook, and how it was got;
    `warn` hears what is usable but wrong (a key file others can read, a scope broader or narrower than asked)."""
    if args.client_id:
        exposed = key_file_warning(args.private_key)
        if exposed:
            warn(f"warning: {exposed}")
        try:
            key = load_private_key(args.private_key, args.kid)
            auth = BackendServicesAuth(args.fhir_url, args.client_id, key, write=bool(args.write))
            auth.token()  # fail before any patient: a refused client is a configuration problem
        except BackendAuthError as exc:
            raise AuthFailed(str(exc)) from exc
        for warning in auth.warnings:
            warn(f"warning: {warning}")

        def renew(refused: str | None) -> None:
            # If renewal fails, the request's 401 stands and the patient is recorded as failed.
            with contextlib.suppress(BackendAuthError):
                auth.renew(refused)

        return auth.token, renew, f"SMART Backend Services as {args.client_id} ({key.alg}; {auth.granted_scope})"
    token: str | None = args.settings.fhir_token
    return token, None, f"bearer token from ${TOKEN_ENV}" if token else "none"
