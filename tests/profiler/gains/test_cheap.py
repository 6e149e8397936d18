"""The cheap gain sources against independent references: numpy SVD of captured inputs, autograd, numpy.linalg.cond,
a constructed L1-vs-L2 case; the shared scaling, the registry and the recorded cost."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from app.planning import problem_from_profile
from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.candidates import parse_id
from profiler.gains.activation import activation_scores
from profiler.gains.calibrate import BundleResult
from profiler.gains.cheap import PROBE_VALIDATION, SignalInput, fit_head
from profiler.gains.condition import condition_number, condition_scores
from profiler.gains.cost import Work, gain_cost
from profiler.gains.importance import importance_scores
from profiler.gains.l1 import l1_scores
from profiler.gains.method_values import MIXTURE, candidate_gains, method_values, probe_plan
from profiler.gains.proxy import draw, gradient_scores
from profiler.gains.registry import SOURCES, fill_gains
from profiler.training.finetune import TrainConfig
from profiler.training.task import Task
from solver import solve
from tests.tiny import TINY_BERT

Q = "encoder.layer.1.attention.self.query"
LN = "encoder.layer.0.output.LayerNorm"
CONFIG = TrainConfig(steps=5, batch_size=8)


def signal_input(task: Task, ids: list[str], fitted: bool = True) -> SignalInput:
    model = task.model(0)
    batches = draw(task.train, 2, 8, 0)
    if fitted:
        fit_head(model, batches, CONFIG)
    return SignalInput(model.encoder, model, [parse_id(c) for c in ids], batches, CONFIG)


def test_activation_is_numpy_svd_of_the_captured_real_token_inputs(tiny_task: Task) -> None:
    inp = signal_input(tiny_task, [f"{Q}:lora:r1", f"{Q}:lora:r4", f"{LN}:norm_affine"], fitted=False)
    captured: list[torch.Tensor] = []
    handle = inp.encoder.get_submodule(Q).register_forward_hook(lambda m, a, o: captured.append(a[0].detach()))
    rows = []
    with torch.no_grad():
        for batch, _ in inp.batches:
            inp.model.features(batch)
            rows.append(captured.pop()[batch["attention_mask"].bool()].double().numpy())
    handle.remove()
    x = np.concatenate(rows)
    s = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
    result = activation_scores(inp)
    assert result.scores[f"{Q}:lora:r1"] == pytest.approx(s[0] / s.sum(), rel=1e-6)
    assert result.scores[f"{Q}:lora:r4"] == pytest.approx(s[:4].sum() / s.sum(), rel=1e-6)
    assert 0 < result.scores[f"{LN}:norm_affine"] < 1  # rank 1 for a vector method
    assert result.work == Work(forward=16, backward=0)


def test_gradient_importance_is_mean_abs_w_times_g_by_autograd(tiny_task: Task) -> None:
    ids = [f"{Q}:lora:r4", f"{Q}:bitfit", f"{LN}:norm_affine"]
    inp = signal_input(tiny_task, ids)
    result = importance_scores(inp)
    assert all(not p.requires_grad for p in inp.model.parameters())
    model = inp.model
    model.requires_grad_(True)
    loss = sum(torch.nn.functional.cross_entropy(model(b), y) for b, y in inp.batches) / len(inp.batches)
    q, ln = model.encoder.get_submodule(Q), model.encoder.get_submodule(LN)
    gw, gb, glw, glb = torch.autograd.grad(loss, [q.weight, q.bias, ln.weight, ln.bias])
    model.requires_grad_(False)
    wg = (q.weight * gw).abs().mean().item()
    assert result.scores[ids[0]] == pytest.approx(wg * 2, rel=1e-5)  # x sqrt(rank 4)
    assert result.details[ids[0]]["relative_gradient_norm"] == pytest.approx((gw.norm() / q.weight.norm()).item(),
                                                                             rel=1e-5)
    assert result.scores[ids[1]] == pytest.approx((q.bias * gb).abs().mean().item(), rel=1e-5)
    both = torch.cat([(ln.weight * glw).abs(), (ln.bias * glb).abs()]).mean().item()
    assert result.scores[ids[2]] == pytest.approx(both, rel=1e-5)
    assert result.work == Work(forward=16, backward=16)


def test_weight_condition_is_numpy_cond(bert: nn.Module) -> None:
    w = bert.get_submodule(Q).weight
    assert condition_number(w) == pytest.approx(np.linalg.cond(w.double().numpy()), rel=1e-8)
    gamma = torch.tensor([0.5, -2.0, 1.0])
    assert condition_number(gamma) == pytest.approx(np.linalg.cond(np.diag(gamma.numpy())))
    assert condition_number(torch.zeros(3, 3)) == float("inf")
    refs = [parse_id(f"{Q}:lora:r4"), parse_id(f"{LN}:norm_affine")]
    result = condition_scores(SignalInput(bert, None, refs, [], CONFIG))
    kappa = np.linalg.cond(w.double().numpy())
    assert result.scores[refs[0].id] == pytest.approx(2 / (1 + np.log10(kappa)))
    assert result.details[refs[0].id]["condition_number"] == pytest.approx(kappa)
    assert result.work == Work()


def test_l1_scores_the_first_adam_step_and_ranks_unlike_the_squared_l2(tiny_task: Task) -> None:
    ids = [f"{Q}:lora:r1", f"{Q}:lora:r4", f"{Q}:bitfit", f"{LN}:norm_affine"]
    inp = signal_input(tiny_task, ids)
    result = l1_scores(inp)
    assert result.work == Work(forward=16, backward=16)  # one pass: the largest rank and the vectors together
    # the bias: AdamW's first step moves every entry by lr, so the first-order decrease is lr * sum |g|
    model, bias = inp.model, inp.encoder.get_submodule(Q).bias
    bias.requires_grad_(True)
    loss = sum(torch.nn.functional.cross_entropy(model(b), y) for b, y in inp.batches) / len(inp.batches)
    (g,) = torch.autograd.grad(loss, [bias])
    bias.requires_grad_(False)
    lr = CONFIG.lr_of("bitfit")
    assert result.scores[f"{Q}:bitfit"] == pytest.approx(lr * g.abs().sum().item(), rel=1e-5)
    with torch.no_grad():  # one real AdamW step of the bias: the loss falls by about that much
        before = float(loss)
        bias -= lr * g.sign()
        after = sum(float(torch.nn.functional.cross_entropy(model(b), y)) for b, y in inp.batches) / len(inp.batches)
        bias += lr * g.sign()
    assert before - after == pytest.approx(result.scores[f"{Q}:bitfit"], rel=0.05)
    assert result.scores[f"{Q}:lora:r4"] > result.scores[f"{Q}:lora:r1"] > 0


def test_l1_and_squared_l2_rank_real_candidates_differently(tiny_task: Task) -> None:
    ids = [f"encoder.layer.{i}.{m}:bitfit" for i in (0, 1)
           for m in ("attention.self.query", "attention.self.value", "intermediate.dense", "output.dense")]
    inp = signal_input(tiny_task, ids)
    l1 = l1_scores(inp).scores
    l2 = gradient_scores(inp.model, ids, tiny_task.train, 2, 8, 0)
    assert sorted(ids, key=l1.get) != sorted(ids, key=l2.get)


SCORES = {"a:lora:r1": 1.0, "b:lora:r1": 3.0, "a:lora:r4": 4.0, "b:lora:r4": 4.0, "a:lora:r16": 6.0,
          "b:lora:r16": 2.0, "a:bitfit": 2.0, "b:bitfit": 2.0, "a:norm_affine": 1.0, "b:norm_affine": 3.0}
PRIOR = {"a:lora:r1": 0.1, "b:lora:r1": 0.1, "a:lora:r4": 0.2, "b:lora:r4": 0.2, "a:lora:r16": 0.4,
         "b:lora:r16": 0.4, "a:bitfit": 0.05, "b:bitfit": 0.05, "a:norm_affine": 0.01, "b:norm_affine": 0.03}


def measured(**loss_decrease: float) -> dict[str, BundleResult]:
    """Probe results by bundle name, each moving accuracy by 100 points per nat of loss (so k = 100)."""
    names = {"low": "lora at 1", "mix": MIXTURE, "high": "lora at 16"}
    return {names[k]: BundleResult(role=names[k], setting=None, points=100 * v, loss_decrease=v)
            for k, v in loss_decrease.items()}


def gains(probes: int, results: dict[str, BundleResult]) -> dict[str, float]:
    plan = probe_plan(list(SCORES), PRIOR, probes)
    values = method_values(SCORES, PRIOR, plan, results)
    return {cid: g for cid, (g, _) in candidate_gains(SCORES, values).items()}


def test_the_probe_plan_is_the_top_method_small_then_the_mixture_then_the_top_method_large() -> None:
    plan = probe_plan(list(SCORES), PRIOR, 5)
    assert [(b.name, b.candidates) for b in plan] == [
        ("lora at 1", ["a:lora:r1", "b:lora:r1"]),
        (MIXTURE, ["a:bitfit", "a:lora:r1", "a:norm_affine", "b:bitfit", "b:lora:r1", "b:norm_affine"]),
        ("lora at 16", ["a:lora:r16", "b:lora:r16"])]
    assert probe_plan(list(SCORES), PRIOR, 1) == plan[:1] and probe_plan(list(SCORES), PRIOR, 0) == []
    only = probe_plan(["a:bitfit", "b:bitfit"], PRIOR, 3)  # one method without settings: one probe
    assert [b.name for b in only] == ["bitfit"]


def test_no_probes_scale_each_method_to_its_summed_prior() -> None:
    g = gains(0, {})
    assert g["a:lora:r4"] == pytest.approx(4.0 * 1.4 / 20)  # lora: prior 1.4 over raw 20
    assert g["b:norm_affine"] == pytest.approx(3.0 * 0.04 / 4)


def test_one_probe_values_the_top_method_and_holds_larger_settings_at_the_probed_one() -> None:
    g = gains(1, measured(low=0.02))  # the r1 bundle is worth 2 points, shared 1:3
    assert (g["a:lora:r1"], g["b:lora:r1"]) == (pytest.approx(0.5), pytest.approx(1.5))
    assert g["a:lora:r4"] == g["a:lora:r16"] == g["a:lora:r1"] and g["b:lora:r16"] == g["b:lora:r1"]
    ratio = 2.0 / 0.2  # the lora bundle's value over its prior gain
    assert g["a:bitfit"] + g["b:bitfit"] == pytest.approx(0.1 * ratio)  # bitfit's bundle prior x the ratio
    assert g["b:norm_affine"] == pytest.approx(0.04 * ratio * 3 / 4)


def test_the_mixture_values_the_other_methods_by_what_it_adds_beside_the_top_method() -> None:
    g = gains(2, measured(low=0.02, mix=0.035))  # 1.5 points added, split 0.1 : 0.04 by bundle prior
    assert g["a:bitfit"] + g["b:bitfit"] == pytest.approx(1.5 * 0.1 / 0.14)
    assert g["a:norm_affine"] + g["b:norm_affine"] == pytest.approx(1.5 * 0.04 / 0.14)
    worse = gains(2, measured(low=0.02, mix=0.01))  # the mixture below the top method alone: others worth 0
    assert worse["a:bitfit"] == worse["b:norm_affine"] == 0.0 and worse["b:lora:r1"] == pytest.approx(1.5)


def test_a_probe_at_the_largest_setting_gives_the_curve_between_linear_in_log_setting() -> None:
    g = gains(3, measured(low=0.02, mix=0.01, high=0.06))  # 2 points at r1, 6 at r16
    assert g["a:lora:r16"] == pytest.approx(6.0 * 6 / 8) and g["b:lora:r1"] == pytest.approx(2.0 * 3 / 4)
    assert g["a:lora:r4"] == pytest.approx(4.0 * 4 / 8)  # r4 halfway in log: 4 points, shared 4:4
    falls = gains(3, measured(low=0.02, mix=0.01, high=-0.1))  # rank 16 trained below head only: worth 0
    assert falls["a:lora:r16"] == 0.0 and falls["a:lora:r4"] == pytest.approx(1.0 * 4 / 8)


def test_cost_share_counts_example_passes_against_the_planned_run() -> None:
    cost = gain_cost("x", 1.5, Work(forward=64, backward=32, probes=0), TrainConfig(steps=10, batch_size=16))
    assert cost.cost_share == pytest.approx(96 / 320) and cost.wall_s == 1.5 and cost.run_steps == 10


@pytest.fixture(scope="module")
def tiny_profile():
    options = ProfileOptions(methods=["lora", "bitfit", "norm_affine"], ranks=[1, 2], batch_size=2, seq_len=8,
                             repeats=1, warmup=0, device="cpu", target_modules=[r"encoder\.layer\.1\..*"])
    return profile_model(ModelSpec(config=TINY_BERT), options)


@pytest.mark.parametrize("source", ["activation", "gradient-importance", "gradient-l1", "weight-condition"])
def test_each_cheap_source_is_registered_and_records_its_cost(source: str, tiny_task: Task, tiny_profile) -> None:
    config = TrainConfig(steps=4, batch_size=8)
    task = tiny_task if SOURCES[source].needs_task else None
    gained, report = fill_gains(tiny_profile, source, task, config)
    assert {c.gain_source for c in gained.candidates} == {source}
    assert all(c.gain >= 0 and "raw_score" in c.gain_details for c in gained.candidates)
    cost = gained.gain_cost
    assert cost is not None and report.cost == cost and cost.source == source and cost.wall_s > 0
    work = report.signal_work
    assert cost.cost_share == pytest.approx((work["forward"] + work["backward"]) / (2 * 4 * 8))
    assert (cost.cost_share > 0) == SOURCES[source].needs_task  # weight-condition passes no example
    assert {m.basis for m in report.methods} == {"prior"} and report.probed == []


def test_probes_calibrate_a_cheap_source_and_count_in_its_cost(tiny_task: Task, tiny_profile) -> None:
    config = TrainConfig(steps=3, batch_size=8)
    gained, report = fill_gains(tiny_profile, "activation", tiny_task, config, probes=2)
    assert [p.name for p in report.probed] == ["lora at 1", MIXTURE]  # lora: the largest summed prior
    assert {m.method: m.basis for m in report.methods} == {"lora": "probe", "bitfit": "mixture",
                                                           "norm_affine": "mixture"}
    bundle = [c for c in gained.candidates if c.method == "lora" and c.config["rank"] == 1]
    assert sum(c.gain for c in bundle) == pytest.approx(report.probed[0].value)
    others = sum(c.gain for c in gained.candidates if c.method != "lora")
    assert others == pytest.approx(max(0.0, report.probed[1].value - report.probed[0].value))
    val = report.probe_validation
    assert val == min(PROBE_VALIDATION, len(tiny_task.validation))
    runs = 3 * (3 * 8 + val) + 2 * 3 * 8  # two probes + baseline forward, the probes backward
    signal = report.signal_work["forward"] + report.signal_work["backward"]
    assert gained.gain_cost.cost_share == pytest.approx((runs + signal) / (2 * 3 * 8))
    assert gained.gain_cost.probes == 3
    budget = {"params": sum(c.params for c in gained.candidates)}  # everything fits: ties go to the cheaper plan
    plan = solve(problem_from_profile(gained, budget, "gain", None, 0.0))
    assert plan.selected and all(parse_id(c).setting in (None, 1) for c in plan.selected)  # r2 held at r1's gain
    with pytest.raises(ValueError, match="takes no probe budget"):
        fill_gains(tiny_profile, "prior", probes=1)


def test_probes_evaluate_on_a_seeded_draw_of_the_validation_set(tiny_task: Task) -> None:
    cut = tiny_task.with_validation(10, seed=3)
    assert len(cut.validation) == 10 and tiny_task.with_validation(10_000) is tiny_task
    rows = {tuple(r) for r in tiny_task.validation.inputs["input_ids"].tolist()}
    assert {tuple(r) for r in cut.validation.inputs["input_ids"].tolist()} <= rows
    again = tiny_task.with_validation(10, seed=3).validation
    assert torch.equal(again.y, cut.validation.y) and torch.equal(again.inputs["input_ids"], cut.validation.inputs["input_ids"])


def test_prior_and_gradient_record_their_cost(tiny_task: Task, tiny_profile) -> None:
    prior, _ = fill_gains(tiny_profile, "prior")
    assert prior.gain_cost.cost_share == 0 and prior.gain_cost.source == "prior"
    config = TrainConfig(steps=2, batch_size=8)
    gained, report = fill_gains(tiny_profile, "gradient", tiny_task, config)
    runs = len(report.bundles) + len(report.mixtures) + 1  # and full fine-tuning
    assert gained.gain_cost.probes == runs + 1 and report.cost == gained.gain_cost  # the baseline too
    val, train = len(tiny_task.validation), len(tiny_task.train)  # 64 examples: every pass reads all of them
    passes = 1 + 1  # every LoRA site in one pass, the biases and norms in one more
    expected = 2 * runs * 16 + (runs + 1) * val + 16 + 2 * passes * train
    assert gained.gain_cost.cost_share == pytest.approx(expected / 32)
