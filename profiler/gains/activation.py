"""The `activation` signal (EVA-style): how much of a site's input variance its update can reach.

Forward passes only. Each candidate site's input is captured over the batches (real tokens only:
padding positions are dropped; a conv's input is read per pixel, channels last; an embedding's
integer ids are replaced by its output) and its centered covariance accumulated in float64. The
explained variance ratios λ_i / Σλ of that covariance are what EVA (peft's `EvaConfig`, incremental
SVD of the same inputs) ranks to redistribute LoRA ranks; here they are exact (one eigendecomposition
per site). A candidate of rank r scores the sum of the top-r ratios (a fraction in [0, 1]):

* LoRA rank r, bottleneck adapter b (r = b), prompt tuning of length n (r = n): the top-r sum;
* methods without a setting (BitFit, norm affines, (IA)^3: one vector per site): r = 1.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from profiler.gains.cheap import Signal, SignalInput, SignalResult
from profiler.gains.cost import pass_work


class _Moments:
    """Running count, sum and sum of outer products of row vectors, float64."""

    def __init__(self) -> None:
        self.n, self.total, self.outer = 0, None, None

    def add(self, rows: torch.Tensor) -> None:
        x = rows.detach().double()
        self.n += x.shape[0]
        s, o = x.sum(0), x.T @ x
        self.total = s if self.total is None else self.total + s
        self.outer = o if self.outer is None else self.outer + o

    def ratios(self) -> torch.Tensor:
        """Explained variance ratios of the centered covariance, descending (zeros when it is 0)."""
        assert self.total is not None and self.outer is not None
        mean = self.total / self.n
        cov = self.outer / self.n - torch.outer(mean, mean)
        values = torch.linalg.eigvalsh(cov).flip(0).clamp_min(0.0)
        total = values.sum()
        return values / total if total > 0 else values


def rows_of(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """A site's input as rows of features: real tokens of (batch, seq, d), pixels of (N, C, H, W), else all
    but the last axis flattened."""
    if x.dim() == 4:
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    if x.dim() == 3 and mask is not None and x.shape[:2] == mask.shape:
        return x[mask.bool()]
    return x.reshape(-1, x.shape[-1])


def explained_variance(encoder: nn.Module, sites: list[str], inp: SignalInput) -> dict[str, torch.Tensor]:
    """Per site, the explained variance ratios (descending) of its inputs over the batches."""
    moments: dict[str, _Moments] = defaultdict(_Moments)
    current: dict[str, torch.Tensor | None] = {"mask": None}

    def hook(site: str):
        def capture(module: nn.Module, args: tuple, out: object) -> None:
            x = args[0] if args and isinstance(args[0], torch.Tensor) else None
            if x is None or not x.is_floating_point():
                x = out if isinstance(out, torch.Tensor) else None
            if x is not None:
                moments[site].add(rows_of(x, current["mask"]))
        return capture

    handles = [encoder.get_submodule(s).register_forward_hook(hook(s)) for s in sites]
    model = inp.model
    try:
        with torch.no_grad():
            for batch, _ in inp.batches:
                current["mask"] = batch.get("attention_mask")
                if model is not None:
                    model(batch)
                else:
                    encoder(**batch)
    finally:
        for h in handles:
            h.remove()
    return {s: moments[s].ratios() for s in sites if moments[s].n > 1}


def activation_scores(inp: SignalInput) -> SignalResult:
    """Each candidate's top-r explained variance ratio sum (a fraction), from forward passes over the batches."""
    sites = sorted({r.site for r in inp.refs})
    ratios = explained_variance(inp.encoder, sites, inp)
    scores, details = {}, {}
    for ref in inp.refs:
        r = ref.setting or 1
        site = ratios.get(ref.site)
        scores[ref.id] = float(site[:r].sum()) if site is not None else 0.0
        details[ref.id] = {"explained_variance": scores[ref.id], "components": r}
    return SignalResult(scores, pass_work(sum(len(y) for _, y in inp.batches), backward=False), details)


SIGNAL = Signal("activation", "top-r explained variance ratio of each site's inputs (EVA-style), a fraction; "
                "forward passes only", data=True, head=False, compute=activation_scores)
