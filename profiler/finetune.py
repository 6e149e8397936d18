"""The training loop every gain probe, validation job and benchmark uses.

Norms stay in eval mode the whole time (BatchNorm running statistics frozen, dropout off: tuning a
few parameters with live BatchNorm statistics collapsed BitFit, norm and LoRA tuning on a CNN), and
each method trains at its own learning rate (they differ by up to 10x). AdamW, linear warm-up over
the first 10 % of steps, then linear decay to zero. Batches are drawn from a seeded permutation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F

from profiler.task import Classifier, Encoded

# Default learning rates per method (AdamW, short runs of ~100-300 steps at batch 16-32), picked on the
# built-in task; "head" is the task head every run trains, "full" full fine-tuning.
DEFAULT_LR: dict[str, float] = {
    "head": 1e-2, "lora": 2e-3, "adapter": 2e-3, "bitfit": 5e-3, "norm_affine": 5e-3,
    "prompt_tuning": 3e-2, "adalora": 2e-3, "full": 5e-5,
}
WARMUP_FRACTION = 0.1


class TrainConfig(BaseModel):
    """Steps, batch size (examples), seed, learning-rate overrides by method, evaluation batch size."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    steps: int = Field(default=120, ge=0, le=1_000_000)
    batch_size: int = Field(default=16, ge=1, le=4096)
    seed: int = Field(default=0, ge=0)
    lr: dict[str, float] = Field(default_factory=dict, description="Overrides of DEFAULT_LR by method.")
    weight_decay: float = Field(default=0.0, ge=0)
    eval_batch_size: int = Field(default=128, ge=1)

    def lr_of(self, method: str) -> float:
        """The learning rate of `method` (override, default, or the LoRA default for unknown methods)."""
        return self.lr.get(method, DEFAULT_LR.get(method, DEFAULT_LR["lora"]))


class TrainResult(BaseModel):
    """What a run did and reached: validation accuracy (fraction), final loss, trainable params, time."""

    accuracy: float
    train_loss: float
    steps: int
    batch_size: int
    seed: int
    lr: dict[str, float]
    trainable_params: int = Field(description="Trained parameters excluding the task head.")
    head_params: int
    seconds: float


@torch.no_grad()
def evaluate(model: Classifier, data: Encoded, batch_size: int = 128) -> float:
    """Accuracy (fraction correct) of `model` on `data`, in eval mode."""
    model.eval()
    correct = 0
    for batch, y in data.batches(batch_size):
        correct += int((model(batch).argmax(-1) == y).sum())
    return correct / max(len(data), 1)


def _schedule(steps: int) -> Callable[[int], float]:
    warmup = max(1, int(WARMUP_FRACTION * steps))
    return lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(steps - warmup, 1)))


def _order(n: int, steps: int, batch: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    need = steps * batch
    perms = [torch.randperm(n, generator=generator) for _ in range(-(-need // n) if need else 0)]
    return torch.cat(perms)[:need].view(steps, batch) if perms else torch.empty(0, batch, dtype=torch.long)


def finetune(model: Classifier, groups: dict[str, list[nn.Parameter]], train: Encoded, validation: Encoded,
             config: TrainConfig, on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Train the head plus `groups` (method -> parameters) for `config.steps`; returns validation accuracy.

    Parameters in `groups` are made trainable; everything else in the encoder is left as it is (frozen
    by the caller). `on_step(step)` runs after each optimizer step, gradients still present (AdaLoRA's
    rank allocation needs them).
    """
    start = time.perf_counter()
    model.eval()
    head = list(model.head.parameters())
    for p in head:
        p.requires_grad_(True)
    param_groups = [{"params": head, "lr": config.lr_of("head")}]
    lrs = {"head": config.lr_of("head")}
    for method, params in groups.items():
        if params:
            for p in params:
                p.requires_grad_(True)
            param_groups.append({"params": params, "lr": config.lr_of(method)})
            lrs[method] = config.lr_of(method)
    optimizer = torch.optim.AdamW(param_groups, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config.steps))
    order = _order(len(train), config.steps, config.batch_size, config.seed)
    losses: list[float] = []
    for step in range(config.steps):
        optimizer.zero_grad(set_to_none=True)
        batch, y = train.batch(order[step])
        loss = F.cross_entropy(model(batch), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if on_step is not None:
            on_step(step)
        losses.append(float(loss.detach()))
    optimizer.zero_grad(set_to_none=True)
    tail = losses[-max(1, len(losses) // 10):] if losses else [float("nan")]
    trained = {id(p): p for ps in groups.values() for p in ps}
    return TrainResult(
        accuracy=evaluate(model, validation, config.eval_batch_size), train_loss=sum(tail) / len(tail),
        steps=config.steps, batch_size=config.batch_size, seed=config.seed, lr=lrs,
        trainable_params=sum(p.numel() for p in trained.values()), head_params=sum(p.numel() for p in head),
        seconds=time.perf_counter() - start)
