"""Turning float coefficients into the integers CP-SAT needs, with known rounding."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import reduce

# Resolution of a scaled row: its largest magnitude maps to about 2**RESOLUTION_BITS.
RESOLUTION_BITS = 40
# Largest exponent a scale may take (rows of subnormal numbers would overflow).
_MAX_EXPONENT = 960
# Integral rows are kept exact while their absolute sum stays below this.
_EXACT_LIMIT = 2**62


def _power_of_two_scale(magnitude: float) -> float:
    """Return 2**k with magnitude * 2**k in [2**39, 2**40); exact to multiply by.

    k is capped so the scale stays finite; rows that small round to nearly zero.
    """
    if magnitude <= 0:
        return 1.0
    _, exponent = math.frexp(magnitude)
    return math.ldexp(1.0, min(RESOLUTION_BITS - exponent, _MAX_EXPONENT))


def _weighted_magnitude(values: Sequence[float], counts: Sequence[int] | None) -> float:
    """Return the largest activity of a row: sum of |value| x how often its variable can count."""
    if counts is None:
        return math.fsum(abs(v) for v in values)
    return math.fsum(abs(v) * n for v, n in zip(values, counts, strict=True))


def _exact_scale(values: Sequence[float], magnitude: float) -> float | None:
    """Return the power of two that makes every value an integer, if the row then fits int64.

    Floats are dyadic rationals, so such a scale always exists; it is usable
    when the scaled largest activity `magnitude` stays under 2**62 (CP-SAT's int64 activities).
    """
    exponent = max(float(v).as_integer_ratio()[1].bit_length() - 1 for v in values)
    if exponent > _MAX_EXPONENT:
        return None
    scale = math.ldexp(1.0, exponent)
    if magnitude * scale < _EXACT_LIMIT:
        return scale
    return None


def capacity_row(
    coefs: Sequence[float], cap: float, *, loose: bool = False, counts: Sequence[int] | None = None
) -> tuple[list[int], int]:
    """Return integer (coefs, cap) for the row `sum(coefs * x) <= cap` over 0 <= x <= counts (default 1).

    When a power of two makes every value an integer within int64 (integral
    params, FLOP counts and bytes; most float rows too), the row is exact,
    divided by its gcd. Otherwise it is scaled to 2**40 of its magnitude and
    rounded outward: by default costs up and the cap down, so every
    integer-feasible point is float-feasible; with `loose`, the other way, so
    every float-feasible point stays integer-feasible.
    """
    magnitude = _weighted_magnitude(coefs, counts) + abs(cap)
    exact = _exact_scale([*coefs, cap], magnitude)
    if exact is not None:
        ints = [int(v * exact) for v in coefs]
        int_cap = math.floor(cap * exact)
        g = reduce(math.gcd, ints, int_cap) or 1
        return [v // g for v in ints], int_cap // g
    scale = _power_of_two_scale(max([abs(cap), *(abs(v) for v in coefs)]))
    cost_round, cap_round = (math.floor, math.ceil) if loose else (math.ceil, math.floor)
    return [cost_round(v * scale) for v in coefs], cap_round(cap * scale)


def objective_terms(
    coefs: Sequence[float], counts: Sequence[int] | None = None
) -> tuple[list[int], float]:
    """Return (rounded integer coefficients, scale) for a linear objective over 0 <= x <= counts.

    The scale maps the largest activity to about 2**40, so the objective of
    any selection is off by at most half a unit per selected term.
    """
    scale = _power_of_two_scale(_weighted_magnitude(coefs, counts))
    return [round(v * scale) for v in coefs], scale
