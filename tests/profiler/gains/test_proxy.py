"""The gradient proxy against independent computations: SVD in numpy, autograd, finite differences."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from profiler.gains.proxy import gradient_scores, lora_score
from profiler.training.task import Task

Q = "encoder.layer.1.attention.self.query"


def full_gradients(task: Task, model: torch.nn.Module, batch_size: int, batches: int, seed: int) -> dict:
    """Mean-loss gradients of every encoder parameter, by plain autograd on a fully trainable copy."""
    model.requires_grad_(True)
    index = torch.randperm(len(task.train), generator=torch.Generator().manual_seed(seed))[: batches * batch_size]
    for chunk in index.split(batch_size):
        batch, y = task.train.batch(chunk)
        (F.cross_entropy(model(batch), y) / batches).backward()
    grads = {n: p.grad.clone() for n, p in model.encoder.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    model.requires_grad_(False)
    return grads


def test_lora_score_is_the_top_r_squared_singular_values() -> None:
    g = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    s = np.linalg.svd(g.numpy().astype(np.float64), compute_uv=False)
    assert np.isclose(lora_score(g, 2), (s[:2] ** 2).sum())
    assert np.isclose(lora_score(g, 5), float((g.double() ** 2).sum()))  # full rank: the Frobenius norm


def test_scores_match_independent_autograd(tiny_task: Task) -> None:
    model = tiny_task.model(0)
    ids = [f"{Q}:lora:r1", f"{Q}:lora:r4", f"{Q}:bitfit", "encoder.layer.0.output.LayerNorm:norm_affine",
           "encoder.layer.1.output.dense:adapter:b4"]
    scores = gradient_scores(model, ids, tiny_task.train, batches=2, batch_size=8, seed=3)
    assert all(not p.requires_grad for p in model.parameters())  # left as it was
    grads = full_gradients(tiny_task, model, 8, 2, 3)
    s = np.linalg.svd(grads[f"{Q}.weight"].double().numpy(), compute_uv=False) ** 2
    assert np.isclose(scores[f"{Q}:lora:r1"], s[0], rtol=1e-5)
    assert np.isclose(scores[f"{Q}:lora:r4"], s[:4].sum(), rtol=1e-5)
    assert np.isclose(scores[f"{Q}:bitfit"], float((grads[f"{Q}.bias"].double() ** 2).sum()), rtol=1e-5)
    ln = "encoder.layer.0.output.LayerNorm"
    expected = float((grads[f"{ln}.weight"].double() ** 2).sum() + (grads[f"{ln}.bias"].double() ** 2).sum())
    assert np.isclose(scores[ids[3]], expected, rtol=1e-5)
    assert scores[ids[4]] > 0  # the adapter's zero-initialized up-projection has a gradient


def test_bias_gradient_agrees_with_finite_differences(tiny_task: Task) -> None:
    model = tiny_task.model(0).double()
    batch, y = tiny_task.train.batch(torch.arange(8))
    bias = model.encoder.get_submodule(Q).bias
    bias.requires_grad_(True)
    F.cross_entropy(model(batch), y).backward()
    direction = torch.randn(bias.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    eps = 1e-5
    with torch.no_grad():
        losses = []
        for sign in (1, -1):
            bias.add_(sign * eps * direction)
            losses.append(float(F.cross_entropy(model(batch), y)))
            bias.sub_(sign * eps * direction)
    assert np.isclose((losses[0] - losses[1]) / (2 * eps), float(bias.grad @ direction), rtol=1e-4)
