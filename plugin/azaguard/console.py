"""The `azaguard` executable: the CLI with the cyclic garbage collector set for a process's life.

Importing pydantic and defining the mappings models makes ~100k objects that live as long as the
process; every collection pass would walk them again (~10% of a `check` run). So the collector is
off while the CLI is imported. A one-shot command (`check`, `mappings`) reads one record and exits,
so it keeps it off (record and rules make no cycles that outgrow one record); a long-running one
(`demo`, `serve`) freezes what was imported (never collected: it lives for the process anyway) and
turns it back on. `azaguard.cli.main` itself leaves the collector alone (tests call it in-process).
"""

from __future__ import annotations

import gc
import sys

ONE_SHOT = frozenset({"check", "mappings"})


def main() -> int:
    gc.disable()
    from azaguard.cli import main as cli_main

    if not ONE_SHOT.intersection(sys.argv[1:2]):
        gc.freeze()
        gc.enable()
    return cli_main()
