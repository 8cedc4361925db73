"""Files that hold patient data (scan results, reports, exports, the CDS store): owner-only, never via a link.

A whole file is written to a temporary file beside it (created 0600, O_EXCL) and renamed over the
target: a symbolic link planted at the target is replaced, never followed, and a crash leaves the
old file or the new one. A file appended to line by line is opened with O_NOFOLLOW and set 0600,
whatever it was before. Folders are made 0700.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import IO


def private_dir(path: Path) -> None:
    """Make the folder (and its parents) if needed; a folder azaguard makes is 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def write_private(path: Path, data: str | bytes) -> None:
    """Write the whole file: temporary file (0600) in the same folder, then an atomic rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_private(path: Path, mode: str = "a") -> IO[str]:
    """Open for appending ("a") or rewriting ("w") text, never through a link; the file ends up 0600."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if path.is_symlink():
            raise OSError(f"{path} is a symbolic link; azaguard does not write patient data through links") from exc
        raise
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, mode, encoding="utf-8", newline="")


def exposure_warning(path: Path, what: str) -> str | None:
    """A sentence when `path` can be read or entered by others than its owner."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (f"{what} {path} can be read by others than its owner (mode {stat.filemode(mode)}); "
                f"it holds patient data: chmod 700 {path}")  # fmt: skip
    return None
