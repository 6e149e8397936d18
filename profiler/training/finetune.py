"""The training loop every gain probe, validation job and benchmark uses.

Norms stay in eval mode the whole time (BatchNorm running statistics frozen, dropout off: tuning a
few parameters with live BatchNorm statistics collapsed BitFit, norm and LoRA tuning on a CNN), and
each method trains at its own learning rate (they differ by up to 10x). AdamW, linear warm-up over
the first 10 % of steps, then linear decay to zero. Batches are drawn from a seeded permutation.
A run trains on `TrainConfig.device` (the model is moved there, each batch as it is used).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Literal

import torch
from pydantic import BaseModel, Field
from torch import nn

from profiler.schema import MAX_SEED
from profiler.training.task import Encoded, TaskModel
from solver import Strict

# Default learning rates per method (AdamW, short runs of ~30-150 steps at batch 16). "head" is the task
# head every run trains, "full" full fine-tuning. Picked on the built-in task (40 steps, batch 16, seed 0,
# validation loss): head 1e-2 over 5e-3/3e-2/1e-1; LoRA 5e-3 over 2e-3/1e-2; BitFit and norm affines
# 1e-3 over 5e-3 and 2e-2 (larger rates fell below head-only accuracy). Adapters, prompts, AdaLoRA and
# full fine-tuning take the usual values from the literature, unswept here.
DEFAULT_LR: dict[str, float] = {
    "head": 1e-2, "lora": 5e-3, "adapter": 2e-3, "bitfit": 1e-3, "norm_affine": 1e-3,
    "prompt_tuning": 3e-2, "adalora": 5e-3, "full": 5e-5,
}
WARMUP_FRACTION = 0.1


class TrainConfig(Strict):
    """Steps, batch size (examples), seed, learning-rate overrides by method, evaluation batch size, device."""

    steps: int = Field(default=120, ge=0, le=1_000_000)
    batch_size: int = Field(default=16, ge=1, le=4096)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    lr: dict[Annotated[str, Field(max_length=64)], Annotated[float, Field(gt=0, le=10)]] = Field(
        default_factory=dict, max_length=32, description="Overrides of DEFAULT_LR by method.")
    weight_decay: float = Field(default=0.0, ge=0, le=10)
    eval_batch_size: int = Field(default=128, ge=1, le=4096)
    device: Literal["cpu", "cuda"] = Field(
        default="cpu", description="Where runs train (`cuda`: a GPU; on the Ray runner each run's task asks for one).")

    def lr_of(self, method: str) -> float:
        """The learning rate of `method` (override, default, or the LoRA default for unknown methods)."""
        return self.lr.get(method, DEFAULT_LR.get(method, DEFAULT_LR["lora"]))


class TrainResult(BaseModel):
    """What a run did and reached: validation accuracy (fraction), final loss, trainable params, time."""

    accuracy: float = Field(description="Validation accuracy (a causal LM: exact match of the completions), fraction.")
    val_loss: float = Field(description="Mean validation cross-entropy per example (a causal LM: per completion "
                                        "token), nats.")
    train_loss: float | None = Field(description="Mean training loss over the last tenth of the steps, nats; None "
                                              "when nothing was trainable (a causal LM's zero-shot baseline).")
    steps: int = Field(description="Optimizer steps taken (0 when nothing was trainable).")
    batch_size: int
    seed: int
    lr: dict[str, float]
    trainable_params: int = Field(description="Trained parameters excluding the task head.")
    head_params: int
    seconds: float


@torch.no_grad()
def evaluate(model: TaskModel, data: Encoded, batch_size: int = 128) -> tuple[float, float]:
    """(accuracy as a fraction of examples right, mean cross-entropy in nats per example or, for a causal LM,
    per completion token) of `model` on `data`, in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    correct, loss, terms = 0, 0.0, 0
    for batch, y in data.batches(batch_size):
        right, summed, count = model.tally(_to(batch, device), y.to(device))
        correct, loss, terms = correct + right, loss + summed, terms + count
    return correct / max(len(data), 1), loss / max(terms, 1)


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def _schedule(steps: int) -> Callable[[int], float]:
    warmup = max(1, int(WARMUP_FRACTION * steps))
    return lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(steps - warmup, 1)))


def _order(n: int, steps: int, batch: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    need = steps * batch
    perms = [torch.randperm(n, generator=generator) for _ in range(-(-need // n) if need else 0)]
    return torch.cat(perms)[:need].view(steps, batch) if perms else torch.empty(0, batch, dtype=torch.long)


def _train(model: TaskModel, param_groups: list[dict], train: Encoded, config: TrainConfig,
           on_step: Callable[[int], None] | None) -> list[float]:
    """The training loss of each of `config.steps` AdamW steps on `param_groups`, nats."""
    device = torch.device(config.device)
    optimizer = torch.optim.AdamW(param_groups, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config.steps))
    order = _order(len(train), config.steps, config.batch_size, config.seed)
    losses: list[float] = []
    for step in range(config.steps):
        optimizer.zero_grad(set_to_none=True)
        batch, y = train.batch(order[step])
        loss = model.loss(_to(batch, device), y.to(device))
        loss.backward()
        optimizer.step()
        scheduler.step()
        if on_step is not None:
            on_step(step)
        losses.append(float(loss.detach()))
    optimizer.zero_grad(set_to_none=True)
    return losses


def finetune(model: TaskModel, groups: dict[str, list[nn.Parameter]], train: Encoded, validation: Encoded,
             config: TrainConfig, on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Train the task head (none for a causal LM) plus `groups` (method -> parameters) for `config.steps`;
    returns validation accuracy and loss.

    Parameters in `groups` are made trainable; everything else in the encoder is left as it is (frozen
    by the caller). `on_step(step)` runs after each optimizer step, gradients still present (AdaLoRA's
    rank allocation needs them).
    """
    start = time.perf_counter()
    device = torch.device(config.device)
    model.to(device).eval()
    head = model.head_parameters()
    for p in head:
        p.requires_grad_(True)
    param_groups = [{"params": head, "lr": config.lr_of("head")}] if head else []
    lrs = {"head": config.lr_of("head")} if head else {}
    for method, params in groups.items():
        if params:
            for p in params:
                p.requires_grad_(True)
            param_groups.append({"params": params, "lr": config.lr_of(method)})
            lrs[method] = config.lr_of(method)
    losses = _train(model, param_groups, train, config, on_step) if param_groups else []
    tail = losses[-max(1, len(losses) // 10):]
    trained = {id(p): p for ps in groups.values() for p in ps}
    accuracy, val_loss = evaluate(model, validation, config.eval_batch_size)
    return TrainResult(
        accuracy=accuracy, val_loss=val_loss, train_loss=sum(tail) / len(tail) if tail else None,
        steps=len(losses), batch_size=config.batch_size, seed=config.seed, lr=lrs,
        trainable_params=sum(p.numel() for p in trained.values()), head_params=sum(p.numel() for p in head),
        seconds=time.perf_counter() - start)
