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


def capacity_row(
    coefs: Sequence[float], cap: float, *, loose: bool = False
) -> tuple[list[int], int]:
    """Return integer (coefs, cap) for the row `sum(coefs * x) <= cap` over 0/1 x.

    Integral rows (params, FLOP counts, bytes) stay exact, divided by their gcd.
    Other rows are scaled by a power of two (exact in floating point) and
    rounded outward: by default costs up and the cap down, so every
    integer-feasible point is float-feasible; with `loose`, the other way, so
    every float-feasible point stays integer-feasible.
    """
    if all(float(v).is_integer() for v in (*coefs, cap)) and (
        math.fsum(abs(v) for v in coefs) + abs(cap) < _EXACT_LIMIT
    ):
        ints = [int(v) for v in coefs]
        g = reduce(math.gcd, ints, int(cap)) or 1
        return [v // g for v in ints], int(cap) // g
    scale = _power_of_two_scale(max([abs(cap), *(abs(v) for v in coefs)]))
    cost_round, cap_round = (math.floor, math.ceil) if loose else (math.ceil, math.floor)
    return [cost_round(v * scale) for v in coefs], cap_round(cap * scale)


def objective_terms(coefs: Sequence[float]) -> tuple[list[int], float]:
    """Return (rounded integer coefficients, scale) for a linear objective.

    The scale maps the sum of magnitudes to about 2**40, so the objective of
    any selection is off by at most half a unit per selected term.
    """
    scale = _power_of_two_scale(math.fsum(abs(v) for v in coefs))
    return [round(v * scale) for v in coefs], scale
