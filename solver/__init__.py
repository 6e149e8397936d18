"""Exact planning of parameter-efficient fine-tuning under budgets (no torch here)."""

from solver.frontier import Frontier, frontier
from solver.problem import Budget, Candidate, LayerCost, Plan, Problem, SavedInput, SolveTimeout, Strict
from solver.solve import solve

__all__ = [
    "Budget",
    "Candidate",
    "Frontier",
    "LayerCost",
    "Plan",
    "Problem",
    "SavedInput",
    "SolveTimeout",
    "Strict",
    "frontier",
    "solve",
]
