"""Where the CLI keeps what it learns between runs."""

from __future__ import annotations

from pathlib import Path

from azaguard.settings import Settings, current


def cache_dir(settings: Settings | None = None) -> Path:
    """~/.cache/azaguard (or $XDG_CACHE_HOME/azaguard)."""
    return current(settings).cache_home / "azaguard"
