"""docs/configuration.md, generated from the configuration's schema (AppConfig and its parts) and the
environment variables azaguard reads. `python -m azaguard.ops.configdoc > docs/configuration.md`;
tests/ops/test_config.py keeps the committed file current."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from azaguard.config import CONFIG_ENV, AppConfig, CdsClient, Scopes
from azaguard.settings import VARIABLES

# Descriptions of the keys that predate the schema's own (Field(description=...) wins when present).
DESCRIPTIONS = {
    "client_id": "The app's client id at the EHR's authorization server.",
    "client_type": "'public' (PKCE only) or 'confidential-symmetric' (client secret from client_secret_env).",
    "client_secret_env": "The environment variable holding the client secret (never the secret itself).",
    "redirect_uris": "Registered redirect URIs; the first is sent in authorization requests. https, or "
                     "http on 127.0.0.1/localhost only.",
    "launch_uri": "The app's launch URL; its origin is the app's public origin and its path (without the last "
                  "segment) where the app is mounted.",
    "scopes": "The scopes asked for: `v2` (SMART 2 syntax, when the server advertises permission-v2) and `v1`.",
    "patient_scopes": "The scopes of a patient's own standalone launch (the patient view: launch/patient, "
                      "a read of each type the rules read and the check-in's writes, from fhir/catalogue.py), "
                      "`v2` and `v1`. null: no patient launch.",
    "allowed_iss": "The FHIR servers (iss) the app will talk to; any other launch is refused before a request "
                   "leaves.",
    "frame_ancestors": "Who may frame the page (CSP frame-ancestors). Default: 'self' and the allowed iss origins.",
    "cds_clients": "The EHRs allowed to call the CDS Hooks service: `iss`, one of `jwks` (inline JWK Set) or "
                   "`jwks_url`, `jku` (allowed jku header values) and `fhir_servers` (where its hooks may make the "
                   "service fetch).",
    "cds_database_url": "The service's database (SQLAlchemy URL): CDS feedback, JWT replay cache, audit trail, "
                        "sessions with session_store 'database'. Default: $AZAGUARD_CDS_DATABASE_URL, else an "
                        "SQLite file in ~/.local/state/azaguard/.",
    "refresh_scope": "The refresh token the app asks for (SMART 2): online_access (usable while the user is "
                     "online), offline_access (beyond; only where the EHR and policy allow it), or none.",
    "v2": "SMART 2 scopes (.rs / .cruds).",
    "v1": "SMART 1 scopes (.read / .write).",
    "iss": "The CDS client's JWT issuer.",
    "jwks": "Its public keys as an inline JWK Set {\"keys\": [...]}.",
    "jwks_url": "Where its JWK Set is published.",
    "jku": "jku header values honoured for this issuer (jwks_url always is).",
    "fhir_servers": "The FHIR servers its hooks' fhirServer may name (URL prefixes; an entry without a port "
                    "matches any port). Empty: https servers whose every address is public only; loopback, "
                    "link-local and private addresses are refused unless listed.",
}

# Every environment variable that changes behaviour, beside the config keys' overrides: settings.py's list.
ENVIRONMENT = VARIABLES

EXAMPLE_FILE = "deploy/azaguard.json"


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in args if a is not type(None)) + " or null"
    if origin is tuple:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return "object"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"object ({annotation.__name__})"
    return {str: "string", bool: "boolean", int: "integer", float: "number"}.get(annotation, str(annotation))


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    return f"`{json.dumps(info.default)}`"


def _extra(info: FieldInfo, key: str) -> Any:
    extra = info.json_schema_extra
    return extra.get(key) if isinstance(extra, dict) else None


def _table(model: type[BaseModel]) -> list[str]:
    lines = ["| key | type | default | environment | description | example |", "|---|---|---|---|---|---|"]
    for name, info in model.model_fields.items():
        description = info.description or DESCRIPTIONS.get(name)
        if not description:
            raise ValueError(f"{model.__name__}.{name} has no description: add one (Field(description=...))")
        env = _extra(info, "env")
        example = _extra(info, "example")
        lines.append(
            f"| `{name}` | {_type(info.annotation)} | {_default(info)} | {f'`{env}`' if env else ''} | "
            f"{description.replace('|', '/')} | {f'`{json.dumps(example)}`' if example is not None else ''} |"
        )
    return lines


def markdown() -> str:
    out = [
        "# Configuration",
        "",
        "<!-- Generated from the configuration schema by `python -m azaguard.ops.configdoc > docs/configuration.md`;",
        "     tests/ops/test_config.py fails when it is out of date. -->",
        "",
        "One JSON file (`serve --config FILE`, `demo --config FILE`; default `smart_launch.json` or "
        f"`${CONFIG_ENV}`). Unknown keys are refused by name. Check a file, and whether what it names answers, "
        "with `azaguard config check --config FILE` (exit 0, or 2 with one sentence per problem). A complete "
        f"working file for a deployment is `{EXAMPLE_FILE}`; the README shows it.",
        "",
        "A key with an environment variable takes the variable's value when it is set (a container sets them "
        "there), whatever the file says.",
        "",
        "## Keys",
        "",
        *_table(AppConfig),
        "",
        "### `scopes`",
        "",
        *_table(Scopes),
        "",
        "### `cds_clients[]`",
        "",
        *_table(CdsClient),
        "",
        "## Other environment variables",
        "",
        "| variable | effect |",
        "|---|---|",
        *[f"| `{k}` | {v} |" for k, v in ENVIRONMENT.items()],
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown(), end="")
