"""The token-checking FHIR proxy: `/ehr/fhir/...` in front of the upstream FHIR server.

Every request needs a live Bearer token (else 401). Before forwarding, the request must stay in
the token's patient compartment and within its scopes (else 403). After, the upstream's answer is
checked too, since a server may ignore a search parameter it does not know: search results outside
the compartment are withheld (with an OperationOutcome entry saying so), and any other resource
outside it turns the answer into a 403. Upstream URLs in responses are rewritten to the public base.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from azaguard.sandbox.ehr.authserver import SANDBOX_PRACTITIONER
from azaguard.sandbox.ehr.backend import system_proxy
from azaguard.sandbox.ehr.compartment import (
    FhirPath,
    check_read,
    check_resource,
    check_search,
    check_write,
    conditional_criteria,
    params_of,
    parse_path,
    returned_resources,
)
from azaguard.sandbox.ehr.context import EhrContext, ehr
from azaguard.sandbox.ehr.relay import (
    FORWARD_REQUEST_HEADERS,
    FORWARD_RESPONSE_HEADERS,
    json_body,
    outcome,
    rewrite_urls,
)
from azaguard.sandbox.ehr.scopes import Permission, ResourceScope, allows, parse_scopes

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
_REALM = 'Bearer realm="azaguard-sandbox-ehr"'
_BATCH_TYPES = ("batch", "transaction")


@dataclass
class Verdict:
    """What the proxy decided about a request before forwarding it."""

    problem: str | None = None
    written_types: set[str] = field(default_factory=set)
    existing: list[FhirPath] = field(default_factory=list)  # PUT targets whose current owner must be checked
    if_none_exist: str | None = None  # the checked, compartment-confined criteria to forward


def _scope_problem(
    scopes: Sequence[ResourceScope], rtype: str, perm: Permission, params: Sequence[tuple[str, str]]
) -> str | None:
    if allows(scopes, rtype, perm, params):
        return None
    words = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
    return f"the token's scopes do not allow {words[perm]} of {rtype}"


def check_interaction(
    method: str,
    path: FhirPath,
    params: Sequence[tuple[str, str]],
    body: object,
    patient: str,
    scopes: Sequence[ResourceScope],
    bases: Sequence[str],
    verdict: Verdict,
) -> str | None:
    """One interaction (a request, or one entry of a batch): None when allowed, else why not."""
    rtype = path.resource_type
    if rtype is None or path.other:
        return "this kind of request is not supported by the sandbox EHR"
    if method in ("GET", "HEAD") or path.search_post:
        if path.resource_id is None:
            return _scope_problem(scopes, rtype, "s", params) or check_search(rtype, params, patient, bases)
        return _scope_problem(scopes, rtype, "r", ()) or check_read(path, patient)
    if method in ("POST", "PUT"):
        perm: Permission = "c" if method == "POST" else "u"
        problem = _scope_problem(scopes, rtype, perm, ()) or check_write(method, path, body, patient, bases)
        if problem is None:
            verdict.written_types.add(rtype)
            if method == "PUT":
                verdict.existing.append(path)
        return problem
    return f"{method} is not allowed by the sandbox EHR"


def _split_url(url: str, bases: Sequence[str]) -> tuple[str, str]:
    for base in bases:
        if url.startswith(f"{base}/"):
            url = url[len(base) + 1 :]
    path, _, query = url.partition("?")
    return path, query


def check_request(
    method: str,
    path: str,
    params: Sequence[tuple[str, str]],
    body: object,
    patient: str,
    scopes: Sequence[ResourceScope],
    bases: Sequence[str],
) -> Verdict:
    """The whole request, looking into each entry of a batch or transaction Bundle."""
    verdict = Verdict()
    if method == "POST" and not path.strip("/"):
        if not isinstance(body, dict) or body.get("resourceType") != "Bundle" or body.get("type") not in _BATCH_TYPES:
            verdict.problem = "POST to the base must be a batch or transaction Bundle"
            return verdict
        for index, entry in enumerate(body.get("entry") or []):
            request = entry.get("request") if isinstance(entry, dict) else None
            if not isinstance(request, dict) or not isinstance(request.get("url"), str):
                verdict.problem = f"entry {index} has no request.url"
                return verdict
            entry_path, entry_query = _split_url(request["url"], bases)
            for conditional in ("ifNoneMatch", "ifModifiedSince"):
                request.pop(conditional, None)  # answered in full: the response check sees every body
            if isinstance(request.get("ifNoneExist"), str):
                rtype = parse_path(entry_path).resource_type or ""
                problem, confined = conditional_criteria(rtype, request["ifNoneExist"], patient, bases)
                if problem:
                    verdict.problem = f"entry {index}: {problem}"
                    return verdict
                request["ifNoneExist"] = confined
            problem = check_interaction(
                str(request.get("method", "")).upper(),
                parse_path(entry_path),
                params_of(entry_query),
                entry.get("resource"),
                patient,
                scopes,
                bases,
                verdict,
            )
            if problem:
                verdict.problem = f"entry {index} ({request['method']} {request['url']}): {problem}"
                return verdict
        return verdict
    verdict.problem = check_interaction(method, parse_path(path), params, body, patient, scopes, bases, verdict)
    return verdict


def resource_problem(
    resource: dict[str, Any], patient: str, scopes: Sequence[ResourceScope], bases: Sequence[str], written: set[str]
) -> str | None:
    """Is this resource the patient's, of a type the token may read (or has just written)?"""
    problem = check_resource(resource, patient, bases)
    if problem:
        return f"the server returned data outside the patient's compartment: {problem}"
    rtype = str(resource.get("resourceType"))
    readable = allows(scopes, rtype, "r") or allows(scopes, rtype, "s")
    if rtype != "OperationOutcome" and rtype not in written and not readable:
        return f"the server returned {rtype}, which the token's scopes do not allow reading"
    return None


def filter_searchsets(
    body: dict[str, Any], patient: str, scopes: Sequence[ResourceScope], bases: Sequence[str], written: set[str]
) -> int:
    """Withhold search results outside the compartment or the scopes, as an EHR would; how many were withheld.

    An upstream may ignore a search parameter it does not support (sekmet answers
    `ImmunizationRecommendation?patient=X` with everyone's): the search still only shows the
    patient's resources, with an OperationOutcome entry saying that some were withheld.
    """
    if body.get("resourceType") != "Bundle":
        return 0
    entries = [e for e in body.get("entry") or [] if isinstance(e, dict)]
    withheld = 0
    if body.get("type") != "searchset":
        for entry in entries:  # batch-response: each entry may hold a searchset
            if isinstance(entry.get("resource"), dict):
                withheld += filter_searchsets(entry["resource"], patient, scopes, bases, written)
        return withheld
    kept = []
    for entry in entries:
        resource = entry.get("resource")
        if isinstance(resource, dict) and resource_problem(resource, patient, scopes, bases, written):
            withheld += 1
        else:
            kept.append(entry)
    if withheld:
        note = f"{withheld} result(s) outside the launch patient's compartment or the token's scopes were withheld"
        kept.append(
            {
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "warning", "code": "suppressed", "diagnostics": note}],
                },
                "search": {"mode": "outcome"},
            }
        )
        body["entry"] = kept
        body.pop("total", None)  # the upstream's count included what was withheld
    return withheld


def check_response(
    body: dict[str, Any],
    patient: str,
    scopes: Sequence[ResourceScope],
    bases: Sequence[str],
    written: set[str],
) -> str | None:
    """Every returned resource is the patient's, of a type the token may read (or has just written)."""
    for resource in returned_resources(body):
        problem = resource_problem(resource, patient, scopes, bases, written)
        if problem:
            return problem
    return None


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def fhir_proxy(request: Request) -> Response:
    context = ehr(request)
    value = _bearer(request)
    if value is None:
        return outcome(401, "login", "a Bearer access token is required", {"WWW-Authenticate": _REALM})
    token = context.auth.store.access_token(value)
    if token is None:
        challenge = f'{_REALM}, error="invalid_token", error_description="invalid or expired token"'
        return outcome(401, "login", "the access token is invalid or expired", {"WWW-Authenticate": challenge})
    if token.patient is None:
        if any(scope.startswith("system/") for scope in token.scope.split()):
            # a backend service: scopes, no compartment
            return await system_proxy(request, token, context.upstream, context.fhir_base)
        return outcome(403, "forbidden", "the token has no patient in context")

    path = request.path_params.get("path", "")
    body, raw, body_problem = await json_body(request)
    if body_problem:
        return outcome(400, "invalid", body_problem)
    public_bases = (context.fhir_base,)
    known_bases = (*public_bases, *context.upstream.aliases)
    params = params_of(request.url.query)
    if path.endswith("/_search") and request.method == "POST" and raw and body is None:
        params += params_of(raw.decode("utf-8", "replace"))
    scopes = parse_scopes(token.scope)
    if _reads_own_user(request.method, path, token.scope):
        # SMART: "openid fhirUser" is permission to retrieve the signed-in user: this one read, nothing more.
        scopes = [*scopes, ResourceScope("user", "Practitioner", frozenset("r"))]
    verdict = check_request(request.method, path, params, body, token.patient, scopes, known_bases)
    if verdict.problem is None and request.headers.get("if-none-exist") is not None:
        rtype = parse_path(path).resource_type or ""
        verdict.problem, verdict.if_none_exist = conditional_criteria(
            rtype, request.headers["if-none-exist"], token.patient, known_bases
        )
    if verdict.problem:
        return outcome(403, "forbidden", verdict.problem)

    client = context.upstream.client()
    base = context.upstream.base
    try:
        for target in verdict.existing:  # a PUT must not take over another patient's resource
            current = await client.get(
                f"{base}/{target.resource_type}/{target.resource_id}",
                headers={"Accept": "application/fhir+json"},
            )
            if current.status_code == 200:
                problem = check_resource(current.json(), token.patient, known_bases)
                if problem:
                    return outcome(403, "forbidden", f"cannot update: {problem}")
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARD_REQUEST_HEADERS}
        if verdict.if_none_exist is not None:
            headers["If-None-Exist"] = verdict.if_none_exist
        # The whole resource comes back whatever the client prefers: it is what the check needs.
        headers["Prefer"] = "return=representation"
        query = urlencode(rewrite_urls(params, public_bases, base)) if params else ""
        content = json.dumps(rewrite_urls(body, public_bases, base)).encode() if body is not None else raw or None
        upstream = await client.request(
            "GET" if request.method == "HEAD" else request.method,  # HEAD: checked like the GET it stands for
            f"{base}/{path}" + (f"?{query}" if query else ""),
            headers=headers,
            content=content,
        )
    except httpx.HTTPError as exc:
        return outcome(502, "transient", f"the upstream FHIR server did not answer ({type(exc).__name__})")
    except ValueError:
        return outcome(502, "exception", "the upstream FHIR server answered with invalid JSON")
    response = _relay(upstream, context, token.patient, scopes, known_bases, verdict, request.method)
    return _as_requested(request, response)


def _reads_own_user(method: str, path: str, granted: str) -> bool:
    """A read of the sandbox user's own resource (its fhirUser) by a token granted openid and fhirUser."""
    own = f"Practitioner/{SANDBOX_PRACTITIONER}"
    return method in ("GET", "HEAD") and path.strip("/") == own and {"openid", "fhirUser"} <= set(granted.split())


def _as_requested(request: Request, response: Response) -> Response:
    """The checked answer shaped as the client asked: 304 for a matching If-None-Match, no body for
    HEAD or `Prefer: return=minimal`. Only ever after the full answer passed the compartment check."""
    if not 200 <= response.status_code < 300:
        return response
    etag = response.headers.get("etag")
    minimal = "return=minimal" in request.headers.get("prefer", "")
    wanted = request.headers.get("if-none-match")
    headers = {k: v for k, v in response.headers.items() if k.lower() in (*FORWARD_RESPONSE_HEADERS, "content-type")}
    if request.method == "GET" and wanted and etag and etag in [t.strip() for t in wanted.split(",")]:
        headers.pop("content-type", None)
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD" or (minimal and request.method in ("POST", "PUT")):
        return Response(status_code=response.status_code, headers=headers)
    return response


def _relay(
    upstream: httpx.Response,
    context: EhrContext,
    patient: str,
    scopes: Sequence[ResourceScope],
    bases: Sequence[str],
    verdict: Verdict,
    method: str = "GET",
) -> Response:
    headers = {
        k: rewrite_urls(v, context.upstream.aliases, context.fhir_base)
        for k, v in upstream.headers.items()
        if k.lower() in FORWARD_RESPONSE_HEADERS
    }
    media_type = upstream.headers.get("content-type", "application/fhir+json")
    if not upstream.content:
        if upstream.is_success and method in ("GET", "HEAD", "POST", "PUT") and upstream.status_code != 204:
            # Nothing to check: whose resource it was cannot be told, so nothing is told.
            return outcome(502, "exception", "the upstream answered without a body; the sandbox EHR cannot check it")
        return Response(status_code=upstream.status_code, headers=headers, media_type=media_type)
    try:
        data = upstream.json()
    except (ValueError, RecursionError):
        if upstream.is_success:  # cannot check what it cannot read: refuse rather than leak
            return outcome(406, "not-supported", "the sandbox EHR proxy serves JSON only")
        return Response(upstream.content, status_code=upstream.status_code, headers=headers, media_type=media_type)
    data = rewrite_urls(data, context.upstream.aliases, context.fhir_base)
    if upstream.is_success and isinstance(data, dict):
        filter_searchsets(data, patient, scopes, bases, verdict.written_types)
        problem = check_response(data, patient, scopes, bases, verdict.written_types)
        if problem:
            return outcome(403, "forbidden", problem)
    return Response(json.dumps(data), status_code=upstream.status_code, headers=headers, media_type=media_type)


def with_oauth_uris(capability: dict[str, Any], context: EhrContext) -> dict[str, Any]:
    """The CapabilityStatement with SMART's oauth-uris security extension on each server `rest`."""
    security = {
        "extension": [
            {
                "url": OAUTH_URIS,
                "extension": [
                    {"url": "authorize", "valueUri": context.authorize_url},
                    {"url": "token", "valueUri": context.token_url},
                ],
            }
        ],
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
            }
        ],
    }
    rests = capability.get("rest") or [{"mode": "server"}]
    capability["rest"] = [{**r, "security": security} if r.get("mode", "server") == "server" else r for r in rests]
    return capability


async def metadata_endpoint(request: Request) -> Response:
    """Public: the upstream CapabilityStatement, with the SMART oauth-uris and public URLs."""
    context = ehr(request)
    try:
        capability = await context.upstream.get_json("metadata")
    except (httpx.HTTPError, ValueError) as exc:
        return outcome(502, "transient", f"the upstream FHIR server did not answer ({type(exc).__name__})")
    if not isinstance(capability, dict):
        return outcome(502, "exception", "the upstream FHIR server answered with something unexpected")
    capability = rewrite_urls(capability, context.upstream.aliases, context.fhir_base)
    return JSONResponse(with_oauth_uris(capability, context), media_type="application/fhir+json")
