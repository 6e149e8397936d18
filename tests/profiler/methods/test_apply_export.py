"""apply_plan trains exactly the plan's parameters; the peft export loads and trains as many."""

from __future__ import annotations

import copy

import pytest
import torch

from profiler.errors import ProfileError
from profiler.methods.apply import apply_plan
from profiler.methods.export import export_plan, save_export

H, I = 16, 24  # DEEP_BERT hidden and intermediate sizes


def lora(layer: int, module: str, rank: int) -> str:
    return f"encoder.layer.{layer}.{module}:lora:r{rank}"


PLAN = [lora(1, "attention.self.query", 4), lora(11, "attention.self.query", 2), lora(11, "attention.self.value", 2),
        lora(3, "intermediate.dense", 8), "encoder.layer.5.output.LayerNorm:norm_affine",
        "embeddings.LayerNorm:norm_affine"]
# Analytic counts: LoRA r·(d_in + d_out); a LayerNorm's weight and bias.
PLAN_PARAMS = 4 * (H + H) + 2 * (H + H) * 2 + 8 * (H + I) + 2 * H + 2 * H


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_apply_plan_trains_exactly_the_plan(deep_bert: torch.nn.Module) -> None:
    before = {k: v.clone() for k, v in deep_bert.state_dict().items()}
    applied = apply_plan(deep_bert, PLAN)
    assert applied.num_parameters() == PLAN_PARAMS == trainable(deep_bert)
    assert set(applied.by_method()) == {"lora", "norm_affine"}
    applied.detach()
    assert trainable(deep_bert) == 0
    after = deep_bert.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def test_apply_plan_rejects_two_settings_of_one_site_and_unknown_sites(deep_bert: torch.nn.Module) -> None:
    with pytest.raises(ProfileError, match="both"):
        apply_plan(deep_bert, [lora(0, "attention.self.query", 4), lora(0, "attention.self.query", 8)])
    with pytest.raises(ProfileError, match="no lora site"):
        apply_plan(deep_bert, ["encoder.layer.99.attention.self.query:lora:r4"])
    assert trainable(deep_bert) == 0


def peft_trainable(model: torch.nn.Module, config: dict) -> tuple[int, torch.nn.Module]:
    from peft import get_peft_model

    from profiler.methods.export import peft_config

    peft_model = get_peft_model(copy.deepcopy(model), peft_config(config))
    return trainable(peft_model), peft_model


def test_exported_lora_config_loads_in_peft_with_the_plans_count(deep_bert: torch.nn.Module, tmp_path) -> None:
    pytest.importorskip("peft")
    export = export_plan(PLAN)
    assert export.complete and len(export.configs) == 1
    config = export.configs[0]
    assert config["r"] == 2 and config["rank_pattern"] == {r"encoder\.layer\.1\.attention\.self\.query": 4,
                                                           r"encoder\.layer\.3\.intermediate\.dense": 8}
    count, peft_model = peft_trainable(deep_bert, config)
    assert count == PLAN_PARAMS
    # layer 1's rank-4 pattern must not catch layer 11 (peft matches patterns at the end of names)
    ranks = {n: m.r["default"] for n, m in peft_model.named_modules() if hasattr(m, "r") and isinstance(m.r, dict)}
    assert ranks["base_model.model.encoder.layer.11.attention.self.query"] == 2
    assert ranks["base_model.model.encoder.layer.1.attention.self.query"] == 4
    from peft import PeftConfig

    (folder,) = save_export(export, tmp_path)
    assert PeftConfig.from_pretrained(str(folder)).rank_pattern == config["rank_pattern"]


def test_norm_only_plan_exports_ln_tuning(deep_bert: torch.nn.Module) -> None:
    pytest.importorskip("peft")
    plan = ["encoder.layer.5.output.LayerNorm:norm_affine", "encoder.layer.11.attention.output.LayerNorm:norm_affine"]
    export = export_plan(plan)
    assert export.configs[0]["peft_type"] == "LN_TUNING"
    assert peft_trainable(deep_bert, export.configs[0])[0] == apply_plan(deep_bert, plan).num_parameters() == 4 * H


def test_what_peft_cannot_express_is_listed() -> None:
    plan = [lora(0, "attention.self.query", 4), "encoder.layer.0.output.dense:adapter:b8",
            "encoder.layer.0.output.dense:bitfit", "embeddings.word_embeddings:prompt_tuning:m10"]
    export = export_plan(plan)
    assert export.exported == [plan[0]] and not export.complete
    reasons = {u.id: u.reason for u in export.unsupported}
    assert "no peft config" in reasons[plan[1]] and "per module" in reasons[plan[2]]
    assert "cannot combine" in reasons[plan[3]]


def test_prompt_only_plan_exports_prompt_tuning(deep_bert: torch.nn.Module) -> None:
    pytest.importorskip("peft")
    plan = ["embeddings.word_embeddings:prompt_tuning:m10"]
    export = export_plan(plan, token_dim=H)
    assert export.configs == [{"peft_type": "PROMPT_TUNING", "task_type": "FEATURE_EXTRACTION",
                               "num_virtual_tokens": 10, "token_dim": H, "num_transformer_submodules": 1}]
    assert peft_trainable(deep_bert, export.configs[0])[0] == apply_plan(deep_bert, plan).num_parameters() == 10 * H
    assert not export_plan(plan).complete  # without the embedding width it cannot be written


# (IA)^3: layer 1's MLP down-projection scales its input (d_in = I); attention projections scale their output.
IA3_PLAN = ["encoder.layer.1.output.dense:ia3", "encoder.layer.11.attention.output.dense:ia3",
            "encoder.layer.11.attention.self.key:ia3", "encoder.layer.11.attention.self.value:ia3",
            "encoder.layer.5.output.LayerNorm:norm_affine"]
IA3_PARAMS = I + 3 * H + 2 * H


def test_apply_plan_with_ia3_trains_exactly_the_plan(deep_bert: torch.nn.Module) -> None:
    applied = apply_plan(deep_bert, IA3_PLAN)
    assert applied.num_parameters() == IA3_PARAMS == trainable(deep_bert)
    assert set(applied.by_method()) == {"ia3", "norm_affine"}
    applied.detach()
    assert trainable(deep_bert) == 0


@pytest.mark.parametrize("config_name", ["bert", "gpt2"])
def test_exported_ia3_config_loads_in_peft_and_computes_what_apply_plan_does(config_name: str, deep_bert) -> None:
    """peft builds the same vectors (count, sides) and, given the same values, the same outputs."""
    pytest.importorskip("peft")
    from tests.tiny import TINY_GPT2, real_model

    if config_name == "bert":
        model, plan, params = deep_bert, IA3_PLAN, IA3_PARAMS
        feedforward = {"encoder.layer.1.output.dense"}
    else:  # transformers Conv1D: c_attn scales its 3·48 outputs, mlp.c_proj its 4·48 inputs
        model = real_model(TINY_GPT2)
        plan, params = ["h.0.attn.c_attn:ia3", "h.1.attn.c_proj:ia3", "h.1.mlp.c_proj:ia3", "ln_f:norm_affine"], 144 + 48 + 192 + 96
        feedforward = {"h.1.mlp.c_proj"}
    export = export_plan(plan)
    assert export.complete and export.exported == plan and len(export.configs) == 1
    config = export.configs[0]
    assert config["peft_type"] == "IA3" and config["target_modules"] == sorted(cid.split(":")[0] for cid in plan[:-1])
    assert config["modules_to_save"] == [plan[-1].split(":")[0]]
    count, peft_model = peft_trainable(model, config)
    assert count == params
    layers = {n.removeprefix("base_model.model."): m for n, m in peft_model.named_modules() if hasattr(m, "ia3_l")}
    assert set(layers) == set(config["target_modules"])  # e.g. layer 1's module does not catch layer 11's
    assert {n for n, m in layers.items() if m.is_feedforward} == feedforward
    applied = apply_plan(model, plan)
    assert applied.num_parameters() == params
    torch.manual_seed(0)
    with torch.no_grad():
        for n, layer in layers.items():
            values = torch.rand(layer.ia3_l["default"].numel()) + 0.5
            layer.ia3_l["default"].copy_(values.view_as(layer.ia3_l["default"]))
            applied.attachments[f"{n}:ia3"].parameters()[0].copy_(values)
        ids = torch.arange(20).view(2, 10)
        ours = model(input_ids=ids).last_hidden_state
        theirs = peft_model(input_ids=ids).last_hidden_state
    applied.detach()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_ia3_without_feedforward_sites_and_mixed_with_lora() -> None:
    pytest.importorskip("peft")
    export = export_plan(["encoder.layer.0.attention.self.value:ia3"])
    assert export.configs[0]["feedforward_modules"] == [] and export.complete
    mixed = [lora(0, "attention.self.query", 4), "encoder.layer.1.output.dense:ia3", "embeddings.LayerNorm:norm_affine"]
    export = export_plan(mixed)
    assert [c["peft_type"] for c in export.configs] == ["LORA"] and export.exported == [mixed[0], mixed[2]]
    (item,) = export.unsupported
    assert item.id == mixed[1] and "cannot combine (IA)^3 with LoRA" in item.reason
    assert not export.complete


def test_ia3_export_saves_and_reloads(tmp_path) -> None:
    pytest.importorskip("peft")
    from peft import PeftConfig

    export = export_plan(IA3_PLAN)
    (folder,) = save_export(export, tmp_path)
    loaded = PeftConfig.from_pretrained(str(folder))
    assert loaded.feedforward_modules == export.configs[0]["feedforward_modules"]
    assert loaded.target_modules == set(export.configs[0]["target_modules"])


# One candidate of each method on DEEP_BERT, for the families' check.
ONE_OF = {"lora": lora(0, "attention.self.query", 4), "ia3": "encoder.layer.1.output.dense:ia3",
          "norm_affine": "embeddings.LayerNorm:norm_affine", "prompt_tuning": "embeddings.word_embeddings:prompt_tuning:m10",
          "bitfit": "encoder.layer.0.output.dense:bitfit", "adapter": "encoder.layer.0.output.dense:adapter:b8"}


def test_families_are_exactly_what_the_export_writes_whole() -> None:
    """FAMILIES (what exportable planning keeps to) agrees with export_plan: a selection of one family's methods
    is written whole; two methods that share no family are not, and a method in no family never is."""
    from itertools import combinations

    from profiler.methods.export import FAMILIES

    assert set(ONE_OF) == {m for f in FAMILIES for m in f.methods} | {"bitfit", "adapter"}
    for family in FAMILIES:
        assert export_plan([ONE_OF[m] for m in sorted(family.methods)], token_dim=H).complete, family
    for a, b in combinations(sorted(ONE_OF), 2):
        together = any({a, b} <= f.methods for f in FAMILIES)
        assert export_plan([ONE_OF[a], ONE_OF[b]], token_dim=H).complete == together, (a, b)
    for method in ("bitfit", "adapter"):
        assert not export_plan([ONE_OF[method]], token_dim=H).complete
