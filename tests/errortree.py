"""Every class of azaguard's error tree, found by walking the package (so a new subclass is covered by every test
that uses this), with one instance of each as its raisers build it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from concurrent.futures import Future

import azaguard
from azaguard.errors import AzaguardError
from azaguard.smart.jwks import KeysPending

SAID = "the failure as said for hospital IT"
# The classes whose constructor takes more than a sentence.
BUILT = {KeysPending: lambda: KeysPending("https://keys.example/jwks", Future())}


def tree() -> list[type[AzaguardError]]:
    found: dict[str, type[AzaguardError]] = {}
    for info in pkgutil.walk_packages(azaguard.__path__, "azaguard."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, AzaguardError) and value.__module__ == info.name:
                found[f"{info.name}.{name}"] = value
    assert len(found) > 20  # the walk found them
    return [found[name] for name in sorted(found)]


def failure(cls: type[AzaguardError]) -> AzaguardError:
    build = BUILT.get(cls)
    return build() if build is not None else cls(SAID)


TREE = tree()
IDS = [c.__qualname__ for c in TREE]
