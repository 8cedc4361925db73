"""CDS Hooks test kit: a signing EHR (its own keys), the service over a temporary SQLite store, and
calls signed as a real client signs them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from starlette.applications import Starlette
from starlette.testclient import TestClient

from azaguard.cds.app import CdsService, cds_routes
from azaguard.cds.store import CdsStore
from azaguard.config import AppConfig, CdsClient, load_app_config
from azaguard.mappings import load_mappings
from tests.clinical.builders import NOW

EHR_ISS = "https://ehr.example.org"
BASE = "http://127.0.0.1:8400"
FHIR_LISTED = "http://127.0.0.1"  # the local FHIR servers the tests name in fhirServer (any port)


class Ehr:
    """A CDS client: signs calls with ES384 (or RS384) keys it publishes as a JWK Set."""

    def __init__(self) -> None:
        self.ec = ECKey.generate_key("P-384", parameters={"kid": "ehr-ec"})
        self.rsa = RSAKey.generate_key(2048, parameters={"kid": "ehr-rsa"})

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.ec.as_dict(private=False), self.rsa.as_dict(private=False)]}

    def token(self, aud: str, *, alg: str = "ES384", iss: str = EHR_ISS, key: Any = None, now: float | None = None,
              lifetime: int = 300, jti: str | None = None, header: dict[str, Any] | None = None) -> str:
        issued = time.time() if now is None else now
        claims = {"iss": iss, "aud": aud, "iat": int(issued), "exp": int(issued) + lifetime,
                  "jti": jti or str(uuid.uuid4())}
        signer = key or (self.ec if alg == "ES384" else self.rsa)
        head = {"alg": alg, "typ": "JWT", "kid": signer.kid, **(header or {})}
        return jwt.encode(head, claims, signer, algorithms=[alg])

    def headers(self, path: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(BASE + path, **kw)}"}


@pytest.fixture(scope="session")
def ehr() -> Ehr:
    return Ehr()


@pytest.fixture
def config(ehr: Ehr) -> AppConfig:
    base = load_app_config(public_base=BASE)
    client = CdsClient(iss=EHR_ISS, jwks=ehr.jwks, fhir_servers=(FHIR_LISTED,))
    return base.model_copy(update={"cds_clients": (client,)})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CdsStore]:
    s = CdsStore(f"sqlite:///{tmp_path / 'cds.sqlite'}")
    yield s
    s.close()


@pytest.fixture
def make_service(config: AppConfig, store: CdsStore) -> Callable[..., CdsService]:
    def make(**kw: Any) -> CdsService:
        chosen = kw.pop("config", config)
        options: dict[str, Any] = {"mappings": load_mappings(), "store": store, "now": lambda: NOW}
        options.update(kw)
        return CdsService(chosen, **options)

    return make


@pytest.fixture
def client(make_service: Callable[..., CdsService]) -> Iterator[TestClient]:
    with TestClient(Starlette(routes=cds_routes(make_service()))) as c:
        yield c


Caller = Callable[..., Any]


@pytest.fixture
def call(client: TestClient, ehr: Ehr) -> Caller:
    """POST a hook body to a service, signed; returns the response."""

    def post(service_id: str, body: dict[str, Any] | bytes, **kw: Any) -> Any:
        path = f"/cds-services/{service_id}"
        data = body if isinstance(body, bytes) else __import__("json").dumps(body).encode()
        return client.post(path, content=data, headers={**ehr.headers(path, **kw), "Content-Type": "application/json"})

    return post
