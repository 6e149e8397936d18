"""make_trainable: peft for what it expresses, the planner's methods for the rest; exactly the plan trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from profiler.errors import ProfileError
from profiler.methods.trainable import load_trainable, make_trainable, save_trainable
from tests.tiny import DEEP_BERT, real_model

pytest.importorskip("peft")
D, FF = DEEP_BERT["hidden_size"], DEEP_BERT["intermediate_size"]
PLANS = {
    "lora, norms, bitfit, adapter": ([
        "encoder.layer.1.attention.self.query:lora:r4", "encoder.layer.11.attention.self.query:lora:r2",
        "encoder.layer.3.intermediate.dense:lora:r8", "encoder.layer.2.output.LayerNorm:norm_affine",
        "encoder.layer.4.attention.self.value:bitfit", "encoder.layer.5.output.dense:adapter:b8"],
        4 * (D + D) + 2 * (D + D) + 8 * (D + FF) + 2 * D + D + (2 * D * 8 + 8 + D)),
    "lora and ia3": (["encoder.layer.0.attention.self.key:lora:r2", "encoder.layer.1.output.dense:ia3"],
                     2 * (D + D) + FF),
    "lora and a prompt": (["encoder.layer.0.attention.self.key:lora:r2", "embeddings.word_embeddings:prompt_tuning:m4"],
                          2 * (D + D) + 4 * D),
}


@pytest.mark.parametrize("name", PLANS)
def test_exactly_the_plan_trains(name: str) -> None:
    ids, params = PLANS[name]
    trainable = make_trainable(real_model(DEEP_BERT), ids)
    assert trainable.num_parameters() == params
    assert set(trainable.export.exported) | set(trainable.attachments) == set(ids)
    out = trainable.model(input_ids=torch.arange(12).view(2, 6)).last_hidden_state
    out.sum().backward()
    assert all(p.grad is not None for p in trainable.parameters())


def test_saved_weights_load_into_the_same_plan_and_nowhere_else(tmp_path: Path) -> None:
    ids, _ = PLANS["lora, norms, bitfit, adapter"]
    first = make_trainable(real_model(DEEP_BERT), ids)
    with torch.no_grad():
        for p in first.parameters():
            p.add_(1.0)
    names = save_trainable(first.model, tmp_path / "plan.safetensors")
    second = make_trainable(real_model(DEEP_BERT), ids)
    load_trainable(second.model, tmp_path / "plan.safetensors")
    trained = dict(second.model.named_parameters())
    for name, p in first.model.named_parameters():
        if name in names:
            assert torch.equal(trained[name], p)
    other = make_trainable(real_model(DEEP_BERT), PLANS["lora and ia3"][0])
    with pytest.raises(ProfileError, match="make the same plan trainable first"):
        load_trainable(other.model, tmp_path / "plan.safetensors")
