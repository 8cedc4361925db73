"""The NDJSON engine as a Dask computation: the same two passes and the same pure functions, so an
export too big for one machine runs unchanged on an existing cluster (`--scheduler ADDRESS`), or on
a local cluster of processes here. dask.bag over the files, a fold by patient, the rule evaluation
mapped over the groups; results are sorted by patient id, as the in-process engine's are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from azaguard.mappings import Mappings
from azaguard.resources import InputError
from azaguard.scan import ndjson
from azaguard.scan.ndjson import ExportFile, Matcher, Pass1
from azaguard.scan.results import Line

Pair = tuple[str, dict[str, Any]]


def _append(acc: list[dict[str, Any]], pair: Pair) -> list[dict[str, Any]]:
    acc.append(pair[1])
    return acc


def _concat(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return a + b


def _survivor(pair: Pair, links: dict[str, str]) -> Pair:
    """A merged record's resource, filed under its surviving record's id (Patient.link)."""
    return links.get(pair[0], pair[0]), pair[1]


def _key(pair: Pair) -> str:
    return pair[0]


def _evaluate_group(
    item: tuple[str, list[dict[str, Any]]], shared: dict[str, dict[str, Any]], mappings: Mappings, now: datetime
) -> Line:
    return ndjson.evaluate_patient(item[0], item[1], shared, mappings, now)


def _refs(item: tuple[str, list[dict[str, Any]]]) -> list[str]:
    return sorted(ndjson.shared_refs(item[1]))


def _is_unreadable(item: tuple[str, list[dict[str, Any]]]) -> bool:
    return item[0] == ndjson.UNREADABLE


def _is_readable(item: tuple[str, list[dict[str, Any]]]) -> bool:
    return item[0] != ndjson.UNREADABLE


def _size(item: tuple[str, list[dict[str, Any]]]) -> int:
    return len(item[1])


def _not_none(value: object) -> bool:
    return value is not None


def _paths(files: Sequence[ExportFile], *types: str) -> list[str]:
    return [str(p) for p in ndjson.of_type(files, *types)]


def _bag(paths: list[str]) -> Any:
    import dask.bag as db  # the optional dask engine (--engine dask) only

    # One partition per 16 MiB block of a plain file (a worker's peak memory is about ten blocks);
    # a gzip file cannot be split: one partition each.
    plain = [p for p in paths if not p.endswith(".gz")]
    packed = [p for p in paths if p.endswith(".gz")]
    bags = []
    if plain:
        bags.append(db.read_text(plain, blocksize="16MiB", linedelimiter="\n"))
    if packed:
        bags.append(db.read_text(packed, blocksize=None, compression="gzip", linedelimiter="\n"))
    return bags[0] if len(bags) == 1 else db.concat(bags)


def evaluate_files_dask(
    files: Sequence[ExportFile],
    mappings: Mappings,
    now: datetime,
    *,
    scheduler: str | None = None,
    skip: frozenset[str] = frozenset(),
    on_found: Callable[[Pass1], None] | None = None,
    n_workers: int = 2,
) -> Iterator[Line]:
    """A line per patient on azathioprine, computed on a Dask cluster (local when no address)."""
    from distributed import Client, LocalCluster  # the optional dask engine only

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({type(exc).__name__})") from exc
    else:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        yield from _compute(files, mappings, now, skip, on_found)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _compute(
    files: Sequence[ExportFile],
    mappings: Mappings,
    now: datetime,
    skip: frozenset[str],
    on_found: Callable[[Pass1], None] | None,
) -> Iterator[Line]:
    matcher = Matcher.of(mappings)
    med_paths = _paths(files, "Medication")
    aza: frozenset[str] = frozenset()
    known: frozenset[str] = frozenset()
    if med_paths:
        entries = _bag(med_paths).map(ndjson.medication_entry, matcher).filter(_not_none).compute()
        aza = frozenset(mid for mid, is_aza in entries if is_aza)
        known = frozenset(mid for mid, _ in entries)
    order_paths = _paths(files, *ndjson.ORDER_TYPES)
    found: list[str] = []
    if order_paths:
        bag = _bag(order_paths).map(ndjson.aza_patient, matcher, aza, known)
        found = bag.filter(_not_none).distinct().compute()
    links: dict[str, str] = {}
    patient_paths = _paths(files, "Patient")
    if patient_paths:
        linked = _bag(patient_paths).map(ndjson.linked_patient).filter(_not_none).compute()
        links = ndjson.merged_ids(linked)
    first = Pass1.of(aza, ndjson.under_survivors(found, links), len(known))
    kept = frozenset(first.patients) - skip
    if not kept:
        if on_found is not None:
            on_found(first)
        return
    other = _paths(files, *(t for t in ndjson.EXPORT_TYPES if t not in ndjson.SHARED_TYPES))
    owned = _bag(other).map(ndjson.owned, ndjson.with_merged(kept, links)).filter(_not_none).map(_survivor, links)
    # `list` (a callable) gives each patient a fresh accumulator: a shared [] would mix the patients.
    # Persisted on the workers (bounded by the patients kept), so the files are read once, not twice.
    folded = owned.foldby(_key, _append, list, _concat, list).persist()
    first.unreadable_lines = sum(folded.filter(_is_unreadable).map(_size).compute())
    groups = folded.filter(_is_readable)
    if on_found is not None:
        on_found(first)
    shared_paths = _paths(files, *ndjson.SHARED_TYPES)
    wanted: frozenset[str] = frozenset()
    if shared_paths:
        wanted = frozenset(groups.map(_refs).flatten().distinct().compute())
    shared: dict[str, dict[str, Any]] = {}
    if wanted:
        for key, resource in _bag(shared_paths).map(ndjson.wanted_shared, wanted).filter(_not_none).compute():
            shared.setdefault(key, resource)
    evaluate = partial(_evaluate_group, shared=shared, mappings=mappings, now=now)
    lines: list[Line] = groups.map(evaluate).compute()
    yield from sorted(lines, key=lambda line: str(line["patient"]))
