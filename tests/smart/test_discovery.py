from __future__ import annotations

import httpx
import pytest
from pytest_httpx import HTTPXMock

from azaguard.smart.discovery import OAUTH_URIS, DiscoveryError, discover

ISS = "https://ehr.example.org/fhir"
WELL_KNOWN = f"{ISS}/.well-known/smart-configuration"


def _metadata(authorize: str = "https://ehr.example.org/auth/authorize") -> dict[str, object]:
    return {
        "resourceType": "CapabilityStatement",
        "rest": [
            {
                "mode": "server",
                "security": {
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/capabilities",
                            "valueCode": "launch-ehr",
                        },
                        {
                            "url": OAUTH_URIS,
                            "extension": [
                                {"url": "authorize", "valueUri": authorize},
                                {"url": "token", "valueUri": "https://ehr.example.org/auth/token"},
                            ],
                        },
                    ]
                },
            }
        ],
    }


def test_well_known_is_read_first(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=WELL_KNOWN,
        json={
            "authorization_endpoint": "https://ehr.example.org/auth/authorize",
            "token_endpoint": "https://ehr.example.org/auth/token",
            "capabilities": ["launch-ehr", "permission-v2", "sso-openid-connect"],
            "code_challenge_methods_supported": ["S256"],
            "jwks_uri": "https://ehr.example.org/auth/jwks",
            "issuer": "https://ehr.example.org/fhir",
        },
    )
    with httpx.Client() as http:
        smart = discover(ISS + "/", http)
    assert smart.source == "well-known"
    assert smart.iss == ISS
    assert smart.token_endpoint == "https://ehr.example.org/auth/token"
    assert smart.supports_v2
    assert smart.jwks_uri == "https://ehr.example.org/auth/jwks"
    assert len(httpx_mock.get_requests()) == 1


@pytest.mark.parametrize(
    "well_known",
    [
        httpx.Response(404),
        httpx.Response(200, text="<html>not json</html>"),
        httpx.Response(200, json={"token_endpoint": "https://ehr.example.org/auth/token"}),  # no authorize
        httpx.Response(
            200,
            json={
                "authorization_endpoint": "javascript:alert(1)",
                "token_endpoint": "https://ehr.example.org/auth/token",
            },
        ),
    ],
)
def test_falls_back_to_capability_statement_oauth_uris(httpx_mock: HTTPXMock, well_known: httpx.Response) -> None:
    httpx_mock.add_callback(lambda request: well_known, url=WELL_KNOWN)
    httpx_mock.add_response(url=f"{ISS}/metadata", json=_metadata())
    with httpx.Client() as http:
        smart = discover(ISS, http)
    assert smart.source == "metadata"
    assert smart.authorization_endpoint == "https://ehr.example.org/auth/authorize"
    assert smart.capabilities == frozenset({"launch-ehr"})
    assert not smart.supports_v2
    metadata_request = httpx_mock.get_requests()[-1]
    assert metadata_request.headers["accept"] == "application/fhir+json"


def test_fallback_on_connection_error(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=WELL_KNOWN)
    httpx_mock.add_response(url=f"{ISS}/metadata", json=_metadata())
    with httpx.Client() as http:
        assert discover(ISS, http).source == "metadata"


def test_no_configuration_anywhere_is_an_error(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=WELL_KNOWN, status_code=404)
    httpx_mock.add_response(url=f"{ISS}/metadata", json={"resourceType": "CapabilityStatement", "rest": [{}]})
    with httpx.Client() as http, pytest.raises(DiscoveryError, match="oauth-uris"):
        discover(ISS, http)


def test_plain_http_endpoint_off_loopback_is_refused(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=WELL_KNOWN, status_code=404)
    httpx_mock.add_response(url=f"{ISS}/metadata", json=_metadata("http://ehr.example.org/auth/authorize"))
    with httpx.Client() as http, pytest.raises(DiscoveryError, match="https"):
        discover(ISS, http)
