"""End to end on tiny models: every candidate measured, analytic formulas met, isolated == whole-model."""

import json

import pytest
import torch

from app.cli import main
from app.planning import problem_from_profile
from profiler import Cancelled, ModelSpec, ProfileError, ProfileOptions, profile_model
from profiler.measure.flops import dispatch_counter, forward_flops
from profiler.methods import attach
from tests.tiny import TINY_BERT, TINY_GPT2, TINY_LLAMA, real_model

FAST = {"repeats": 1, "warmup": 1, "batch_size": 2, "seq_len": 12, "threads": 1}


@pytest.fixture(scope="module")
def bert_profile():
    return profile_model(ModelSpec(config=TINY_BERT), ProfileOptions(**FAST, ranks=[4, 8]))


def test_every_candidate_costs_something_and_fits_the_solver(bert_profile):
    p = bert_profile
    assert p.device == "cpu" and p.torch_version == torch.__version__ and p.model.num_layers == 2
    assert {c.method for c in p.candidates} == {"lora", "adapter", "bitfit", "norm_affine", "prompt_tuning"}
    for c in p.candidates:
        assert c.params > 0 and c.flops > 0 and c.train_step_ms > 0, c.id
    problem = problem_from_profile(p, {"params": "100%"}, gains={"methods": {c.method: 1.0 for c in p.candidates}})
    assert [(c.id, c.params, c.flops, c.memory_bytes) for c in problem.candidates] == [
        (c.id, c.params, c.flops, c.memory_bytes) for c in p.candidates]
    assert [(la.index, la.backward_flops) for la in problem.layers] == [(la.index, la.backward_flops) for la in p.layers]
    assert len({c.id for c in p.candidates}) == len(p.candidates)
    assert p.timings.num_units < len(p.candidates) / 3


def test_analytic_params_and_forward_flops(bert_profile):
    tokens = 2 * 12
    by_id = {c.id: c for c in bert_profile.candidates}
    lora = by_id["encoder.layer.1.intermediate.dense:lora:r8"]
    assert lora.params == 8 * (64 + 128) and lora.inference_flops == 2 * tokens * 8 * (64 + 128)
    assert lora.group == "encoder.layer.1.intermediate.dense:lora" and lora.layer == 1
    adapter = by_id["encoder.layer.0.output.dense:adapter:b16"]
    assert adapter.params == 2 * 64 * 16 + 16 + 64 and adapter.config["position"] == "after_mlp"
    assert adapter.inference_flops == 4 * tokens * 64 * 16 + tokens * 16 + tokens * 64
    bitfit = by_id["encoder.layer.0.attention.self.query:bitfit"]
    assert bitfit.params == 64 and bitfit.inference_flops == 0 and bitfit.latency_ms == 0
    assert bitfit.flops == tokens * 64  # the bias gradient: a sum over tokens
    norm = by_id["embeddings.LayerNorm:norm_affine"]
    assert norm.layer == 0 and norm.params == 2 * 64
    # d(gamma) = sum_t xhat*g (a multiply-add per element), d(beta) = sum_t g (an add per element)
    assert norm.flops == 3 * tokens * 64
    # under mean pooling the pooler never gets a gradient: it is not offered, and the profile says so
    assert not any(cid.startswith("pooler.") for cid in by_id) and "pooler.dense" in bert_profile.notes[0]


def test_isolated_measurements_agree_with_whole_model(bert_profile):
    model = real_model(TINY_BERT)
    ids = torch.arange(24).view(2, 12) % 500
    base = forward_flops(model, (), {"input_ids": ids}).total
    assert base == pytest.approx(bert_profile.model.forward_flops)
    sites = _sites(model, ids)
    sample = ["encoder.layer.0.attention.self.value:lora:r4", "encoder.layer.1.attention.output.dense:adapter:b64",
              "encoder.layer.1.output.LayerNorm:norm_affine", "embeddings.word_embeddings:prompt_tuning:m10"]
    kinds = {"lora": "linear", "adapter": "adapter", "norm_affine": "norm", "prompt_tuning": "embedding"}
    by_id = {c.id: c for c in bert_profile.candidates}
    for cid in sample:
        c = by_id[cid]
        setting = next(iter(c.config.values())) if c.config else None
        att = attach(model, sites[(c.site, kinds[c.method])], c.method, setting)
        whole = forward_flops(model, (), {"input_ids": ids}).total - base
        assert att.num_parameters() == c.params
        assert c.inference_flops == pytest.approx(whole, rel=0.01), cid
        att.detach()
    layer_sum = sum(layer.forward_flops for layer in bert_profile.layers)
    assert 0.8 * base < layer_sum < base


def _sites(model, ids):
    from profiler.measure.trace import record
    from profiler.sites import find_layers, find_sites

    return {(s.path, s.kind): s for s in find_sites(model, find_layers(model), record(model, (), {"input_ids": ids}))}


def test_layer_backward_matches_flop_counter_mode_of_the_real_layer(bert_profile):
    model = real_model(TINY_BERT)
    h = torch.randn(2, 12, 64, requires_grad=True)
    out = model.encoder.layer[0](h)[0]
    with dispatch_counter() as ref:
        out.backward(torch.ones_like(out))
    assert bert_profile.layers[0].backward_flops == pytest.approx(ref.get_total_flops(), rel=0.01)
    assert bert_profile.layers[0].memory_bytes > 0 and bert_profile.layers[0].forward_ms > 0


@pytest.mark.parametrize("config,lora_site,d_in,d_out", [
    (TINY_GPT2, "transformer.h.1.mlp.c_fc", 48, 192),  # decoders profile their ForCausalLM class
    (TINY_LLAMA, "model.layers.0.self_attn.k_proj", 64, 32),
])
def test_other_architectures(config, lora_site, d_in, d_out):
    p = profile_model(ModelSpec(config=config), ProfileOptions(**FAST, ranks=[4], methods=["lora", "norm_affine"]))
    assert p.model.task == "causal_lm" and p.model.architecture.split("[")[0].endswith(("LMHeadModel", "ForCausalLM"))
    head = {c.id: c for c in p.candidates}["lm_head:lora:r4"]
    assert head.layer is None  # after the last layer: no shared backward
    c = {c.id: c for c in p.candidates}[f"{lora_site}:lora:r4"]
    assert c.params == 4 * (d_in + d_out) and c.inference_flops == 2 * 24 * 4 * (d_in + d_out)
    assert all(x.flops > 0 and x.params > 0 for x in p.candidates)


def test_small_cnn_norm_affine_adds_an_affine_with_latency():
    p = profile_model(ModelSpec(name="small-cnn"), ProfileOptions(**FAST, ranks=[4]))
    c = {c.id: c for c in p.candidates}
    norm = c["blocks.1.norm:norm_affine"]
    assert norm.params == 2 * 64 and norm.inference_flops == 2 * 2 * 64 * 16 * 16
    assert c["blocks.1.conv:lora:r4"].params == 4 * (32 * 9 + 64)
    assert p.model.num_layers == 4 and p.seq_len == 32 * 32


def test_target_modules_restrict_sites():
    p = profile_model(ModelSpec(config=TINY_BERT),
                      ProfileOptions(**FAST, ranks=[4], methods=["lora"], target_modules=["query", r".*\.1\.output\.dense"]))
    assert sorted(c.site for c in p.candidates) == ["encoder.layer.0.attention.self.query",
                                                    "encoder.layer.1.attention.self.query", "encoder.layer.1.output.dense"]


@pytest.mark.parametrize("spec,options,message", [
    ({"name": "bert-huge"}, {}, "unknown model"),
    ({"config": {"model_type": "no-such-model"}}, {}, "bad config"),
    ({"config": TINY_BERT}, {"seq_len": 600}, "impossible shape"),
    ({"config": TINY_BERT}, {"methods": ["dora"]}, "unknown method"),
    ({"config": TINY_BERT}, {"target_modules": ["nothing"]}, "no sites"),
    ({"path": "/nonexistent"}, {}, "no config.json"),
])
def test_clear_errors(spec, options, message):
    with pytest.raises(ProfileError, match=message):
        profile_model(ModelSpec(**spec), ProfileOptions(**{**FAST, **options}))


def test_cancel_between_measurements():
    calls = []
    with pytest.raises(Cancelled):
        profile_model(ModelSpec(config=TINY_BERT), ProfileOptions(**FAST, methods=["bitfit"]),
                      progress=lambda d, t: calls.append(d), should_cancel=lambda: len(calls) > 1)


def test_local_directory_and_cli(tmp_path, capsys):
    real_model(TINY_BERT).config.save_pretrained(tmp_path / "m")
    (tmp_path / "c.json").write_text(json.dumps(TINY_BERT))
    out = tmp_path / "p.json"
    for model in (str(tmp_path / "m"), str(tmp_path / "c.json")):
        rc = main(["profile", "--model", model, "--methods", "lora,bitfit", "--ranks", "4", "--batch", "2",
                   "--seq-len", "8", "--repeats", "1", "--no-progress", "-o", str(out)])
        assert rc == 0
        profile = json.loads(out.read_text())
        assert profile["model"]["num_layers"] == 2 and all(c["flops"] > 0 for c in profile["candidates"])
    assert main(["profile", "--model", "bert-huge", "-o", str(out)]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_tasks_and_measurements_pickle_for_remote_runners():
    import pickle

    from profiler.measure.stages import assemble, measure, prepare

    prepared = prepare(ModelSpec(config=TINY_BERT), ProfileOptions(**FAST, methods=["lora", "bitfit"], ranks=[4]))
    results = [pickle.loads(pickle.dumps(measure(prepared, pickle.loads(pickle.dumps(t))))) for t in prepared.units]
    assert len(assemble(prepared, results).candidates) == len(prepared.candidates)


def test_timings_lost_in_noise_are_estimated_from_flops_not_zeroed():
    from profiler.measure.stages import _fill_noise

    rate = {"inference_flops": 2e-9, "flops": 3e-9}
    costs = {"latency_ms": -0.4, "inference_flops": 1e6, "train_step_ms": 0.0, "flops": 4e6}
    assert _fill_noise(costs, rate) == ["latency_ms", "train_step_ms"]
    assert costs["latency_ms"] == pytest.approx(1e6 * 2e-9) and costs["train_step_ms"] == pytest.approx(4e6 * 3e-9)
    bitfit_like = {"latency_ms": 0.0, "inference_flops": 0.0, "train_step_ms": 0.7, "flops": 10.0}
    assert _fill_noise(bitfit_like, rate) == [] and bitfit_like["latency_ms"] == 0.0
