"""Run sekmet-fhir with the search parameters azaguard needs (run by sekmet's own Python).

sekmet-fhir 0.1.1 defines no search parameters for DetectedIssue and none for Flag
author/category/code: `DetectedIssue?patient=X` then silently returns every DetectedIssue and
conditional create by identifier fails. The table is plain data (`PARAMS` in
`sekmet/fhir/search_params.py`), read at request time, so extending it in this process before
the app starts is enough; site-packages stays untouched.

This file imports nothing from azaguard: it runs in sekmet's virtual environment.
Usage: python sekmet_launcher.py serve|reset|reindex -c settings.yaml
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

# name:kind:path[:target], the format of sekmet's own table.
EXTRA_PARAMS: dict[str, tuple[str, ...]] = {
    "DetectedIssue": (
        "identifier:token:identifier",
        "code:token:code",
        "patient:reference:patient:Patient",
        "implicated:reference:implicated",
        "identified:date:identifiedDateTime|identifiedPeriod",
        "author:reference:author",
        "status:token:status",
    ),
    "Flag": (
        "author:reference:author",
        "category:token:category",
        "code:token:code",
    ),
    # Without these `QuestionnaireResponse?subject=X&authored=ge...` returns every patient's check-ins, and
    # `Questionnaire?url=` every Questionnaire (the gatherer keeps only what matches, with a warning each time).
    "QuestionnaireResponse": (
        "subject:reference:subject",
        "patient:reference:subject:Patient",
        "authored:date:authored",
        "questionnaire:uri:questionnaire",
        "status:token:status",
    ),
    "Questionnaire": (
        "url:uri:url",
        "version:token:version",
        "status:token:status",
        "identifier:token:identifier",
        "name:string:name",
    ),
    # Without it `ImmunizationRecommendation?patient=X` returns every patient's recommendations.
    "ImmunizationRecommendation": (
        "patient:reference:patient:Patient",
        "identifier:token:identifier",
        "date:date:date",
        "vaccine-type:token:recommendation.vaccineCode",
        "status:token:recommendation.forecastStatus",
    ),
}


def patch_search_params() -> None:
    """Add EXTRA_PARAMS to sekmet's table (in place: every sekmet module shares the dict)."""
    sp: Any = importlib.import_module("sekmet.fhir.search_params")
    for rtype, lines in EXTRA_PARAMS.items():
        table = sp.PARAMS.setdefault(rtype, {})
        for line in lines:
            bits = line.split(":")
            target = bits[3] if len(bits) > 3 else None
            table.setdefault(bits[0], sp.SearchParam(bits[0], bits[1], tuple(bits[2].split("|")), target))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["serve", "reset", "reindex"])
    parser.add_argument("-c", "--config", required=True)
    args = parser.parse_args(argv)
    os.environ["SEKMET_CONFIG"] = args.config
    patch_search_params()
    config: Any = importlib.import_module("sekmet.config")
    settings = config.load_settings(args.config)
    if args.command in ("reset", "reindex"):
        store: Any = importlib.import_module("sekmet.fhir.store").Store(settings.database)
        if args.command == "reset":
            # What `sekmet reset --yes` does (Store.reset), without building the whole app
            # context first: 0.7 s instead of 2.4 s, and tests reset often.
            store.reset()
            print("Local database cleared.")
        else:
            # Resources stored before the patch have no index rows for the new parameters.
            print(f"reindexed {store.reindex_all()} resources")
        return 0
    uvicorn: Any = importlib.import_module("uvicorn")
    app: Any = importlib.import_module("sekmet.main").create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
