"""Each method attaches with the analytic parameter count and detaches leaving the model bit-for-bit."""

import pytest
import torch

from profiler.methods import attach, list_methods
from profiler.methods.base import freeze
from profiler.models.cnn import SmallCNN
from profiler.sites import find_sites
from profiler.layers import find_layers
from profiler.trace import record
from tests.profiler.conftest import TINY_BERT, TINY_GPT2, real_model


def _sites(model, **inputs):
    trace = record(model, (), inputs)
    return {(s.path, s.kind): s for s in find_sites(model, find_layers(model), trace)}


def _snapshot(model):
    return ({k: v.clone() for k, v in model.state_dict().items()}, [p.requires_grad for p in model.parameters()],
            repr(model), len(model._forward_hooks) + len(model._forward_pre_hooks))


def _same(model, before, out_before, run):
    state, flags, text, hooks = before
    after = model.state_dict()
    assert state.keys() == after.keys()
    assert all(torch.equal(state[k], after[k]) for k in state)
    assert flags == [p.requires_grad for p in model.parameters()]
    assert repr(model) == text
    assert torch.equal(run(), out_before)


D, FF, T = 64, 128, 2 * 12


@pytest.mark.parametrize("path,kind,method,setting,expected", [
    ("encoder.layer.0.attention.self.query", "linear", "lora", 8, 8 * (D + D)),
    ("encoder.layer.1.intermediate.dense", "linear", "lora", 4, 4 * (D + FF)),
    ("encoder.layer.0.output.dense", "adapter", "adapter", 16, 2 * D * 16 + 16 + D),
    ("encoder.layer.0.intermediate.dense", "bias", "bitfit", None, FF),
    ("encoder.layer.1.output.LayerNorm", "norm", "norm_affine", None, 2 * D),
    ("embeddings.word_embeddings", "embedding", "prompt_tuning", 10, 10 * D),
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
    assert names == ["lora", "adapter", "bitfit", "norm_affine", "prompt_tuning"]
    assert {m.name: m.mergeable for m in list_methods()}["lora"]


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
