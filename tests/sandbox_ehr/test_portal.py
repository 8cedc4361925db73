"""The sandbox's patient portal: a patient signed in there authorizes as themselves (fhirUser Patient/…)."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.sandbox_ehr.helpers import FakeClock, authorize, ctx, ehr_client, exchange, pkce, redirect_params

PATIENT_SCOPE = "launch/patient openid fhirUser patient/*.rs online_access"  # online_access: a refresh token


def _claims(id_token: str) -> dict[str, Any]:
    payload = id_token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def test_a_portal_patient_authorizes_as_themselves_for_their_own_record() -> None:
    clock = FakeClock()
    client = ehr_client(clock=clock)
    ctx(client).portal["signed-in"] = ("aza-febrile-c", "Daniel Reyes", clock() + 60)
    client.cookies.set("azaguard_ehr_portal", "signed-in", path="/ehr")
    pair = pkce()
    code = redirect_params(authorize(client, pair, scope=PATIENT_SCOPE))["code"]  # no picker
    token = exchange(client, code, pair.verifier).json()
    assert token["patient"] == "aza-febrile-c"
    claims = _claims(token["id_token"])
    assert claims["fhirUser"].endswith("/ehr/fhir/Patient/aza-febrile-c")
    assert (claims["sub"], claims["name"]) == ("Patient/aza-febrile-c", "Daniel Reyes")
    refreshed = client.post("/ehr/auth/token", data={"grant_type": "refresh_token", "client_id": "azaguard",
                                                      "refresh_token": token["refresh_token"]}).json()
    assert _claims(refreshed["id_token"])["fhirUser"].endswith("/Patient/aza-febrile-c")


def test_an_expired_or_absent_portal_sign_in_is_the_clinician_again() -> None:
    clock = FakeClock()
    client = ehr_client(clock=clock)
    ctx(client).portal["old"] = ("aza-febrile-c", "Daniel Reyes", clock() + 60)
    client.cookies.set("azaguard_ehr_portal", "old", path="/ehr")
    clock.advance(61)
    picker = authorize(client, pkce(), scope=PATIENT_SCOPE)
    assert picker.status_code == 200 and "Choose a patient" in picker.text  # the clinician's patient picker
