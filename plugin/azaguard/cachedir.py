"""Where the CLI keeps what it learns between runs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """~/.cache/azaguard (or $XDG_CACHE_HOME/azaguard)."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "azaguard"
