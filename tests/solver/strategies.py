"""Hypothesis strategies for small planning problems (dicts, as a client would send)."""

from __future__ import annotations

from hypothesis import strategies as st

_costs = st.one_of(st.integers(1, 60).map(float), st.floats(0.5, 60, allow_nan=False))
# Gains below the solver's resolution (2**-40 of the total gain) are not drawn:
# the gain objective is exact to that resolution, not below it.
_gains = st.one_of(st.integers(0, 6).map(float), st.floats(1e-3, 10, allow_nan=False))


@st.composite
def problems(draw, objective: str | None = None, max_candidates: int = 8, memory_bound: bool = False) -> dict:
    """Draw a problem with groups, layers, saved inputs, optional latency/memory caps and min_gain.

    `memory_bound` draws at least one saved input and always a memory cap, so saved inputs decide.
    """
    n_layers = draw(st.integers(0, 4))
    steps = [draw(st.integers(1, 2)) for _ in range(n_layers)]
    layers = [
        {
            "index": sum(steps[: i + 1]) - 1,
            "backward_flops": draw(st.one_of(st.just(0.0), _costs)),
            "memory_bytes": draw(st.one_of(st.just(0.0), _costs)),
        }
        for i in range(n_layers)
    ]
    indices = [layer["index"] for layer in layers]
    input_memory = st.floats(10, 40) if memory_bound else _costs
    inputs = [{"key": f"x{k}", "memory_bytes": draw(input_memory)} for k in range(draw(st.integers(int(memory_bound), 2)))]
    n = draw(st.integers(1, max_candidates))
    candidates = []
    for i in range(n):
        candidates.append(
            {
                "id": f"c{i}",
                "method": draw(st.sampled_from(["lora", "bitfit", "adapter"])),
                "group": draw(st.sampled_from([None, None, "g1", "g2"])),
                "layer": draw(st.sampled_from([None, *indices])) if indices else None,
                "gain": draw(_gains),
                "params": draw(st.integers(1, 100)),
                "flops": draw(_costs),
                "latency_ms": draw(st.one_of(st.just(0.0), st.floats(1e-3, 5))),
                "memory_bytes": draw(st.one_of(st.just(0.0), _costs)),
                "saved_input": draw(st.sampled_from([*([] if memory_bound else [None]), *(i["key"] for i in inputs)])),
            }
        )
    budget = {
        "params": draw(st.integers(5, 400)),
        "flops": draw(st.floats(5, 400)),
        "latency_ms": draw(st.one_of(st.none(), st.floats(0.5, 12))),
        "memory_bytes": draw(st.floats(10, 60) if memory_bound else st.one_of(st.none(), st.floats(5, 200))),
    }
    return {
        "candidates": candidates,
        "layers": layers,
        "saved_inputs": inputs,
        "budget": budget,
        "objective": objective or draw(st.sampled_from(["gain", "efficiency"])),
        "min_gain": draw(st.one_of(st.just(0.0), st.just(0.0), st.floats(0, 20))),
    }
