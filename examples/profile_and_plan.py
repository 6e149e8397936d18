"""Profile a model's adapter candidates, give them gains, and plan within a budget.

    python examples/profile_and_plan.py
"""

from app.planning import problem_from_profile
from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.gains.estimate import with_gains
from profiler.gains.prior import prior_gains
from solver import solve


def main() -> None:
    # Data: the catalog's 2-layer BERT (random weights, nothing downloaded), LoRA at ranks 2 and 8,
    # BitFit and norm affines, measured at batch 4 x 32 tokens on the CPU.
    spec = ModelSpec(name="bert-tiny")
    options = ProfileOptions(methods=["lora", "bitfit", "norm_affine"], ranks=[2, 8], batch_size=4, seq_len=32,
                             device="cpu", repeats=3)
    profile = profile_model(spec, options)

    # Gains: the documented prior (no data needed); gains from your data come from `peft-planner gains`.
    profile = with_gains(profile, prior_gains(profile.candidates))

    # Model: a budget of 2 % of the model's parameters and 70 % of a full fine-tuning step's FLOPs.
    problem = problem_from_profile(profile, {"params": "2%", "flops": "70%"})

    # Solve exactly.
    plan = solve(problem)

    # Print what was measured and what was chosen.
    print(f"{len(profile.candidates)} candidates on {profile.model.name} "
          f"({profile.model.total_params:,} params, {profile.timings.num_units} measurement units)")
    print(f"status {plan.status}: {len(plan.selected)} chosen, {plan.params:,} params (p={plan.p:.3f}), "
          f"c={plan.c:.3f}, gain {plan.gain:.3f} points (prior)")
    for candidate_id in plan.selected:
        print(f"  {candidate_id}")


if __name__ == "__main__":
    main()
