"""A resource's decoded JSON as a type: what the quick reads see before a resource is read into its Struct.

Each value is one of JSON's (an object, an array, a string, a number, true/false, null), so a reader narrows it
with isinstance before it reads it (`isinstance(v, dict)` gives a `RawObject`), and mypy checks every such read;
nothing of it is `Any`. These are annotations only: the values are the dicts and lists the decoder made.
"""

from __future__ import annotations

from typing import TypeAlias

RawValue: TypeAlias = "dict[str, RawValue] | list[RawValue] | str | int | float | bool | None"
RawObject: TypeAlias = dict[str, RawValue]  # a JSON object: a resource, or any element in it
