"""Planning: from a stored profile and a request to a solver problem, prepared problems, charts."""

from app.planning.memory import with_memory
from app.planning.problem import (
    BudgetSpec,
    GainSpec,
    MethodGain,
    PlanningError,
    gain_sources,
    parse_amount,
    problem_from_profile,
)

__all__ = ["BudgetSpec", "GainSpec", "MethodGain", "PlanningError", "gain_sources", "parse_amount",
           "problem_from_profile", "with_memory"]
