"""Every code table keyed by a system name (systems.json) is checked by one validator on load."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from azaguard.mappings import MappingsError, default_mappings_dir, load_mappings_from


def _first(d: dict[str, Any]) -> Any:
    return next(iter(d.values()))


CASES: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]], str]] = {
    "infection value set": ("infections.json", lambda d: _first(d["value_sets"])["codes"], "infection value set"),
    "sign": ("signs.json", lambda d: _first(d["signs"])["codes"], "sign "),
    "sign answers": ("signs.json", lambda d: d["answers"]["present"], "sign answers (present)"),
    "lab result values": ("lab_infections.json", lambda d: d["result_values"]["negative"],
                          "lab infection result values (negative)"),
    "prophylaxis": ("medications.json", lambda d: d["anti_infectives"]["prophylaxis"]["codes"], "prophylaxis codes"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_table_keyed_by_an_unknown_system_name_is_refused(tmp_path: Path, case: str) -> None:
    name, table_of, where = CASES[case]
    folder = tmp_path / "mappings"
    shutil.copytree(default_mappings_dir(), folder)
    data = json.loads((folder / name).read_text())
    table_of(data)["snomedct"] = table_of(data).get("snomed", {})  # a misspelt system name
    (folder / name).write_text(json.dumps(data))
    with pytest.raises(MappingsError, match=rf"{re.escape(where)}.*keyed by unknown system name\(s\) \['snomedct'\]"):
        load_mappings_from(folder)
