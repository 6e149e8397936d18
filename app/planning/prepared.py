"""A solver problem prepared once for solving and storing: its canonical JSON and SHA-256."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from solver import Problem


@dataclass(frozen=True)
class PreparedProblem:
    """A validated problem as stored (`json`, keyed by `digest`) and where it came from.

    `source` is the plan's `source` minus `reused`; `built` is the `Problem`
    object when at hand (it is dropped before caching: a parsed 500-candidate
    problem takes several times the memory of its JSON).
    """

    json: str
    digest: str
    source: Mapping[str, Any]
    built: Problem | None = None

    @classmethod
    def of(cls, problem: Problem, source: Mapping[str, Any]) -> PreparedProblem:
        """Serialize and hash `problem`; `source` gets its `problem_sha256`."""
        body = problem.model_dump_json()
        digest = hashlib.sha256(body.encode()).hexdigest()
        return cls(body, digest, {**source, "problem_sha256": digest}, problem)

    def problem(self) -> Problem:
        """The problem to solve (parsed again from its JSON when not at hand)."""
        return self.built if self.built is not None else Problem.model_validate_json(self.json)

    def cacheable(self) -> PreparedProblem:
        """This prepared problem without the parsed `Problem` object."""
        return replace(self, built=None)
