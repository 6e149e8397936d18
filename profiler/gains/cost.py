"""What a gains run cost, as a share of the fine-tuning run it plans for.

Every source counts its work as examples passed forward and backward (`Work`); `gain_cost` turns a
count and the wall time into the profile's `GainCost`. The planned run is `config.steps` steps of
`config.batch_size` examples, each passed forward and backward once: 2 x steps x batch example-passes.
A probe (a fine-tune of `config`) costs its training passes plus one forward pass over the
validation set; the head-only baseline passes its steps forward only (nothing in the encoder
trains), and a causal LM's baseline (no head) only evaluates. The share counts passes, not FLOPs:
a backward pass that computes every weight's gradient (gradient-importance) costs more than one of
a LoRA run, and `wall_s` says what it took.
"""

from __future__ import annotations

from dataclasses import dataclass

from profiler.schema import GainCost
from profiler.training.finetune import TrainConfig


@dataclass(frozen=True)
class Work:
    """Examples passed forward and backward, and fine-tuning runs trained (probes and baselines)."""

    forward: int = 0
    backward: int = 0
    probes: int = 0

    def __add__(self, other: Work) -> Work:
        return Work(self.forward + other.forward, self.backward + other.backward, self.probes + other.probes)


def probe_work(config: TrainConfig, validation: int, runs: int = 1) -> Work:
    """The work of `runs` fine-tunes with `config` and their evaluations on `validation` examples."""
    examples = config.steps * config.batch_size
    return Work(runs * (examples + validation), runs * examples, runs)


def baseline_work(config: TrainConfig, validation: int, head: bool) -> Work:
    """The work of the head-only baseline: its steps pass forward only when there is a `head` to fit, then its
    evaluation on `validation` examples (a causal LM's zero-shot baseline only evaluates)."""
    return Work((config.steps * config.batch_size if head else 0) + validation, 0, 1)


def pass_work(examples: int, backward: bool) -> Work:
    """The work of passing `examples` forward, and backward too when `backward`."""
    return Work(examples, examples if backward else 0)


def gain_cost(source: str, wall_s: float, work: Work, config: TrainConfig) -> GainCost:
    """The GainCost of a gains run: cost_share = (forward + backward examples) / (2 x steps x batch), a fraction
    of one planned fine-tuning run (0 for a run of no steps)."""
    run = 2 * config.steps * config.batch_size
    return GainCost(source=source, wall_s=wall_s, forward_examples=work.forward, backward_examples=work.backward,
                    probes=work.probes, run_steps=config.steps, run_batch_size=config.batch_size,
                    cost_share=(work.forward + work.backward) / run if run else 0.0)
