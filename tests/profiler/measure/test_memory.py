"""Training memory against independent references: saved-tensor hooks around a real forward and backward of
the whole model with the plan applied, the tensors AdamW really keeps, and hand counts of large shapes."""

from __future__ import annotations

import math

import pytest
import torch

from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.accounting import plan_memory
from profiler.measure.footprint import full_finetuning_memory
from profiler.methods.apply import apply_plan
from tests.tiny import TINY_BERT, TINY_LLAMA, real_model

BATCH, SEQ = 2, 16


def body_activations(model: torch.nn.Module, ids: torch.Tensor) -> int:
    """Bytes of the distinct non-parameter storages autograd saves for one backward of the model's body
    (embeddings and layers, no head or loss), counted here on purpose without the profiler's accounting."""
    body = getattr(model, "model", model)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            storages[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        hidden = body(input_ids=ids).last_hidden_state
        hidden.backward(torch.ones_like(hidden))
    return sum(storages.values())


def optimizer_state_bytes(model: torch.nn.Module, trainable: list[torch.nn.Parameter], base: set[int]) -> int:
    """Bytes AdamW really keeps after one step: new parameters, every gradient, exp_avg and exp_avg_sq."""
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    for p in trainable:
        p.grad = torch.ones_like(p)
    optimizer.step()
    total = 0
    for p in trainable:
        size = p.numel() * p.element_size()
        state = optimizer.state[p]
        total += (0 if id(p) in base else size) + p.grad.numel() * p.grad.element_size()
        total += sum(state[k].numel() * state[k].element_size() for k in ("exp_avg", "exp_avg_sq"))
    return total


def linear_sites(profile, names: tuple[str, ...] | None, rank_of) -> list[str]:
    """LoRA candidate ids on every layer's linear sites (whose last path component is in `names`, if given)."""
    out = []
    for c in profile.candidates:
        if c.method != "lora" or c.layer is None or c.site.endswith("lm_head"):
            continue
        if names is not None and c.site.rsplit(".", 1)[-1] not in names:
            continue
        if c.config["rank"] == rank_of(c):
            out.append(c.id)
    return out


def plans(profile, q: str, v: str) -> dict[str, list[str]]:
    """Three plan shapes: LoRA on q and v only; LoRA on every linear; mixed ranks and every norm's affine."""
    norms = [c.id for c in profile.candidates if c.method == "norm_affine" and c.layer is not None]
    return {
        "q,v": linear_sites(profile, (q, v), lambda c: 4),
        "all linear": linear_sites(profile, None, lambda c: 4),
        "mixed ranks and norms": linear_sites(profile, None, lambda c: 8 if c.layer % 2 else 2) + norms,
    }


@pytest.mark.parametrize("config,q,v", [(TINY_LLAMA, "q_proj", "v_proj"), (TINY_BERT, "query", "value")],
                         ids=["llama-gqa", "bert"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_activations_and_state_against_the_real_backward(config, q, v, dtype):
    options = ProfileOptions(methods=["lora", "norm_affine"], ranks=[2, 4, 8], batch_size=BATCH, seq_len=SEQ,
                             dtype=dtype, repeats=1, warmup=0, threads=1)
    profile = profile_model(ModelSpec(config=config), options)
    assert profile.dtype == dtype and profile.memory.adapter_dtype == "float32"
    ids = torch.arange(BATCH * SEQ).remainder(config["vocab_size"]).view(BATCH, SEQ)
    for name, plan in plans(profile, q, v).items():
        model = real_model(config, task="auto").to(getattr(torch, dtype))
        base = {id(p) for p in model.parameters()}
        applied = apply_plan(model, plan, {"input_ids": ids})
        predicted = plan_memory(profile, plan)
        measured = body_activations(model, ids)
        assert predicted.activations == pytest.approx(measured, rel=0.10), (name, predicted.activations, measured)
        state = optimizer_state_bytes(model, applied.parameters(), base)
        assert predicted.trainable_state - profile.memory.fixed.trainable_state == state, name


def test_q_k_v_share_one_saved_input():
    options = ProfileOptions(methods=["lora"], ranks=[4], batch_size=BATCH, seq_len=SEQ, repeats=1, warmup=0, threads=1)
    profile = profile_model(ModelSpec(config=TINY_LLAMA), options)
    by_site = {c.site.rsplit(".", 1)[-1]: c for c in profile.candidates if c.layer == 0}
    keys = {by_site[name].saved_input for name in ("q_proj", "k_proj", "v_proj")}
    assert len(keys) == 1 and None not in keys
    one = plan_memory(profile, [by_site["q_proj"].id])
    three = plan_memory(profile, [by_site[n].id for n in ("q_proj", "k_proj", "v_proj")])
    shared = {i.key: i.bytes for i in profile.saved_inputs}[keys.pop()]
    assert shared == BATCH * SEQ * TINY_LLAMA["hidden_size"] * 4  # the normed hidden states, float32
    extra = sum(by_site[n].activation_bytes for n in ("k_proj", "v_proj"))
    assert three.activations - one.activations == extra  # the input is not paid again


LLAMA_3_8B = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
              "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256, "torch_dtype": "bfloat16",
              "max_position_embeddings": 8192, "rope_theta": 500000.0, "tie_word_embeddings": False}
LLAMA_3_2_3B = {**LLAMA_3_8B, "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28,
                "num_attention_heads": 24, "tie_word_embeddings": True}


@pytest.mark.slow
def test_llama_3_8b_lora_q_v_in_bf16_against_a_hand_count():
    h, kv, ff, layers, vocab, t = 4096, 1024, 14336, 32, 128256, 512
    options = ProfileOptions(methods=["lora"], ranks=[16], target_modules=["q_proj", "v_proj"], batch_size=1,
                             seq_len=t, timing="none")
    profile = profile_model(ModelSpec(config=LLAMA_3_8B), options)
    assert profile.dtype == "bfloat16" and profile.model.total_params == 8_030_261_248  # lm_head included
    plan = [c.id for c in profile.candidates]
    parts = plan_memory(profile, plan)
    assert parts.weights == 8_030_261_248 * 2  # bf16
    lora = layers * (16 * (h + h) + 16 * (h + kv))
    assert parts.trainable_state == lora * 16  # float32 weight, gradient, two AdamW moments
    assert parts.logits == t * vocab * (2 + 4)  # bf16 logits and the loss's float32 copy
    assert parts.overhead == 0  # measured on no GPU
    # Per layer, what autograd keeps of a frozen bf16 Llama layer with LoRA on q and v, by hand: each RMSNorm its
    # float32 input and 1/rms (a frozen weight needs nothing else); SDPA (fused) q, k and v at their own head
    # counts (grouped-query: k and v have 8 heads), its output and a float32 log-sum-exp per head and token; the
    # gated MLP gate, SiLU(gate) and up; LoRA on q and on v each a float32 copy of the normed input and x·A
    # (r = 16, float32). Frozen linears keep nothing: the input gradient needs only the weight.
    heads = 32
    norms = 2 * (t * h * 4 + t * 4)
    attention = t * h * 2 + 2 * t * kv * 2 + t * h * 2 + heads * t * 4
    mlp = 3 * t * ff * 2
    adapters = 2 * (t * h * 4 + t * 16 * 4)
    rope = 2 * t * (h // heads) * 2  # cos and sin, shared by every layer
    assert parts.activations == pytest.approx(layers * (norms + attention + mlp + adapters) + rope, rel=0.01)
    total = sum(parts.model_dump().values())
    assert total == pytest.approx(20.5e9, rel=0.10)  # the hand estimate of the whole run: about 20.5 GB


@pytest.mark.slow
def test_full_fine_tuning_of_llama_3_2_3b_matches_the_static_figure():
    options = ProfileOptions(methods=["norm_affine"], batch_size=4, seq_len=210, timing="none")
    profile = profile_model(ModelSpec(config=LLAMA_3_2_3B), options)
    full = full_finetuning_memory(profile)
    assert profile.model.total_params == 3_212_749_824
    static = full.weights + full.trainable_state  # bf16 weights + gradients + two AdamW moments
    assert static / 1e9 == pytest.approx(25.70, abs=0.01)  # peft's method comparison records 25.70 GB
    assert math.isfinite(full.activations) and full.activations > 0
