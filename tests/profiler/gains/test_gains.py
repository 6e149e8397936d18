"""Training loop (only planned parameters move, norms stay frozen), probes, calibration, prior, provenance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from profiler.candidates import parse_id
from profiler.gains.calibrate import (
    LARGEST,
    SMALLEST,
    BundleResult,
    fit_calibration,
    gradient_estimates,
    mixtures,
    role_bundles,
    role_of,
)
from profiler.gains.estimate import GainEstimate, with_gains
from profiler.gains.fanout import run_here, train_full
from profiler.gains.prior import prior_gain, prior_gains
from profiler.gains.probe import probe_fanout
from profiler.methods.apply import apply_plan
from profiler.training.datasets import Dataset
from profiler.training.finetune import DEFAULT_LR, TrainConfig, finetune
from profiler.training.task import Task, make_task
from tests.app.service_helpers import synthetic_profile
from tests.tiny import TINY_BERT

Q = "encoder.layer.1.attention.self.query"
LINEARS = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "intermediate.dense", "output.dense"]


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_only_the_plan_and_the_head_move(tiny_task: Task) -> None:
    model = tiny_task.model(0)
    before = snapshot(model)
    applied = apply_plan(model.encoder, [f"{Q}:bitfit", "encoder.layer.0.output.LayerNorm:norm_affine"],
                         tiny_task.train.batch(torch.arange(2))[0])
    result = finetune(model, applied.by_method(), tiny_task.train, tiny_task.validation, TrainConfig(steps=3, batch_size=8))
    after = snapshot(model)
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved == {f"encoder.{Q}.bias", "encoder.encoder.layer.0.output.LayerNorm.weight",
                     "encoder.encoder.layer.0.output.LayerNorm.bias", "head.weight", "head.bias"}
    assert result.trainable_params == applied.num_parameters() == 64 + 2 * 64  # hidden 64: a bias, a LayerNorm
    assert result.lr == {"head": DEFAULT_LR["head"], "bitfit": DEFAULT_LR["bitfit"], "norm_affine": DEFAULT_LR["norm_affine"]}
    assert 0.0 <= result.accuracy <= 1.0 and result.val_loss > 0


def test_batchnorm_statistics_stay_frozen_on_arrays() -> None:
    rng = np.random.default_rng(0)
    data = Dataset(np.arange(24) % 2, ["0", "1"], x=rng.normal(size=(24, 3, 8, 8)).astype(np.float32))
    torch.manual_seed(0)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 8, 3), torch.nn.BatchNorm2d(8))
    task = make_task("cnn", cnn, None, data, data.subset(range(8)))
    model = task.model(0)
    before = snapshot(model)
    norms = [f"{p}:norm_affine" for p, m in model.encoder.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    applied = apply_plan(model.encoder, norms, {"x": task.train.inputs["x"][:2]})
    finetune(model, applied.by_method(), task.train, task.validation, TrainConfig(steps=2, batch_size=8))
    after = snapshot(model)
    stats = [k for k in before if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    assert not torch.equal(before["encoder.1.weight"], after["encoder.1.weight"])  # the affine did train


def test_probes_are_paired_with_the_baseline_and_reproducible(tiny_task: Task) -> None:
    config = TrainConfig(steps=2, batch_size=8, seed=1)
    ids = [f"{Q}:lora:r2", f"{Q}:bitfit"]
    fanout = probe_fanout(tiny_task, ids, config)
    first = run_here(tiny_task, fanout)
    again = run_here(tiny_task, fanout, workers=2)  # forked workers agree
    for cid in ids:
        est = first[cid]
        assert est.details["accuracy"] == again[cid].details["accuracy"]
        assert est.source == "probe" and est.details["seed"] == 1 and est.details["steps"] == 2
        assert est.gain == max(0.0, 100 * (est.details["accuracy"] - est.details["baseline_accuracy"]))


def test_mixtures_put_their_shortfall_on_their_end_of_the_settings() -> None:
    bundles, _ = role_bundles(SCORES)
    mixed = mixtures(bundles)
    assert mixed == {SMALLEST: ["l.0.q:lora:r1", "l.1.q:lora:r1", "l.0.o:bitfit", "l.1.o:bitfit"],
                     LARGEST: ["l.0.q:lora:r16", "l.1.q:lora:r16", "l.0.o:bitfit", "l.1.o:bitfit"]}
    full = BundleResult(role="full", setting=None, points=10.0, loss_decrease=0.1)  # 100 points per nat
    results = [BundleResult(role="lora @ l.*.q", setting=1, points=3.0, loss_decrease=0.03),
               BundleResult(role="lora @ l.*.q", setting=16, points=5.0, loss_decrease=0.05),
               BundleResult(role="bitfit @ l.*.o", setting=None, points=2.0, loss_decrease=0.02)]
    # smallest: 1 - (1 - 0.3)(1 - 0.2) = 0.44 of the gap predicted, 0.44 measured: no correction;
    # largest: bitfit 0.2 plus rank 16 at 0.5 predicts 0.6; measured 0.36 = 1 - 0.8 (1 - 0.2): γ = 0.4
    mix = {SMALLEST: BundleResult(role=SMALLEST, setting=None, points=4.4, loss_decrease=0.044),
           LARGEST: BundleResult(role=LARGEST, setting=None, points=3.6, loss_decrease=0.036)}
    cal = fit_calibration(results, full, mix)
    assert cal.points_per_nat == pytest.approx(100) and cal.ceiling_points == pytest.approx(10)
    assert cal.combination == pytest.approx({SMALLEST: 1.0, LARGEST: 0.4})
    assert cal.value("lora @ l.*.q", 1) == pytest.approx(3.0) and cal.value("lora @ l.*.q", 16) == pytest.approx(2.0)
    assert cal.value("bitfit @ l.*.o", None) == pytest.approx(2.0)
    worse = fit_calibration(results, full, mix | {SMALLEST: mix[SMALLEST].model_copy(update={"loss_decrease": 0.0})})
    assert worse.combination[SMALLEST] == 0.0 and worse.value("bitfit @ l.*.o", None) == 0.0


def test_full_fine_tuning_trains_every_encoder_parameter(tiny_task: Task) -> None:
    run = train_full(tiny_task, TrainConfig(steps=1, batch_size=8))
    assert run.trainable_params == tiny_task.encoder_params > 0 and run.lr["full"] == DEFAULT_LR["full"]


def test_roles_replace_layer_indices() -> None:
    assert role_of(parse_id("encoder.layer.11.attention.self.query:lora:r4")) == "lora @ encoder.layer.*.attention.self.query"
    assert role_of(parse_id("layer1.0.conv1:lora:r2")) == "lora @ layer1.*.conv1"
    assert role_of(parse_id("embeddings.LayerNorm:norm_affine")) == "norm_affine @ embeddings.LayerNorm"


SCORES = {"l.0.q:lora:r1": 1.0, "l.1.q:lora:r1": 3.0, "l.0.q:lora:r4": 2.0, "l.1.q:lora:r4": 6.0,
          "l.0.q:lora:r16": 4.0, "l.1.q:lora:r16": 4.0, "l.0.k:bitfit": 0.0, "l.1.k:bitfit": 0.0,
          "l.0.o:bitfit": 5.0, "l.1.o:bitfit": 0.0}


def test_each_role_is_bundled_at_its_extreme_settings_and_zero_roles_are_skipped() -> None:
    bundles, zero = role_bundles(SCORES)
    assert [(b.role, b.setting, b.candidates) for b in bundles] == [
        ("lora @ l.*.q", 1, ["l.0.q:lora:r1", "l.1.q:lora:r1"]),
        ("lora @ l.*.q", 16, ["l.0.q:lora:r16", "l.1.q:lora:r16"]),
        ("bitfit @ l.*.o", None, ["l.0.o:bitfit", "l.1.o:bitfit"])]
    assert zero == ["bitfit @ l.*.k"] and bundles[0].name == "lora @ l.*.q at 1"


def test_calibration_fits_points_per_nat_and_interpolates_in_log_setting() -> None:
    results = [BundleResult(role="lora @ l.*.q", setting=1, points=2.0, loss_decrease=0.02),
               BundleResult(role="lora @ l.*.q", setting=16, points=1.0, loss_decrease=0.01),
               BundleResult(role="bitfit @ l.*.o", setting=None, points=0.5, loss_decrease=-0.01)]
    full = BundleResult(role="full", setting=None, points=6.0, loss_decrease=0.1)
    cal = fit_calibration(results, full, {}, ["bitfit @ l.*.k"])
    k = (0.02 * 2 + 0.01 * 1 - 0.01 * 0.5 + 0.1 * 6) / (0.02 ** 2 + 0.01 ** 2 + 0.01 ** 2 + 0.1 ** 2)  # through 0
    c = 0.1 * k
    assert cal.points_per_nat == pytest.approx(k) and cal.ceiling_points == pytest.approx(c)
    assert cal.value("lora @ l.*.q", 1) == pytest.approx(0.02 * k)
    assert cal.value("lora @ l.*.q", 4) == pytest.approx(0.015 * k)  # log 4 is halfway from log 1 to log 16
    assert cal.value("lora @ l.*.q", 64) == pytest.approx(0.01 * k)  # held, not extrapolated
    assert cal.value("bitfit @ l.*.o", None) == 0.0  # a loss increase is worth nothing
    assert cal.value("bitfit @ l.*.k", None) == 0.0 and cal.zero_roles == ["bitfit @ l.*.k"]
    est = gradient_estimates(SCORES, cal, {"batches": 1})
    w4 = -c * np.log(1 - 0.015 * k / c)  # noisy-OR weight of the role's value at rank 4
    assert est["l.1.q:lora:r4"].gain == pytest.approx(w4 * 6 / 8)  # shared by score
    assert est["l.0.q:lora:r1"].gain + est["l.1.q:lora:r1"].gain == pytest.approx(-c * np.log(1 - 0.2))
    # a plan of two roles worth 0.2 and 0.5 of the gap closes 1 - 0.8 * 0.5 = 0.6 of it
    assert cal.predicted(cal.weight(0.2 * c) + cal.weight(0.5 * c)) == pytest.approx(0.6 * c)
    assert est["l.0.k:bitfit"].gain == 0.0 and est["l.0.k:bitfit"].details["role"] == "bitfit @ l.*.k"
    assert all(e.source == "gradient" and e.details["batches"] == 1 for e in est.values())


def test_prior_is_documented_and_recorded_on_every_candidate() -> None:
    profile = synthetic_profile(gains=False)
    estimates = prior_gains(profile.candidates)
    assert estimates["layer.0.q:lora:r8"].gain == pytest.approx(0.25)
    assert estimates["layer.0.q:lora:r4"].gain == pytest.approx(0.25 * 0.5 ** 0.5)
    assert estimates["layer.0:bitfit"].gain == pytest.approx(0.035)
    assert prior_gain("ia3", None).gain == pytest.approx(0.035)  # like a bias vector, documented as unmeasured
    gained = with_gains(profile, estimates)
    assert all(c.gain_source == "prior" and "FIELD-NOTES" in c.gain_details["basis"] for c in gained.candidates)
    with pytest.raises(KeyError, match="no gain estimate"):
        with_gains(profile, {"layer.0:bitfit": estimates["layer.0:bitfit"]})
    with pytest.raises(KeyError, match="unknown"):
        with_gains(profile, {"nope:bitfit": GainEstimate(gain=1, source="user")})


def test_validation_reports_realized_next_to_predicted(tiny_task: Task) -> None:
    from profiler.training.validate import validate_plan

    report = validate_plan(tiny_task, [f"{Q}:lora:r2"], TrainConfig(steps=2, batch_size=8), seeds=2,
                           predicted_points=1.5)
    assert report.predicted_points == 1.5 and [r.seed for r in report.plan_runs] == [0, 1]
    diffs = [100 * (p.accuracy - b.accuracy) for p, b in zip(report.plan_runs, report.baseline_runs, strict=True)]
    assert report.realized_points == pytest.approx(sum(diffs) / 2)
    assert report.plan_runs[0].trainable_params == 2 * (64 + 64) and report.baseline_runs[0].trainable_params == 0


def test_estimate_gains_records_a_calibrated_gradient_gain_on_every_candidate(tiny_task: Task) -> None:
    from profiler import ModelSpec, ProfileOptions, profile_model
    from profiler.gains.gradient import estimate_gains

    options = ProfileOptions(methods=["lora", "bitfit"], ranks=[1, 2], batch_size=2, seq_len=8, repeats=1, warmup=0,
                             device="cpu", target_modules=[r"encoder\.layer\.1\..*"])
    profile = profile_model(ModelSpec(config=TINY_BERT), options)
    gained, report = estimate_gains(tiny_task, profile, TrainConfig(steps=2, batch_size=8), singles={"lora": 2},
                                    batches=1, batch_size=8)
    assert all(c.gain_source == "gradient" and c.gain is not None and c.gain >= 0 for c in gained.candidates)
    probed = [c for c in gained.candidates if "probe" in c.gain_details]
    assert len(probed) == len(report.probes) == 2
    # six LoRA roles (the linears of layer 1) at ranks 1 and 2; five bias roles (the key bias gets no gradient)
    assert sorted((b.role, b.setting) for b in report.bundles) == sorted(
        [(f"lora @ encoder.layer.*.{m}", r) for m in LINEARS for r in (1, 2)]
        + [(f"bitfit @ encoder.layer.*.{m}", None) for m in LINEARS if m != "attention.self.key"])
    assert report.calibration.zero_roles == ["bitfit @ encoder.layer.*.attention.self.key"]
    cal = report.calibration
    assert cal.ceiling_points >= cal.points_per_nat * report.full_loss_decrease
    assert [m.name for m in report.mixtures] == [SMALLEST, LARGEST] and set(cal.combination) == {SMALLEST, LARGEST}
    assert report.mixtures[0].candidates == 6 + 5  # every role once
    for b in report.bundles:  # each bundle's candidates share exactly their role's (corrected) weight
        end = SMALLEST if b.setting in (None, 1) else LARGEST
        value = cal.combination[end] * max(0.0, cal.points_per_nat * b.val_loss_decrease)
        assert b.calibrated == pytest.approx(cal.weight(value))


def test_spearman_matches_scipy() -> None:
    from profiler.gains.gradient import spearman

    scipy_stats = pytest.importorskip("scipy.stats")
    a, b = [1.0, 2.0, 2.0, 5.0, 3.0], [0.3, 0.1, 0.4, 0.9, 0.9]
    assert spearman(a, b) == pytest.approx(scipy_stats.spearmanr(a, b).statistic)
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None


def test_single_probes_spread_over_the_proxy_ranking() -> None:
    from profiler.gains.gradient import stratified

    scores = {"a": 5.0, "b": 1.0, "c": 3.0, "d": 2.0, "e": 4.0}
    assert stratified(list(scores), scores, 3) == ["b", "c", "a"]  # lowest, median, highest
    assert stratified(list(scores), scores, 1) == ["a"] and stratified(list(scores), scores, 0) == []
    assert stratified(list(scores), scores, 9) == ["b", "d", "c", "e", "a"]


def test_values_never_fall_below_zero_by_rounding() -> None:
    from profiler.gains.calibrate import Calibration

    cal = Calibration(points_per_nat=50.0, ceiling_points=5.0, curves={"r": [(1, 0.3), (16, 1e-18)]})
    for rank in (1, 2, 15, 16, 32):
        assert cal.value("r", rank) >= 0 and cal.weight(cal.value("r", rank)) >= 0
    assert cal.value("r", 16) == 1e-18
