"""Strict JSON text: what every request body, uploaded line and input file is parsed with.

Python's `json` accepts more than can be stored and read back: lone UTF-16 surrogates
(`"\\ud800"` decodes to a string that cannot be encoded as UTF-8), `NaN`, `Infinity` and `1e999`,
integers of thousands of digits, and nesting deep enough to exhaust the recursion limit of whatever walks the
value later. `loads` refuses all of these with a `JsonTextError` naming where, so nothing that
cannot be serialized again is ever accepted.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64
"""Most levels of nested arrays and objects a value may have."""
MAX_INT_DIGITS = 40
"""Most digits of an integer literal (far above any count or seed; a 128-bit integer has 39)."""


class JsonTextError(ValueError):
    """Text that is not strict JSON; `loc` is the path to the offending value (keys and indices)."""

    def __init__(self, message: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.loc = loc


def _no_constant(name: str) -> Any:
    raise JsonTextError(f"{name} is not a JSON number")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonTextError(f"an integer of {len(text.lstrip('-'))} digits; the limit is {MAX_INT_DIGITS}")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JsonTextError(f"the number {text[:20]} is out of range")
    return value


def _utf8(text: str, loc: tuple[str | int, ...], what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JsonTextError(f"{what} holds an unpaired surrogate (\\u{ord(text[exc.start]):04x}): not UTF-8 text",
                            loc) from None


def check(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise JsonTextError unless every string and key of `value` is UTF-8 and it nests at most `max_depth`."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, loc = stack.pop()
        if isinstance(item, str):
            _utf8(item, loc, "a string")
            continue
        if not isinstance(item, dict | list):
            continue
        if len(loc) >= max_depth:
            raise JsonTextError(f"nested too deeply (more than {max_depth} levels)", loc)
        if isinstance(item, dict):
            for key, child in item.items():
                _utf8(key, loc, "a key")
                stack.append((child, (*loc, key)))
        else:
            stack.extend((child, (*loc, i)) for i, child in enumerate(item))


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """The value of strict JSON `data` (bytes must be UTF-8); JsonTextError with a one-line reason if not."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonTextError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    try:
        value = json.loads(data, parse_constant=_no_constant, parse_int=_bounded_int, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise JsonTextError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise JsonTextError(f"nested too deeply (more than {max_depth} levels)") from None
    check(value, max_depth)
    return value
