"""The gradient proxy: what each candidate's parameters can buy to first order, from a few batches.

One pass averages the loss gradient over `batches` batches of the user's data on the real
pretrained model (with its task head already fitted, so the gradient is about the task, not a random
head). Per candidate, the score is the first-order loss decrease an update of unit norm in its
parameter space can buy, squared:

* LoRA of rank r on a weight W: the sum of the top-r squared singular values of dL/dW (the best
  rank-r update direction); the weight of a conv is flattened to (out, in·k·k);
* BitFit, norm affines, bottleneck adapters (at their zero init), soft prompts: the squared norm of
  the gradient of the parameters the method trains.

Candidates that are the identity at init (all but prompts) are attached together; settings of one
site go in separate passes. Scores are in loss² per unit parameter norm²; `calibrate` turns them
into accuracy points.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch import nn

from profiler.candidates import CandidateRef, SiteIndex, parse_id
from profiler.methods.base import freeze
from profiler.methods.registry import attach
from profiler.training.task import Batch, Encoded, TaskModel


def squared_singular_values(grad: torch.Tensor) -> torch.Tensor:
    """Squared singular values (descending) of a weight gradient flattened to (d_out, rest)."""
    return torch.linalg.svdvals(grad.reshape(grad.shape[0], -1).double()) ** 2


def lora_score(grad: torch.Tensor, rank: int) -> float:
    """Sum of the top-`rank` squared singular values of a weight gradient (flattened to 2-D)."""
    return float(squared_singular_values(grad)[:rank].sum())


def _weight_grad(module: nn.Module) -> torch.Tensor:
    """dL/dW as (d_out, d_in, ...); transformers' Conv1D stores W transposed."""
    grad = module.weight.grad
    assert grad is not None
    return grad.t() if type(module).__name__ == "Conv1D" else grad


def draw(data: Encoded, batches: int, batch_size: int, seed: int) -> list[tuple[Batch, torch.Tensor]]:
    """`batches` batches of `batch_size` examples from a seeded permutation of `data` (fewer if it is short)."""
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(data), generator=generator)[: batches * batch_size]
    return [data.batch(chunk) for chunk in index.split(batch_size)]


def backward_mean(model: TaskModel, batches: list[tuple[Batch, torch.Tensor]]) -> None:
    """Accumulate into `.grad` the gradient of the task loss averaged over `batches` (mean per batch)."""
    for batch, y in batches:
        (model.loss(batch, y) / len(batches)).backward()


def _accumulate(model: TaskModel, data: Encoded, batches: int, batch_size: int, seed: int) -> None:
    backward_mean(model, draw(data, batches, batch_size, seed))


def attach_passes(refs: list[CandidateRef]) -> list[list[CandidateRef]]:
    """Non-LoRA candidates in passes: one setting per (site, method) per pass, prompts alone."""
    passes: list[list[CandidateRef]] = []
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for ref in refs:
        if ref.method == "prompt_tuning":
            passes.append([ref])
            continue
        k = counts[(ref.site, ref.method)]
        counts[(ref.site, ref.method)] += 1
        shared = [p for p in passes if p and p[0].method != "prompt_tuning"]
        if k < len(shared):
            shared[k].append(ref)
        else:
            passes.append([ref])
    return passes


def proxy_passes(candidate_ids: list[str]) -> int:
    """How many passes over its batches `gradient_scores` runs for these candidates (one for every LoRA site,
    then one per `attach_passes` group)."""
    refs = [parse_id(cid) for cid in candidate_ids]
    return int(any(r.method == "lora" for r in refs)) + len(attach_passes([r for r in refs if r.method != "lora"]))


def gradient_scores(model: TaskModel, candidate_ids: list[str], data: Encoded, batches: int = 4,
                    batch_size: int = 32, seed: int = 0) -> dict[str, float]:
    """The proxy score of each candidate id (see the module docstring); the model is left as it was."""
    encoder = model.encoder
    freeze(model)
    refs = [parse_id(cid) for cid in candidate_ids]
    sample = data.batch(torch.arange(min(len(data), 2)))[0]
    index = SiteIndex(encoder, sample)
    scores: dict[str, float] = {}
    lora = [r for r in refs if r.method == "lora"]
    if lora:
        modules = {r.site: encoder.get_submodule(r.site) for r in lora}
        for m in modules.values():
            m.weight.requires_grad_(True)
        try:
            _accumulate(model, data, batches, batch_size, seed)
            spectra = {site: squared_singular_values(_weight_grad(m)) for site, m in modules.items()}
            for r in lora:
                assert r.setting is not None
                scores[r.id] = float(spectra[r.site][: r.setting].sum())
        finally:
            for m in modules.values():
                m.weight.grad = None
            freeze(model)
    for group in attach_passes([r for r in refs if r.method != "lora"]):
        attachments = {r.id: attach(encoder, index.site_for(r), r.method, r.setting) for r in group}
        try:
            for att in attachments.values():
                for p in att.parameters():
                    p.requires_grad_(True)
            _accumulate(model, data, batches, batch_size, seed)
            for cid, att in attachments.items():
                scores[cid] = float(sum(float((p.grad.double() ** 2).sum()) for p in att.parameters() if p.grad is not None))
        finally:
            for att in reversed(list(attachments.values())):
                for p in att.parameters():
                    p.grad = None
                att.detach()
            freeze(model)
    return {cid: scores[cid] for cid in candidate_ids}


def score_details(batches: int, batch_size: int, seed: int) -> dict[str, Any]:
    """What a gradient score rests on (recorded in each estimate)."""
    return {"batches": batches, "batch_size": batch_size, "seed": seed,
            "score": "top-r squared singular values of dL/dW (LoRA); squared gradient norm (others)"}
