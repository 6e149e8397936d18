"""The `gradient-importance` signal (GoRA-style): mean |W ⊙ dL/dW| of each site's tensor, from one backward pass.

The loss gradient is averaged over the batches (head fitted first, `cheap.fit_head`) with every
site's tensor made trainable: the module's bias for BitFit, its weight and bias for norm affines,
its weight for the others (LoRA, adapters, (IA)^3; an embedding's weight for prompt tuning). The
site's importance is the mean over the tensors' entries of |w·g| (GoRA's first-order estimate of
the loss change from removing a weight, in nats per entry); a candidate scores importance x
sqrt(setting) (`cheap.setting_scale`). The relative gradient norm ||g|| / ||w|| of surgical
fine-tuning's Auto-RGN is recorded beside it.
"""

from __future__ import annotations

import torch
from torch import nn

from profiler.candidates import CandidateRef
from profiler.gains.cheap import Signal, SignalInput, SignalResult, setting_scale
from profiler.gains.cost import pass_work
from profiler.gains.proxy import backward_mean
from profiler.methods.base import freeze


def site_tensors(encoder: nn.Module, ref: CandidateRef) -> list[nn.Parameter]:
    """The existing tensors a candidate's method adapts at its site (see the module docstring)."""
    module = encoder.get_submodule(ref.site)
    names = {"bitfit": ("bias",), "norm_affine": ("weight", "bias")}.get(ref.method, ("weight",))
    return [p for n in names if isinstance(p := getattr(module, n, None), nn.Parameter)]


def importance_scores(inp: SignalInput) -> SignalResult:
    """Each candidate's mean |W ⊙ G| x sqrt(setting) (nats per entry), with |G|/|W| in its details."""
    assert inp.model is not None
    tensors = {(r.site, r.method): site_tensors(inp.encoder, r) for r in inp.refs}
    unique = {id(p): p for ps in tensors.values() for p in ps}
    for p in unique.values():
        p.requires_grad_(True)
    try:
        backward_mean(inp.model, inp.batches)
        measured = {}
        for key, ps in tensors.items():
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in ps]
            entries = sum(p.numel() for p in ps)
            wg = sum(float((p.detach().double() * g.double()).abs().sum()) for p, g in zip(ps, grads, strict=True))
            g2 = sum(float((g.double() ** 2).sum()) for g in grads)
            w2 = sum(float((p.detach().double() ** 2).sum()) for p in ps)
            measured[key] = (wg / entries if entries else 0.0, (g2 / w2) ** 0.5 if w2 > 0 else 0.0)
    finally:
        for p in unique.values():
            p.grad = None
        freeze(inp.model)
    scores, details = {}, {}
    for r in inp.refs:
        importance, rgn = measured[(r.site, r.method)]
        scores[r.id] = importance * setting_scale(r)
        details[r.id] = {"importance": importance, "relative_gradient_norm": rgn, "setting_scale": setting_scale(r)}
    return SignalResult(scores, pass_work(sum(len(y) for _, y in inp.batches), backward=True), details)


SIGNAL = Signal("gradient-importance", "mean |W * dL/dW| of each site's tensor (GoRA-style) x sqrt(setting), "
                "nats per entry; one backward pass", data=True, head=True, compute=importance_scores)
