"""The CLI's copy of validated mappings: read back only for the very content it was validated from."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from msgspec.structs import replace

from azaguard.mappings import MappingsError, default_mappings_dir, load_mappings, load_mappings_from


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "mappings"
    shutil.copytree(default_mappings_dir(), folder)
    return folder


def test_a_copy_is_kept_and_read_back_equal(tmp_path: Path) -> None:
    folder, cache = _copy(tmp_path), tmp_path / "cache"
    first = load_mappings_from(folder, cache_dir=cache)
    (copy,) = cache.glob("mappings-*.pickle")
    second = load_mappings_from(folder, cache_dir=cache)
    assert first == second == load_mappings()
    assert second is not first  # read back, not this process's object
    assert list(cache.glob("mappings-*.pickle")) == [copy]


def test_changed_content_is_validated_again(tmp_path: Path) -> None:
    folder, cache = _copy(tmp_path), tmp_path / "cache"
    load_mappings_from(folder, cache_dir=cache)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["version"] = "2099.1.1"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert load_mappings_from(folder, cache_dir=cache).version == "2099.1.1"
    manifest["version"] = 7  # invalid: refused although a validated copy of other content exists
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(MappingsError):
        load_mappings_from(folder, cache_dir=cache)


def test_an_unreadable_copy_is_ignored_and_replaced(tmp_path: Path) -> None:
    folder, cache = _copy(tmp_path), tmp_path / "cache"
    load_mappings_from(folder, cache_dir=cache)
    (copy,) = cache.glob("mappings-*.pickle")
    copy.write_bytes(b"not a pickle")
    assert load_mappings_from(folder, cache_dir=cache) == load_mappings()
    assert copy.read_bytes() != b"not a pickle"


def test_a_missing_file_gets_the_plain_message(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "manifest.json").unlink()
    with pytest.raises(MappingsError) as cached:
        load_mappings_from(folder, cache_dir=tmp_path / "cache")
    with pytest.raises(MappingsError) as plain:
        load_mappings_from(folder)
    assert str(cached.value) == str(plain.value)


def test_changed_content_replaces_the_one_copy(tmp_path: Path) -> None:
    folder, cache = _copy(tmp_path), tmp_path / "cache"
    load_mappings_from(folder, cache_dir=cache)
    (copy,) = cache.glob("mappings-*.pickle")
    before = copy.read_bytes()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["version"] = "2099.1.1"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    load_mappings_from(folder, cache_dir=cache)
    assert list(cache.glob("mappings-*.pickle")) == [copy]
    assert copy.read_bytes() != before


def test_two_folders_used_in_turn_keep_a_copy_each(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, second = _copy(tmp_path / "a"), _copy(tmp_path / "b")
    manifest = json.loads((second / "manifest.json").read_text())
    manifest["version"] = "2099.1.1"
    (second / "manifest.json").write_text(json.dumps(manifest))
    for _ in range(2):
        assert load_mappings_from(first, cache_dir=cache).version == load_mappings().version
        assert load_mappings_from(second, cache_dir=cache).version == "2099.1.1"
    assert len(list(cache.glob("mappings-*.pickle"))) == 2


def test_a_copy_under_the_right_name_but_of_other_content_is_not_used(tmp_path: Path) -> None:
    folder, cache = _copy(tmp_path), tmp_path / "cache"
    load_mappings_from(folder, cache_dir=cache)
    (copy,) = cache.glob("mappings-*.pickle")
    source, mappings = pickle.loads(copy.read_bytes())
    copy.write_bytes(pickle.dumps((source + b"x", replace(mappings, version="1999.1.1"))))
    assert load_mappings_from(folder, cache_dir=cache).version == load_mappings().version


def test_the_copy_is_tied_to_the_rule_ids_the_schema_reads(tmp_path: Path) -> None:
    # A renamed RuleId (findings.py) must fail validation, not load from an old copy: its source is part of
    # what the copy is compared with (and any difference is validated again: the test above).
    import azaguard.mappings as mappings_module

    folder, cache = _copy(tmp_path), tmp_path / "cache"
    load_mappings_from(folder, cache_dir=cache)
    (copy,) = cache.glob("mappings-*.pickle")
    source, _ = pickle.loads(copy.read_bytes())
    here = Path(mappings_module.__file__).parent
    for name in ("mappings.py", "findings.py"):
        assert (here / name).read_bytes() in source
