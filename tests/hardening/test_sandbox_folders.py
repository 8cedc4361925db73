"""Two demos on different ports never share (and reset) one data folder; a folder in use is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from azaguard.sandbox.server import SandboxError, SandboxServer


def test_demos_on_different_ports_have_their_own_data_folders(tmp_path: Path) -> None:
    first, second = SandboxServer(home=tmp_path, port=9401), SandboxServer(home=tmp_path, port=9501)
    assert first.data_dir != second.data_dir
    assert first.settings_path != second.settings_path


def test_a_data_folder_in_use_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    holder, intruder = SandboxServer(home=tmp_path, data_dir=folder), SandboxServer(home=tmp_path, data_dir=folder)
    holder._lock_data()
    try:
        with pytest.raises(SandboxError, match="in use by another sandbox server"):
            intruder._lock_data()
    finally:
        holder.stop()
    intruder._lock_data()  # free again once the first server stopped
    intruder.stop()
