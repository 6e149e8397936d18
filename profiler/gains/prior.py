"""The prior: a documented default gain per candidate when there is no data at all.

Where the numbers come from: measurements of all-MiniLM-L6-v2 on Rotten Tomatoes (2 CPU cores,
~100 s of training, mean pooling + linear head; /work/shared/design/FIELD-NOTES.md). Head only
75.7 %; LoRA r=8 on query/value of all 6 layers 78.2-79.8 % (+2.5..+4.1 points over 12 modules,
so ~0.25 points per module at r=8); BitFit on all linear biases 76.9 % (+1.2 over 36 biases,
~0.035 each); LayerNorm affines 75.6 % (about no gain: ~0.01 each, kept positive so they are not
free to ignore). Ranks, bottlenecks and prompt lengths scale with the square root of the setting
(diminishing returns of extra rank), bottleneck adapters like LoRA of rank b/2 (same parameter
count on a square layer), a whole soft prompt like 0.5 points at length 20, an (IA)^3 vector like a
bias of BitFit (one vector per module, a scale instead of a shift; not measured here). Every layer is
treated alike: the prior knows nothing about where a model benefits most. Plans resting on it
should be treated as rough; replace it with gradient or probe estimates from the user's data.
"""

from __future__ import annotations

import math
from typing import Any

from profiler.gains.estimate import GainEstimate

BASIS = "FIELD-NOTES: all-MiniLM-L6-v2 on Rotten Tomatoes, 2 CPU cores, ~100 s of training"
# method -> (points at the reference setting, reference setting or None)
SETTING_KEYS = ("rank", "bottleneck", "length")  # MethodInfo.setting of lora, adapter, prompt_tuning
PRIOR: dict[str, tuple[float, int | None]] = {
    "lora": (0.25, 8),
    "adapter": (0.25, 16),
    "bitfit": (0.035, None),
    "norm_affine": (0.01, None),
    "prompt_tuning": (0.5, 20),
    "ia3": (0.035, None),
}


def prior_gain(method: str, setting: int | None) -> GainEstimate:
    """The prior gain (accuracy points) of `method` at `setting`; unknown methods get LoRA's r=8 value."""
    points, reference = PRIOR.get(method, PRIOR["lora"])
    scale = math.sqrt(setting / reference) if reference is not None and setting is not None else 1.0
    return GainEstimate(gain=points * scale, source="prior",
                        details={"basis": BASIS, "points_at_reference": points, "reference_setting": reference,
                                 "setting_scale": scale})


def prior_gains(candidates: list[Any]) -> dict[str, GainEstimate]:
    """Prior estimates for profile candidates (anything with `id`, `method` and `config`)."""
    out = {}
    for c in candidates:
        config = c.config or {}
        setting = next((config[k] for k in SETTING_KEYS if isinstance(config.get(k), int)), None)
        out[c.id] = prior_gain(c.method, setting)
    return out
