"""Strict JSON loading: no NaN/Infinity constants, no repeated keys, no runaway nesting.

Python's ``json.loads`` accepts ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON) and keeps the
last of two equal keys silently. Every reader of untrusted JSON (request bodies, bundle
manifests) loads through :func:`loads_strict` and maps :class:`StrictJsonError` to its own error.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn


class StrictJsonError(ValueError):
    """JSON that ``json.loads`` would accept but strict JSON refuses.

    The message never quotes the document (a key or a value of it), so an API may return it.
    """


def _reject_constant(name: str) -> NoReturn:
    raise StrictJsonError(f"{name} is not valid JSON; numbers must be finite")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise StrictJsonError("an object repeats a key; keys must be unique")
    return out


def loads_strict(document: str | bytes) -> Any:
    """Parse ``document`` as strict JSON; bytes may be UTF-8, UTF-16 or UTF-32 (as json.loads).

    Raises :class:`StrictJsonError` for a NaN/Infinity constant, a repeated key, or nesting
    deeper than the interpreter's recursion limit (the C parser raises RecursionError there
    instead of overflowing the stack); ``json.JSONDecodeError`` for malformed JSON; and
    ValueError for an integer longer than ``sys.get_int_max_str_digits()``. ``1e999`` parses
    to ``inf``: a caller that needs finite numbers checks its fields.
    """
    try:
        return json.loads(
            document, parse_constant=_reject_constant, object_pairs_hook=_unique_pairs
        )
    except RecursionError:
        raise StrictJsonError("JSON nests deeper than the parser allows") from None
