"""Solve a small planning problem exactly and print the plan (the shape of an OR-Tools sample).

    python examples/solve_problem.py
"""

from solver import Problem, solve


def main() -> None:
    # Data: four candidates on a two-layer model. The two LoRA ranks of one module share a group
    # (at most one is chosen); each layer's backward pass is paid once when anything at or below
    # it is trained. Costs are parameters and training FLOPs per step.
    data = {
        "candidates": [
            {"id": "layers.0.q_proj:lora:r4", "method": "lora", "group": "layers.0.q_proj:lora", "layer": 0,
             "gain": 1.0, "params": 4096, "flops": 2.0e9},
            {"id": "layers.0.q_proj:lora:r8", "method": "lora", "group": "layers.0.q_proj:lora", "layer": 0,
             "gain": 1.4, "params": 8192, "flops": 4.0e9},
            {"id": "layers.1.v_proj:lora:r8", "method": "lora", "group": "layers.1.v_proj:lora", "layer": 1,
             "gain": 1.2, "params": 8192, "flops": 4.0e9},
            {"id": "layers.1.norm:norm_affine", "method": "norm_affine", "layer": 1,
             "gain": 0.3, "params": 1024, "flops": 1.0e8},
        ],
        "layers": [{"index": 0, "backward_flops": 3.0e10}, {"index": 1, "backward_flops": 3.0e10}],
        "budget": {"params": 14000, "flops": 7.0e10},
        "objective": "gain",
    }

    # Model: validate the problem (unique ids, positive costs, known layers, no unknown fields).
    problem = Problem.model_validate(data)

    # Solve: exact; the status is "optimal" once the optimum is proven.
    plan = solve(problem)

    # Print the plan and its totals.
    print(f"status {plan.status}, gain {plan.gain:g}, params {plan.params:,} (p={plan.p:.3f}), "
          f"flops {plan.flops:.3g} (c={plan.c:.3f})")
    for candidate_id in plan.selected:
        print(f"  {candidate_id}")


if __name__ == "__main__":
    main()
