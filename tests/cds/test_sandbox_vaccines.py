"""Every live vaccine the official CDS Hooks sandbox's medication list offers is recognised by its RxNorm code,
not by its name only (a record coded without a display, or with another display, is still a live vaccine)."""

from __future__ import annotations

import re

from azaguard.mappings import load_mappings
from azaguard.record import Code, Concept
from azaguard.terminology import vaccine_class
from tests.cds.sandbox_build import sandbox_medications

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
M = load_mappings()
LIVE_WORDS = re.compile(r"\bvaccine\b.*\blive\b|\blive\b.*\bvaccine\b|\bTy21a\b|\bBCG\b|attenuated", re.I)


def test_every_live_vaccine_in_the_sandbox_list_is_live_by_code() -> None:
    offered = {code: name for code, name in sandbox_medications().items() if LIVE_WORDS.search(name)}
    # What the README of the build says it offers: oral typhoid Ty21a, adenovirus types 4 and 7.
    assert {"762596", "762602", "1159372", "1099934", "1153475", "1099938", "1153661"} <= set(offered), offered
    wrong = {}
    for code, name in offered.items():
        found = vaccine_class(Concept(codings=(Code(RX, code, None),)), M)
        if found.kind != "live" or found.by_name or found.cvx not in {"25", "54", "55"}:
            wrong[f"{code} {name}"] = found
    assert not wrong, wrong

