"""A patient's raw FHIR resources and how references between them resolve.

Accepts what real systems hand over: Bundles of every type (collection,
searchset, transaction with urn:uuid fullUrls, batch-response with nested
searchset Bundles) or a plain JSON array of resources.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import msgspec
import orjson

from azaguard.errors import InputError as InputError  # re-exported: what reading a record raises
from azaguard.fhirtypes import dates
from azaguard.fhirtypes.reference import parse_reference, ref_of

Resource = dict[str, Any]


class EmptyRecord(InputError):
    """No resource at all: no record, never "not on azathioprine" (a CDS hook answers 412)."""


# Limits on input JSON: far beyond any real patient record, well before memory, recursion or
# arithmetic give out (a 3.9 MB Synthea record nests 12 deep; FHIR decimals carry <= 18 digits).
MAX_INPUT_BYTES = 256 << 20
MAX_DEPTH = 100
MAX_STRING_CHARS = 8 << 20
MAX_NUMBER_CHARS = 40
MAX_ENTRIES = 200_000


def _number(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        if len(text) > MAX_NUMBER_CHARS:
            raise InputError(f"a number has {len(text)} digits (limit {MAX_NUMBER_CHARS}): {text[:20]}...")
        value = kind(text)
        if value in (float("inf"), float("-inf")):
            raise InputError(f"the number {text} is out of range")
        return value

    return parse


def _constant(name: str) -> float:
    raise InputError(f"{name} is not a JSON number (FHIR has no NaN or Infinity)")


def loads_limited(data: str | bytes, what: str) -> object:
    """JSON within the limits above; InputError (never RecursionError/ValueError/OverflowError) otherwise.

    orjson decodes (about twice the stdlib's speed on a Synthea file): it refuses NaN, Infinity and
    numbers past a double, reads an integer past 64 bits as a float (no digit-by-digit big integers)
    and stops at 1,024 levels, without recursing in Python. What it refuses is decoded again by the
    stdlib with the hooks below, for the precise message. The shape limits are then checked without
    walking a normal record (see _check_decoded)."""
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(f"{what} is {len(data)} bytes; the limit is {MAX_INPUT_BYTES}")
    raw = data.encode() if isinstance(data, str) else data
    try:
        with gc_paused():
            value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _loads_careful(raw, what)
    _check_decoded(value, raw, what)
    return value


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a record is decoded or built: a Synthea file makes
    hundreds of thousands of containers, none of them in a cycle, and every collection pass would
    walk them all for nothing (~15% of the time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            _promote_survivors()
            gc.enable()


def _promote_survivors() -> None:
    """Move what the paused work allocated straight to the oldest generation, untraversed.

    Re-enabled as is, the collector's next young collection would walk every one of those containers
    (a decoded Synthea file: ~200,000), then the middle one again (~25% of bytes→findings, measured).
    freeze() + unfreeze() moves the young generations to the old one without walking them; a cycle
    among them is collected by the next full collection, as any long-lived cycle is. Skipped when a
    process has frozen objects on purpose (`azaguard serve` freezes its imports): unfreeze would undo it."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


# Bracket nesting read from the bytes in C: [ and { count +1, ] and } count -1, all else dropped.
_NESTING = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[{]}")


def _check_decoded(value: object, raw: bytes, what: str) -> None:
    """The shape limits, without a walk over every value of a normal record (~10 ms for 4 MB).

    A string longer than MAX_STRING_CHARS needs a larger input: below that size only nesting is
    read, from the bytes (brackets inside strings can only make that reading too deep, and then the
    exact walk decides); list lengths are checked where lists are read (Bundle.entry). Larger inputs
    get the exact walk."""
    if len(raw) > MAX_STRING_CHARS:
        _check_shape(value, what)
        return
    if _nesting_at_most(raw.translate(_NESTING, _NOT_BRACKETS)) > MAX_DEPTH:
        _check_shape(value, what)


def _nesting_at_most(marks: bytes) -> int:
    """An upper bound of the bracket nesting (+1/-1 marks), exact for balanced brackets.

    Each pass removes every adjacent open-close pair (an innermost container): the running sum at
    every other mark is unchanged and the deepest point is always such a pair (or trailing), so a
    pass lowers the maximum by at most one. Passes + the maximum of what is left bound the nesting;
    a record 12 deep is gone after 12 passes, each in C over a shrinking buffer (cheaper than a
    running sum over every mark)."""
    passes = 0
    while marks and passes <= MAX_DEPTH:
        shorter = marks.replace(b"\x01\xff", b"")
        if len(shorter) == len(marks):
            break
        marks, passes = shorter, passes + 1
    return passes + (max(0, max(accumulate(memoryview(marks).cast("b")))) if marks else 0)


def _loads_careful(raw: bytes, what: str) -> object:
    """The stdlib decoder with the limits' hooks: slower, and says exactly what is wrong."""
    try:
        data = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not UTF-8 text") from exc
    try:
        value = json.loads(data, parse_int=_number(int), parse_float=_number(float), parse_constant=_constant)
    except InputError:
        raise
    except RecursionError as exc:
        raise InputError(f"{what} is nested deeper than {MAX_DEPTH} levels") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} is not valid JSON ({exc})") from exc
    _check_shape(value, what)
    return value


def _check_shape(root: object, what: str) -> None:
    """Depth, string length and array length, iteratively (no recursion to exhaust)."""
    stack: list[tuple[object, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        items = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if items is None:
            continue
        if depth > MAX_DEPTH:
            raise InputError(f"{what} is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, list) and len(node) > MAX_ENTRIES:
            raise InputError(f"{what} has a list of {len(node)} items (limit {MAX_ENTRIES})")
        for v in items:
            if type(v) is str:
                if len(v) > MAX_STRING_CHARS:
                    raise InputError(f"{what} has a string of {len(v)} characters (limit {MAX_STRING_CHARS})")
            elif isinstance(v, dict | list):
                stack.append((v, depth + 1))


class Unfetched(msgspec.Struct, frozen=True, kw_only=True):
    """A resource the record refers to that the server did not give: ids for programs (JSON), never for text."""

    reference: str  # "Medication/m1", as referenced
    referenced_by: str  # "MedicationRequest/o1"
    reason: str  # "not-found" (the server has no such resource) or "other-server" (not fetched)


class ResourceSet(msgspec.Struct):
    """Resources plus an index from every name they go by (Type/id, fullUrl, absolute URL)."""

    resources: list[Resource] = msgspec.field(default_factory=list)
    index: dict[str, Resource] = msgspec.field(default_factory=dict)
    # Entries of types the record never reads, left undecoded (record_from_bytes): decoded and indexed
    # only if a reference is not found among the others (a subject naming another resource).
    unread: list[tuple[str | None, msgspec.Raw]] = msgspec.field(default_factory=list)
    # Entries of a batch-response that failed (what, the resource type it was for if known, the error):
    # data the server could not give, which the rules must never read as "none".
    failures: list[tuple[str, str | None, str]] = msgspec.field(default_factory=list)
    # Resources a history Bundle shows deleted (`Type/id`, why): their earlier versions are not read.
    deleted: list[tuple[str, str]] = msgspec.field(default_factory=list)

    def add(self, resource: Resource, full_url: str | None = None) -> None:
        self.resources.append(resource)
        self._name(resource, full_url)

    def _name(self, resource: Resource, full_url: str | None) -> None:
        rtype, rid = resource.get("resourceType"), resource.get("id")
        index = self.index
        if isinstance(rtype, str) and isinstance(rid, str):
            index.setdefault(rtype + "/" + rid, resource)
        if full_url and isinstance(full_url, str):
            index.setdefault(full_url, resource)
            # An absolute URL also answers to its relative Type/id tail.
            if not full_url.startswith("urn:"):
                parts = full_url.rstrip("/").split("/")
                if len(parts) >= 2:
                    self.index.setdefault(f"{parts[-2]}/{parts[-1]}", resource)

    def resolve(self, reference: str) -> Resource | None:
        """The resource a reference points at, if it is in this set."""
        found = self._lookup(reference)
        if found is None and self.unread:
            self._index_unread()
            found = self._lookup(reference)
        return found

    def _lookup(self, reference: str) -> Resource | None:
        if "?" in reference:
            return self._conditional(reference)
        found = self.index.get(reference)
        parsed = parse_reference(reference) if found is None else None
        if parsed is not None and parsed.version is not None:  # the version we hold is the one the record reads
            found = self.index.get(parsed.unversioned)
        if found is None and parsed is not None and parsed.kind == "absolute" and parsed.relative:
            found = self.index.get(parsed.relative)
        return found

    def _conditional(self, reference: str) -> Resource | None:
        """A conditional reference (transaction Bundles: 'Patient?identifier=system|value'): the one resource of
        that type whose identifier matches; None when none or several do, or the search is not by identifier."""
        rtype, _, query = reference.partition("?")
        params = [p.partition("=") for p in query.split("&") if p]
        if rtype.count("/") or not params or any(k != "identifier" for k, _, _ in params):
            return None
        wanted = [unquote(v) for _, _, v in params]
        found = [r for r in self.of_type(rtype) if all(_has_identifier(r, w) for w in wanted)]
        return found[0] if len(found) == 1 else None

    def _index_unread(self) -> None:
        """Names of the undecoded entries, so a reference to one resolves as it did when every entry was
        decoded (only its type and names are read; one that does not decode stays unnamed)."""
        unread, self.unread = self.unread, []
        with gc_paused():
            for full_url, raw in unread:
                try:
                    resource = orjson.loads(memoryview(raw))
                except orjson.JSONDecodeError:
                    continue
                if isinstance(resource, dict):
                    self._name(resource, full_url)

    def of_type(self, resource_type: str) -> Iterator[Resource]:
        return (r for r in self.resources if r.get("resourceType") == resource_type)

    def patients(self) -> list[Resource]:
        return list(self.of_type("Patient"))

    @classmethod
    def from_resources(cls, resources: Iterable[Resource]) -> ResourceSet:
        out = cls()
        for r in resources:
            out.add(r)
        return out


def _has_identifier(resource: Resource, token: str) -> bool:
    """Whether a resource carries an identifier matching a FHIR token ('system|value', '|value', 'value')."""
    system, bar, value = token.rpartition("|") if "|" in token else ("", "", token)
    for ident in resource.get("identifier") or []:
        if not isinstance(ident, dict) or ident.get("value") != value:
            continue
        if not bar or ident.get("system") == (system or None):
            return True
    return False


def load_json_file(path: Path, read_types: Collection[str] | None = None) -> ResourceSet:
    """Read a Bundle or JSON array from a file; raises InputError with a clear message.

    `read_types`: the resource types the caller reads (record.RECORD_TYPES); entries of other types in
    a Bundle are then checked as JSON but not decoded (see record_from_bytes)."""
    try:
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise InputError(f"{path} is {path.stat().st_size} bytes; the limit is {MAX_INPUT_BYTES}")
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if read_types is not None:
        return record_from_bytes(raw, str(path), read_types)
    return resource_set_from_json(loads_limited(raw, str(path)))


class _Entry(msgspec.Struct):
    fullUrl: str | None = None  # anything else: the full path (which ignores it)
    resource: msgspec.Raw = msgspec.Raw(b"null")


class _Bundle(msgspec.Struct):
    resourceType: object = None
    type: object = None
    entry: list[_Entry] = []


_BUNDLE_SKELETON = msgspec.json.Decoder(_Bundle)
# How FHIR JSON (and every server we know) opens a resource; any other opening is decoded in full.
_RESOURCE_TYPE_FIRST = re.compile(rb'\{\s*"resourceType"\s*:\s*"([A-Za-z]{1,64})"')
_NULL = b"null"
_RESPONSES = frozenset({"batch-response", "transaction-response"})
# Bundle types whose entries are read by the full path (a batch's carry a status each; a history's may be DELETEs).
_FULL_PATH_TYPES = _RESPONSES | {"history"}


def record_from_bytes(raw: bytes, what: str, read_types: Collection[str]) -> ResourceSet:
    """The resources of a record's Bundle, decoding only entries of `read_types` (and Bundles, and any
    entry whose type cannot be read from its opening).

    A Synthea file is mostly claims, encounters and reports that no rule reads: they are checked as JSON
    (syntax and UTF-8; nesting up to Python's recursion limit) but not decoded, which halves the
    decoding. So the limits on values (a number past a double, nesting past MAX_DEPTH) hold for the
    entries that are read, as before, and no longer refuse a whole record for a claim no rule reads.
    Anything unusual takes the full path, whose errors are exact: input that is not a Bundle, malformed
    JSON, nesting past the limit, an entry that does not decode, a record without a Patient among what
    was read (whose record it is is then told from every entry). An entry is classed by the first
    resourceType of its opening: one that names a second type later (hostile input; a decoder keeps the
    last) is classed by the first."""
    if len(raw) > MAX_INPUT_BYTES or len(raw) > MAX_STRING_CHARS or not _utf8(raw):
        return resource_set_from_json(loads_limited(raw, what))
    wanted = frozenset(t.encode() for t in read_types) | {b"Bundle"}
    out = ResourceSet()
    try:
        with gc_paused():
            bundle = _BUNDLE_SKELETON.decode(raw)
            if bundle.resourceType != "Bundle" or len(bundle.entry) > MAX_ENTRIES or bundle.type in _FULL_PATH_TYPES:
                raise _FullPath
            read: list[tuple[int, memoryview, str | None]] = []
            for i, entry in enumerate(bundle.entry):
                resource_raw = entry.resource
                opening = _RESOURCE_TYPE_FIRST.match(resource_raw)  # Raw is a buffer: no copy
                if opening is not None and opening[1] not in wanted:
                    if opening[1] != b"OperationOutcome":
                        out.unread.append((entry.fullUrl, resource_raw))
                    continue
                resource_bytes = memoryview(resource_raw)
                if resource_bytes != _NULL:
                    read.append((i, resource_bytes, entry.fullUrl))
            # Each resource sits 3 levels down (Bundle, entry list, entry) and closes what it opens, so
            # the nesting of them all, end to end, is the deepest of them.
            marks = b"".join(r for _, r, _ in read).translate(_NESTING, _NOT_BRACKETS)
            if _nesting_at_most(marks) > MAX_DEPTH - 3:
                raise _FullPath
            for i, resource_bytes, full_url in read:
                resource = orjson.loads(resource_bytes)
                rtype = resource.get("resourceType") if isinstance(resource, dict) else None
                if not isinstance(rtype, str):
                    raise InputError(f"Bundle.entry[{i}].resource is not a FHIR resource")
                _add_resource(out, resource, full_url)
    except (_FullPath, msgspec.MsgspecError, orjson.JSONDecodeError, RecursionError):
        return resource_set_from_json(loads_limited(raw, what))
    if not out.patients():
        return resource_set_from_json(loads_limited(raw, what))
    return out


class _FullPath(Exception):
    """The input needs the full decode (its errors are exact)."""


_UTF8_CHUNK = 1 << 16


def _utf8(raw: bytes) -> bool:
    """Whether `raw` is UTF-8, decoding only the stretches that are not ASCII (a record's non-ASCII
    letters sit in a few names and addresses; decoding all 4 MB builds a 4-16 MB string)."""
    if raw.isascii():
        return True
    start, size = 0, len(raw)
    while start < size:
        end = min(start + _UTF8_CHUNK, size)
        while end < size and raw[end] >= 0x80:  # end on an ASCII byte: never inside a character
            end += 1
        chunk = raw[start:end]
        if not chunk.isascii():
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                return False
        start = end
    return True


def resource_set_from_json(data: object) -> ResourceSet:
    """A ResourceSet from a decoded Bundle or JSON array of resources."""
    out = ResourceSet()
    if isinstance(data, list):
        for i, item in enumerate(data):
            if not isinstance(item, dict) or not isinstance(item.get("resourceType"), str):
                raise InputError(f"item {i} of the array is not a FHIR resource (no resourceType)")
            _add_resource(out, item, None)
        return out
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise InputError("input is not a FHIR resource: expected a Bundle or a JSON array of resources")
    if data["resourceType"] == "OperationOutcome":
        raise InputError(f"input is an OperationOutcome, not a record: {_outcome_text(data)}")
    if data["resourceType"] != "Bundle":
        raise InputError(
            f"input is a {data['resourceType']}, not a record: expected a Bundle or a JSON array of resources"
        )
    _add_bundle(out, data)
    return out


def _add_bundle(out: ResourceSet, bundle: Mapping[str, Any]) -> None:
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise InputError("Bundle.entry is not a list")
    if len(entries) > MAX_ENTRIES:
        raise InputError(f"the record has a list of {len(entries)} items in Bundle.entry (limit {MAX_ENTRIES})")
    if bundle.get("type") == "history":
        entries = _current_history(out, entries)
    responses = bundle.get("type") in _RESPONSES
    # (Runs for every entry of a record: a Synthea file has ~1,500; one function call per entry.)
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InputError(f"Bundle.entry[{i}] is not an object")
        if responses and _failed(out, i, entry):
            continue
        resource = entry.get("resource")
        if resource is None:
            continue  # e.g. a DELETE in a transaction, or a batch-response entry with only a status
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(rtype, str):
            raise InputError(f"Bundle.entry[{i}].resource is not a FHIR resource")
        if rtype == "Bundle":  # batch-response entries hold searchset Bundles
            _add_bundle(out, resource)
        elif rtype != "OperationOutcome":  # search warnings; errors are handled by the FHIR client
            full_url = entry.get("fullUrl")
            out.add(resource, full_url if isinstance(full_url, str) else None)


def _current_history(out: ResourceSet, entries: list[Any]) -> list[Any]:
    """A history Bundle's entries without the versions a later DELETE removed.

    FHIR R4 (http.html#history): the history Bundle is "sorted with oldest versions last, and including deleted
    resources"; a deleted version is an entry with request.method DELETE and no resource. So per resource (type and
    id, from the resource, else request.url or fullUrl) the newest entry decides: a DELETE means the resource is
    gone and none of its earlier versions is evidence; a version recreated after the DELETE counts. Newest is the
    entry order, unless every entry of that resource carries a time (meta.lastUpdated, else response.lastModified):
    then by time, newest first (entry order breaks ties)."""
    keyed: dict[str, list[tuple[int, datetime | None, bool]]] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        name = _history_name(entry)
        if name is not None:
            keyed.setdefault(name, []).append((i, _history_time(entry), _is_delete(entry)))
    dropped: set[int] = set()
    for name, versions in keyed.items():
        if not any(deleted for _, _, deleted in versions):
            continue
        if all(t is not None for _, t, _ in versions):
            versions = sorted(versions, key=lambda v: (-v[1].timestamp(), v[0]))  # type: ignore[union-attr]
        newest_delete = next(k for k, (_, _, deleted) in enumerate(versions) if deleted)
        dropped |= {i for i, _, _ in versions[newest_delete:]}
        if newest_delete == 0:
            out.deleted.append((name, "deleted: the newest entry of the history Bundle is a DELETE, so its earlier "
                                      "versions are not read"))
    return [e for i, e in enumerate(entries) if i not in dropped]


def _is_delete(entry: Mapping[str, Any]) -> bool:
    request = entry.get("request")
    return isinstance(request, dict) and request.get("method") == "DELETE"


def _history_name(entry: Mapping[str, Any]) -> str | None:
    """`Type/id` of a history entry: the resource's, else its request URL's or fullUrl's (a DELETE has no resource)."""
    resource = entry.get("resource")
    if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str) and isinstance(
            resource.get("id"), str):
        return ref_of(resource)
    request = entry.get("request")
    for url in (request.get("url") if isinstance(request, dict) else None, entry.get("fullUrl")):
        if isinstance(url, str) and url:
            found = parse_reference(url.partition("?")[0])  # a query after the id says nothing about which
            if found is not None and found.relative:
                return found.relative
    return None


def _history_time(entry: Mapping[str, Any]) -> datetime | None:
    resource = entry.get("resource")
    meta = resource.get("meta") if isinstance(resource, dict) else None
    response = entry.get("response")
    for value in (meta.get("lastUpdated") if isinstance(meta, dict) else None,
                  response.get("lastModified") if isinstance(response, dict) else None):
        when = dates.earliest(value)
        if when is not None:
            return when
    return None


_STATUS = re.compile(r"^\s*(\d{3})")
_TYPE_IN_URL = re.compile(r"(?:^|/)([A-Z][A-Za-z]{1,63})(?:[/?]|$)")


def _failed(out: ResourceSet, i: int, entry: Mapping[str, Any]) -> bool:
    """A batch-response entry whose status is not 2xx: kept as a failure (with the type it was for, when the
    request URL or location tells it), never as an empty result."""
    response = entry.get("response")
    status = response.get("status") if isinstance(response, dict) else None
    code = _STATUS.match(status) if isinstance(status, str) else None
    if code is not None and code.group(1).startswith("2"):
        return False
    if code is None and entry.get("resource") is not None:
        return False  # no status: read as it stands
    request = entry.get("request")
    url = request.get("url") if isinstance(request, dict) else None
    if not isinstance(url, str):
        url = response.get("location") if isinstance(response, dict) else None
    typed = _TYPE_IN_URL.search(url) if isinstance(url, str) else None
    resource = entry.get("resource")
    outcome = _outcome_text(resource) if isinstance(resource, dict) and resource.get(
        "resourceType") == "OperationOutcome" else ""
    # Named by what it was for (a resource type), never by its URL: that holds ids.
    what = f"batch entry {i}" + (f" (a {typed.group(1)} request)" if typed else "")
    error = " ".join(x for x in (str(status) if status else "no status", outcome) if x)
    out.failures.append((what, typed.group(1) if typed else None, error))
    return True


def _add_resource(out: ResourceSet, resource: Resource, full_url: str | None) -> None:
    if resource["resourceType"] == "Bundle":  # batch-response entries hold searchset Bundles
        _add_bundle(out, resource)
    elif resource["resourceType"] == "OperationOutcome":
        return  # search warnings; errors are handled by the FHIR client
    else:
        out.add(resource, full_url)


def _outcome_text(outcome: Mapping[str, Any]) -> str:
    issues = outcome.get("issue") or []
    texts = [
        str(i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code"))
        for i in issues
        if isinstance(i, dict)
    ]
    return "; ".join(texts) or "no details"
