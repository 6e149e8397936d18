"""The `gradient-l1` signal (Adam-aware first order): the loss decrease one AdamW step buys a candidate.

AdamW's first step moves every trained parameter by its learning rate against the sign of its
gradient (m / sqrt(v) = sign(g) after bias correction), so to first order the loss falls by
lr_method x ||g||_1 over the candidate's own parameters: the L1 norm of the adapter gradient, not
its squared L2 norm (what `proxy` scores, as plain gradient descent would move). The score is in
nats at the method's learning rate (`TrainConfig.lr_of`), comparable across methods.

Candidates are attached at init (identity, all but prompts) and their gradients averaged over the
batches (head fitted first); settings of one site go in separate passes (`proxy.attach_passes`), except
LoRA: only the largest rank of a site is attached, and rank r reads the first r components of it,
the L1 of A's first r rows and B's first r columns (this project's LoRA keeps alpha / r fixed and
draws A's rows independently, so they are distributed as a rank-r LoRA's own).
"""

from __future__ import annotations

import torch
from torch import nn

from profiler.candidates import CandidateRef, SiteIndex
from profiler.gains.cheap import Signal, SignalInput, SignalResult
from profiler.gains.cost import Work, pass_work
from profiler.gains.proxy import attach_passes, backward_mean
from profiler.methods.base import freeze
from profiler.methods.lora import ATTR
from profiler.methods.registry import attach


def _weight(part: nn.Module | nn.Parameter) -> torch.Tensor:
    return part if isinstance(part, nn.Parameter) else part.weight


def rank_l1(lora: nn.Module) -> torch.Tensor:
    """Per rank component j of an attached LoRA, |grad A_j| + |grad B_:,j| summed, shape (rank,)."""
    a, b = _weight(lora.lora_A), _weight(lora.lora_B)
    ga = a.grad if a.grad is not None else torch.zeros_like(a)
    gb = b.grad if b.grad is not None else torch.zeros_like(b)
    return ga.double().abs().flatten(1).sum(1) + gb.double().abs().transpose(0, 1).flatten(1).sum(1)


def l1_scores(inp: SignalInput) -> SignalResult:
    """Each candidate's lr x ||adapter gradient||_1 (nats, first AdamW step), from backward passes."""
    assert inp.model is not None
    encoder, lr = inp.encoder, inp.config.lr_of
    sample = inp.batches[0][0]
    index = SiteIndex(encoder, {k: v[:2] for k, v in sample.items()})
    largest: dict[str, CandidateRef] = {}
    for r in inp.refs:
        if r.method == "lora" and (r.site not in largest or (r.setting or 0) > (largest[r.site].setting or 0)):
            largest[r.site] = r
    attached = list(largest.values()) + [r for r in inp.refs if r.method != "lora"]
    l1: dict[str, float] = {}
    components: dict[str, torch.Tensor] = {}
    work = Work()
    for group in attach_passes(attached):
        attachments = {r.id: attach(encoder, index.site_for(r), r.method, r.setting) for r in group}
        try:
            for att in attachments.values():
                for p in att.parameters():
                    p.requires_grad_(True)
            backward_mean(inp.model, inp.batches)
            work = work + pass_work(sum(len(y) for _, y in inp.batches), backward=True)
            for r in group:
                if r.method == "lora":
                    components[r.site] = rank_l1(getattr(encoder.get_submodule(r.site), ATTR))
                else:
                    l1[r.id] = sum(float(p.grad.double().abs().sum())
                                   for p in attachments[r.id].parameters() if p.grad is not None)
        finally:
            for att in reversed(list(attachments.values())):
                for p in att.parameters():
                    p.grad = None
                att.detach()
            freeze(inp.model)
    scores, details = {}, {}
    for r in inp.refs:
        norm = float(components[r.site][: r.setting].sum()) if r.method == "lora" else l1[r.id]
        scores[r.id] = lr(r.method) * norm
        details[r.id] = {"gradient_l1": norm, "lr": lr(r.method)}
    return SignalResult(scores, work, details)


SIGNAL = Signal("gradient-l1", "lr x L1 norm of each candidate's adapter gradient at init: the first AdamW step's "
                "loss decrease to first order, nats", data=True, head=True, compute=l1_scores)
