"""The quality benchmark's new baselines on a tiny BERT: EVA and all-linear LoRA through peft at the counts they
claim, the GoRA-style split, and the sources' Spearman against probes."""

from __future__ import annotations

import pytest

pytest.importorskip("peft")

from benchmarks.quality import apportion, gora_ids, peft_lora_run, source_rankings
from profiler.gains.calibrate import Calibration
from profiler.gains.gradient import GainReport, ProbeRow
from profiler.training.finetune import TrainConfig
from profiler.training.task import Task
from tests.app.service_helpers import synthetic_profile

QV = [f"encoder.layer.{i}.attention.self.{m}" for i in (0, 1) for m in ("query", "value")]


def test_apportion_splits_a_total_by_weight() -> None:
    assert apportion(12, {"a": 1.0, "b": 2.0, "c": 3.0}) == {"a": 2, "b": 4, "c": 6}
    split = apportion(5, {"a": 1.0, "b": 1.0, "c": 2.9})
    assert sum(split.values()) == 5 and split["c"] == 3
    assert gora_ids({"a": 0.0, "b": 3.0}, ["a", "b"], 2) == ["b:lora:r4"]  # same sum of ranks, a dropped


def test_eva_keeps_the_sum_of_ranks_and_all_linear_covers_every_linear(tiny_task: Task) -> None:
    config = TrainConfig(steps=2, batch_size=8)
    eva = peft_lora_run(tiny_task, {"r": 2, "lora_alpha": 4, "target_modules": QV, "init_lora_weights": "eva"},
                        config)
    assert eva.trainable_params == 2 * len(QV) * (64 + 64)  # q, v: 64 x 64; ranks redistributed, sum kept
    every = peft_lora_run(tiny_task, {"r": 1, "lora_alpha": 2, "target_modules": "all-linear"}, config)
    per_layer = 4 * (64 + 64) + 2 * (64 + 128)  # q, k, v, attention output; intermediate and output
    assert every.trainable_params == 2 * per_layer + (64 + 64)  # and this tiny model's pooler (MiniLM's is dropped)


def test_source_rankings_correlate_summed_raw_scores_with_probes() -> None:
    profile = synthetic_profile()
    raw = {c.id: float(i) for i, c in enumerate(profile.candidates)}
    profile = profile.model_copy(update={"candidates": [
        c.model_copy(update={"gain_details": {"raw_score": raw[c.id]}, "gain": raw[c.id] / 10})
        for c in profile.candidates]})
    singles = [c.id for c in profile.candidates if c.method == "lora"][:4]
    rows = [ProbeRow(name=cid, method="lora", candidates=1, params=1, score=0.0, points=p, val_loss_decrease=p / 100,
                     calibrated=0.0) for cid, p in zip(singles, [1.0, 2.0, 4.0, 3.0], strict=True)]
    report = GainReport(baseline_accuracy=0.5, baseline_loss=0.7, gradient_s=0, probe_s=0, probe_config=TrainConfig(),
                        calibration=Calibration(points_per_nat=1, ceiling_points=1), full_points=0,
                        full_loss_decrease=0, bundles=[], mixtures=[], probes=rows, bundle_rankings=[],
                        single_rankings=[])
    ranked = source_rankings(profile, report)
    assert sorted(singles, key=raw.get) == singles  # raw scores ascend, probes rank them 1 2 4 3
    assert ranked["per_method"]["lora singles"]["raw_vs_points"] == pytest.approx(0.8)
    assert ranked["per_method"]["lora singles"]["gain_vs_loss"] == pytest.approx(0.8)
    assert ranked["across"]["probes"] == 0 and ranked["across"]["raw_vs_points"] is None
