"""Each method attaches with the analytic parameter count and detaches leaving the model bit-for-bit."""

from dataclasses import replace

import pytest
import torch
from torch.nn import functional as F

from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.measure.flops import forward_flops
from profiler.measure.isolated import measure_site
from profiler.measure.tensors import TensorSpec
from profiler.measure.trace import record
from profiler.measure.units import RunSettings, SiteUnit
from profiler.methods import attach, get_method, list_methods
from profiler.methods.base import freeze
from profiler.models.cnn import SmallCNN
from profiler.sites import Site, find_layers, find_sites
from tests.tiny import TINY_BERT, TINY_GPT2, real_model


def _sites(model, **inputs):
    trace = record(model, (), inputs)
    return {(s.path, s.kind): s for s in find_sites(model, find_layers(model), trace)}


def _snapshot(model):
    return ({k: v.clone() for k, v in model.state_dict().items()}, [p.requires_grad for p in model.parameters()],
            repr(model), sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()))


def _same(model, before, out_before, run):
    state, flags, text, hooks = before
    after = model.state_dict()
    assert state.keys() == after.keys()
    assert all(torch.equal(state[k], after[k]) for k in state)
    assert flags == [p.requires_grad for p in model.parameters()]
    assert repr(model) == text
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == hooks
    assert torch.equal(run(), out_before)


D, FF, T = 64, 128, 2 * 12


@pytest.mark.parametrize("path,kind,method,setting,expected", [
    ("encoder.layer.0.attention.self.query", "linear", "lora", 8, 8 * (D + D)),
    ("encoder.layer.1.intermediate.dense", "linear", "lora", 4, 4 * (D + FF)),
    ("encoder.layer.0.output.dense", "adapter", "adapter", 16, 2 * D * 16 + 16 + D),
    ("encoder.layer.0.intermediate.dense", "bias", "bitfit", None, FF),
    ("encoder.layer.1.output.LayerNorm", "norm", "norm_affine", None, 2 * D),
    ("embeddings.word_embeddings", "embedding", "prompt_tuning", 10, 10 * D),
    ("encoder.layer.0.attention.self.key", "linear", "ia3", None, D),  # scales the output: d_out
    ("encoder.layer.1.output.dense", "linear", "ia3", None, FF),  # MLP down-projection, scales the input: d_in
])
def test_attach_counts_and_detach_restores(bert, path, kind, method, setting, expected):
    ids = torch.arange(T).view(2, 12)
    sites = _sites(bert, input_ids=ids)
    before = _snapshot(bert)
    out_before = bert(input_ids=ids).last_hidden_state
    att = attach(bert, sites[(path, kind)], method, setting)
    assert att.num_parameters() == expected
    assert all(p.requires_grad for p in att.parameters())
    trainable = sum(p.numel() for p in bert.parameters() if p.requires_grad)
    assert trainable == expected
    out = bert(input_ids=ids).last_hidden_state
    if method == "prompt_tuning":
        assert out.shape[1] == 12 + setting
    out.float().sum().backward()
    assert all(p.grad is not None for p in att.parameters())
    for p in att.parameters():
        p.grad = None
    att.detach()
    _same(bert, before, out_before, lambda: bert(input_ids=ids).last_hidden_state)


def test_lora_on_gpt2_conv1d_and_norm_affine_adds_missing_instance_norm_affine():
    gpt2 = real_model(TINY_GPT2)
    ids = torch.arange(20).view(2, 10)
    sites = _sites(gpt2, input_ids=ids)
    att = attach(gpt2, sites[("h.0.attn.c_attn", "linear")], "lora", 4)
    assert att.num_parameters() == 4 * (48 + 3 * 48)
    att.detach()
    cnn = freeze(SmallCNN().eval())
    x = torch.randn(2, 3, 32, 32)
    sites = _sites(cnn, pixel_values=x)
    before, out = _snapshot(cnn), cnn(x)
    att = attach(cnn, sites[("blocks.1.norm", "norm")], "norm_affine")
    assert att.num_parameters() == 2 * 64 and att.created
    att.detach()
    att = attach(cnn, sites[("blocks.1.conv", "conv")], "lora", 4)
    assert att.num_parameters() == 4 * (32 * 9 + 64)
    att.detach()
    _same(cnn, before, out, lambda: cnn(x))


def test_registry_lists_every_method_with_info():
    names = [m.name for m in list_methods()]
    assert names == ["lora", "adapter", "bitfit", "norm_affine", "prompt_tuning", "ia3"]
    mergeable = {m.name: m.mergeable for m in list_methods()}
    assert mergeable["lora"] and mergeable["ia3"]
    ia3 = next(m for m in list_methods() if m.name == "ia3")
    assert ia3.setting is None and ia3.adds_latency  # an extra multiply until merged, like LoRA


@pytest.mark.parametrize("model_name,path,kind,inputs", [
    ("bert", "encoder.layer.0.attention.self.query", "linear", "ids"),
    ("gpt2", "h.0.attn.c_attn", "linear", "ids"),
    ("cnn", "blocks.1.conv", "conv", "pixels"),
])
def test_lora_merge_keeps_outputs_and_removes_the_extra_cost(model_name, path, kind, inputs):
    """Merged weights reproduce the unmerged LoRA output, with no added modules or hooks left."""
    model = {"bert": lambda: real_model(TINY_BERT), "gpt2": lambda: real_model(TINY_GPT2),
             "cnn": lambda: freeze(SmallCNN().eval())}[model_name]()
    x = torch.arange(20).view(2, 10) if inputs == "ids" else torch.randn(2, 3, 32, 32)
    run = (lambda: model(input_ids=x).last_hidden_state) if inputs == "ids" else (lambda: model(x))
    sites = _sites(model, input_ids=x) if inputs == "ids" else _sites(model, pixel_values=x)
    params_before = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        plain = run().clone()
    att = attach(model, sites[(path, kind)], "lora", 4)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in att.parameters():
            p.normal_(0, 0.05)
        adapted = run().clone()
        assert len(model.get_submodule(path)._forward_hooks) == 1
        att.merge()
        merged = run()
    assert not torch.allclose(adapted, plain, atol=1e-4), "the update must change the output"
    assert sum(p.numel() for p in model.parameters()) == params_before
    assert len(model.get_submodule(path)._forward_hooks) == 0
    torch.testing.assert_close(merged, adapted, rtol=1e-4, atol=1e-5)


def test_merge_refuses_methods_that_are_not_mergeable(bert):
    ids = torch.arange(24).view(2, 12)
    sites = _sites(bert, input_ids=ids)
    att = attach(bert, sites[("encoder.layer.0.output.dense", "adapter")], "adapter", 16)
    with pytest.raises(ValueError, match="not mergeable"):
        att.merge()
    att.detach()


@pytest.mark.parametrize("path,expected", [
    ("encoder.layer.3.output.dense", True), ("encoder.layer.3.attention.output.dense", False),
    ("encoder.layer.3.intermediate.dense", False), ("h.0.mlp.c_proj", True), ("h.0.attn.c_proj", False),
    ("model.layers.2.mlp.down_proj", True), ("model.layers.2.self_attn.k_proj", False), ("decoder.layers.0.fc2", True),
    ("encoder.block.0.layer.1.DenseReluDense.wo", True), ("fc2", True), ("xfc2", False), ("blocks.1.conv", False),
])
def test_ia3_scales_the_input_of_mlp_down_projections_only(path, expected):
    from profiler.methods.ia3 import scales_input

    assert scales_input(path) is expected


class DownConv(torch.nn.Module):
    """A conv whose name makes (IA)^3 scale its input channels."""

    def __init__(self):
        super().__init__()
        self.down_proj = torch.nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, pixel_values):
        return self.down_proj(pixel_values)


def _linear_reference(module, x, vector, side):
    """The site module's output with the vector applied by hand: (x·l)W^T + b, or (xW^T + b)·l."""
    if isinstance(module, torch.nn.Conv2d):
        view = vector.view(-1, 1, 1)
        return module._conv_forward(x * view, module.weight, module.bias) if side == "input" else module(x) * view
    weight = module.weight.t() if type(module).__name__ == "Conv1D" else module.weight  # Conv1D: (d_in, d_out)
    return F.linear(x * vector, weight, module.bias) if side == "input" else F.linear(x, weight, module.bias) * vector


@pytest.mark.parametrize("model_name,path,kind,side,size", [
    ("bert", "encoder.layer.0.attention.self.key", "linear", "output", D),
    ("bert", "encoder.layer.1.output.dense", "linear", "input", FF),
    ("gpt2", "h.0.attn.c_attn", "linear", "output", 3 * 48),
    ("gpt2", "h.1.mlp.c_proj", "linear", "input", 4 * 48),
    ("cnn", "stem", "conv", "output", 32),  # (a block conv feeds an InstanceNorm, which would undo the scale)
    ("down_conv", "down_proj", "conv", "input", 8),
])
def test_ia3_is_the_identity_at_init_and_merges_into_the_weights(model_name, path, kind, side, size):
    """Ones leave outputs bit-for-bit; a trained vector acts as l·(xW^T + b) or (x·l)W^T + b, and merges exactly."""
    model = {"bert": lambda: real_model(TINY_BERT), "gpt2": lambda: real_model(TINY_GPT2),
             "cnn": lambda: freeze(SmallCNN().eval()), "down_conv": lambda: freeze(DownConv().eval())}[model_name]()
    ids = model_name in ("bert", "gpt2")
    x = torch.arange(20).view(2, 10) if ids else torch.randn(2, 3 if model_name == "cnn" else 8, 32, 32)
    run = (lambda: model(input_ids=x).last_hidden_state) if ids else (lambda: model(x))
    sites = _sites(model, input_ids=x) if ids else _sites(model, pixel_values=x)
    module = model.get_submodule(path)
    seen = []
    module.register_forward_hook(lambda m, args, out: seen.append(args[0]), prepend=True)  # the site's own input
    params_before = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        plain = run().clone()
        att = attach(model, sites[(path, kind)], "ia3")
        (vector,) = att.parameters()
        assert vector.numel() == att.num_parameters() == size and torch.equal(vector, torch.ones(size))
        assert torch.equal(run(), plain)  # the identity at init
        torch.manual_seed(0)
        vector.uniform_(0.5, 1.5)
        seen.clear()
        adapted = run().clone()
        site_in = seen[0] if side == "output" else seen[0] / (vector.view(-1, 1, 1) if kind == "conv" else vector)
        att.detach()
        expected = _linear_reference(module, site_in, vector, side)
        att = attach(model, sites[(path, kind)], "ia3")
        att.parameters()[0].copy_(vector)
        torch.testing.assert_close(module(site_in), expected, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(adapted, plain, atol=1e-4), "the vector must change the output"
        att.merge()
        merged = run()
    assert sum(p.numel() for p in model.parameters()) == params_before
    assert not module._forward_pre_hooks and len(module._forward_hooks) == 1 and not hasattr(module, "peft_ia3")
    torch.testing.assert_close(merged, adapted, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("config,site,side,d", [
    (TINY_BERT, "encoder.layer.0.attention.self.value", "output", D),
    (TINY_BERT, "encoder.layer.1.output.dense", "input", FF),
    (TINY_GPT2, "transformer.h.1.attn.c_attn", "output", 3 * 48),
    (TINY_GPT2, "transformer.h.0.mlp.c_proj", "input", 4 * 48),
])
def test_ia3_profile_params_and_flops_are_analytic(config, site, side, d):
    """params d; forward one multiply per scaled element (T·d); backward the vector's gradient (2·T·d)."""
    options = ProfileOptions(repeats=1, warmup=1, batch_size=2, seq_len=12, threads=1, methods=["ia3"])
    profile = profile_model(ModelSpec(config=config), options)
    c = {c.id: c for c in profile.candidates}[f"{site}:ia3"]
    assert c.method == "ia3" and c.group is None and c.config == {"side": side}
    assert c.params == d and c.inference_flops == T * d and c.flops == 3 * T * d
    assert c.latency_ms > 0 and c.train_step_ms > 0
    # the isolated forward count agrees with the whole model's (the class the profile was made of)
    model = real_model(config, task="auto")
    ids = torch.arange(T).view(2, 12)
    base = forward_flops(model, (), {"input_ids": ids}).total
    att = attach(model, _sites(model, input_ids=ids)[(site, "linear")], "ia3")
    assert forward_flops(model, (), {"input_ids": ids}).total - base == c.inference_flops
    att.detach()


def test_ia3_input_side_after_the_last_layer_pays_the_input_gradient():
    """No layer's backward carries the gradient to an input-scaled site outside the layers: the candidate does."""
    site = Site("fc2", "linear", None, "Linear", TensorSpec((2, 5, 24), "float32"), TensorSpec((2, 5, 16), "float32"),
                {"d_in": 24, "d_out": 16})
    host, spec = get_method("ia3").host(site, torch.nn.Linear(24, 16))
    run = RunSettings("cpu", "float32", repeats=1, warmup=0, seed=0, threads=1)
    cost = measure_site(SiteUnit("k", "ia3", [None], host, site, spec, run)).costs[None]
    tokens = 10
    assert cost.inference_flops == tokens * 24
    assert cost.backward_flops == 2 * tokens * 24 * 16 + 2 * tokens * 24  # dL/dx through W, then dL/dl
    inside = replace(site, layer=0)
    host, spec = get_method("ia3").host(inside, torch.nn.Linear(24, 16))
    cost = measure_site(SiteUnit("k", "ia3", [None], host, inside, spec, run)).costs[None]
    assert cost.inference_flops == tokens * 24 and cost.backward_flops == 2 * tokens * 24
