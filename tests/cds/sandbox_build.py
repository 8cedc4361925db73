"""The official CDS Hooks sandbox build kept in tests/data (see its README): unpacked on demand."""

from __future__ import annotations

import hashlib
import json
import lzma
import re
import shutil
from functools import cache
from pathlib import Path
from typing import Any

SANDBOX_DATA = Path(__file__).resolve().parents[1] / "data" / "cds-hooks-sandbox"
SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
_SHA256 = {
    "app.bundle.js": "cbb561ebfecc6079dcfddeece32fdfb042011dc519ca4f3560ad289eaf82222d",
    "fhir-client.min.js": "ccb36510e15b6fb698395d7733995d9dab55047e37e2dfeaaaec41edef1c6f4f",
}


def sandbox_jwks() -> dict[str, Any]:
    """The sandbox's published JWK Set (what the README registers inline for its iss)."""
    data: dict[str, Any] = json.loads((SANDBOX_DATA / "build" / ".well-known" / "jwks.json").read_text())
    return data


@cache
def _bundle() -> str:
    return lzma.decompress((SANDBOX_DATA / "build" / "app.bundle.js.xz").read_bytes()).decode()


def sandbox_private_key() -> str:
    """The sandbox's signing key (PEM), read from its bundle, where it is public."""
    found = re.search(r"-----BEGIN PRIVATE KEY-----(?:\\n|[A-Za-z0-9+/=])+?-----END PRIVATE KEY-----", _bundle())
    if found is None:
        raise LookupError("no private key in the sandbox bundle")
    return found.group(0).replace("\\n", "\n")


def sandbox_medications() -> dict[str, str]:
    """The sandbox's medication list, RxNorm code -> name, as its order screens offer it (from the bundle)."""
    return dict(re.findall(r'(\d{3,8}):"([^"]{3,200})"', _bundle()))


def unpack_build(target: Path) -> Path:
    """A servable copy of the build under `target` (the scripts decompressed and checked)."""
    source = SANDBOX_DATA / "build"
    shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.xz"))
    for name, digest in _SHA256.items():
        data = lzma.decompress((source / f"{name}.xz").read_bytes())
        if hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"{name}: not the recorded sandbox build")
        (target / name).write_bytes(data)
    return target
