"""A plan as Hugging Face peft configs, where it fits peft's vocabulary, and what does not fit.

* LoRA candidates -> one `LoraConfig`: `target_modules` are the exact module paths, ranks and
  alphas per module in `rank_pattern` / `alpha_pattern` (keys are escaped full paths, since peft
  matches them as regexes at the end of module names and the first match wins), the most common
  rank as `r`. Norm-affine candidates ride along as `modules_to_save` (a trainable copy of each
  norm: its weight and bias, exactly the parameters norm-affine tuning trains).
* (IA)^3 candidates -> one `IA3Config`: `target_modules` are the exact module paths,
  `feedforward_modules` a regex matching exactly those whose input is scaled (the rule of
  `profiler.methods.ia3.scales_input`, by path, so the ids suffice; peft matches a list of
  feedforward names by plain string suffix, with no dot boundary: `0.fc2` would catch `10.fc2`). Norm-affine
  candidates ride along as `modules_to_save`, as with LoRA. peft applies one config type per
  model: in a plan that also has LoRA, the LoRA config is exported and the (IA)^3 candidates
  are listed in `unsupported`.
* Norm-affine alone -> `LNTuningConfig` on those norms.
* Prompt tuning -> `PromptTuningConfig` (task type FEATURE_EXTRACTION: the encoder feeds a task
  head) when it is the plan's only method (peft cannot put a soft prompt and LoRA in one model).
* Bottleneck adapters and per-module BitFit have no peft config: they are listed in `unsupported`
  with the reason, and the plan's parameters they hold are missing from the export.

`FAMILIES` names the methods each config type writes together, for plans that keep to one
(`app.planning.exportable`, `--exportable peft`).

Paths are relative to the model the plan was made for (the profiled `AutoModel`), which is the
model to pass to `peft.get_peft_model`. peft itself is imported only to build config objects.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from profiler.candidates import CandidateRef, parse_id
from profiler.methods.ia3 import scales_input

LORA_ALPHA_PER_RANK = 2.0  # profiler.methods.lora.Lora's default: alpha = 2·r, so scale alpha/r = 2
REASONS = {
    "adapter": "bottleneck adapters have no peft config",
    "bitfit": "peft trains biases only globally (bias='all' or 'lora_only'), not per module",
    "prompt_tuning": "peft cannot combine prompt tuning with other adapters in one model",
    "ia3": "peft cannot combine (IA)^3 with LoRA in one model (one config type per model); the LoRA part is exported",
}


@dataclass(frozen=True)
class Family:
    """Methods that one peft config type expresses together: `export_plan` writes any selection of them whole."""

    peft_type: str
    label: str
    methods: frozenset[str]


# peft applies one config type per model, so an exportable plan keeps to one family. Norm-affine tuning
# rides along with LoRA and (IA)^3 as `modules_to_save`; prompt tuning goes alone; methods in no family
# (bottleneck adapters, BitFit) are never exported, for their `reason`.
FAMILIES = (
    Family("LN_TUNING", "LayerNorm tuning", frozenset({"norm_affine"})),
    Family("PROMPT_TUNING", "prompt tuning alone", frozenset({"prompt_tuning"})),
    Family("LORA", "LoRA + norms", frozenset({"lora", "norm_affine"})),
    Family("IA3", "(IA)^3 + norms", frozenset({"ia3", "norm_affine"})),
)


def reason(method: str) -> str:
    """Why the export leaves out a candidate of `method` that it cannot write beside the rest."""
    return REASONS.get(method, f"method {method!r} has no peft mapping")


class Unsupported(BaseModel):
    """A selected candidate the peft export leaves out, and why."""

    id: str
    reason: str


class PeftExport(BaseModel):
    """peft config dicts (`peft_type` + constructor arguments) and the candidates left out."""

    configs: list[dict[str, Any]] = Field(default_factory=list)
    exported: list[str] = Field(default_factory=list, description="Candidate ids covered by the configs.")
    unsupported: list[Unsupported] = Field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every selected candidate is in the configs."""
        return not self.unsupported

    def dropped_params(self, params: Mapping[str, int]) -> int:
        """Trainable parameters of the candidates left out (their counts in `params`, by candidate id)."""
        return sum(params[u.id] for u in self.unsupported)

    def summary(self, params: Mapping[str, int] | None = None) -> str:
        """One line: how many candidates (and, with `params`, parameters) the export leaves out, by reason."""
        if self.complete:
            return f"every one of the {len(self.exported)} selected candidates is exported"
        reasons = Counter(u.reason for u in self.unsupported)
        why = "; ".join(f"{n} because {reason}" for reason, n in reasons.most_common())
        total = len(self.exported) + len(self.unsupported)
        size = "" if params is None else f" ({self.dropped_params(params):,} trainable parameters)"
        return f"the peft export leaves out {len(self.unsupported)} of {total} selected candidates{size}: {why}"


def pattern(path: str) -> str:
    """A peft pattern key that matches exactly the module `path` (dots escaped)."""
    return re.escape(path)


def _lora_config(lora: list[CandidateRef], norms: list[CandidateRef]) -> dict[str, Any]:
    ranks = {ref.site: int(ref.setting or 0) for ref in lora}
    r = Counter(ranks.values()).most_common(1)[0][0]
    differ = {site: rank for site, rank in ranks.items() if rank != r}
    return {
        "peft_type": "LORA", "r": r, "lora_alpha": LORA_ALPHA_PER_RANK * r, "lora_dropout": 0.0, "bias": "none",
        "target_modules": sorted(ranks),
        "rank_pattern": {pattern(s): k for s, k in sorted(differ.items())},
        "alpha_pattern": {pattern(s): LORA_ALPHA_PER_RANK * k for s, k in sorted(differ.items())},
        "modules_to_save": sorted(ref.site for ref in norms) or None,
    }


def _ia3_config(ia3: list[CandidateRef], norms: list[CandidateRef]) -> dict[str, Any]:
    sites = sorted(ref.site for ref in ia3)
    inputs = [pattern(s) for s in sites if scales_input(s)]
    return {
        "peft_type": "IA3", "target_modules": sites,
        # fullmatch of the whole module name; the optional prefix admits a wrapping model, as target_modules do
        "feedforward_modules": rf"(?:.*\.)?(?:{'|'.join(inputs)})" if inputs else [],
        "modules_to_save": sorted(ref.site for ref in norms) or None,
    }


def export_plan(candidate_ids: list[str], token_dim: int | None = None, task_type: str | None = None) -> PeftExport:
    """The peft configs for a plan's selected candidate ids (`token_dim`: embedding width, for prompts;
    `task_type`: peft's task type, e.g. CAUSAL_LM for a causal-LM profile, so that `get_peft_model` gives the
    task's model class)."""
    refs = [parse_id(cid) for cid in candidate_ids]
    by_method: dict[str, list[CandidateRef]] = {}
    for ref in refs:
        by_method.setdefault(ref.method, []).append(ref)
    out = PeftExport()
    lora, norms, prompts = by_method.get("lora", []), by_method.get("norm_affine", []), by_method.get("prompt_tuning", [])
    ia3 = by_method.get("ia3", [])
    if lora:
        out.configs.append(_lora_config(lora, norms))
        out.exported += [r.id for r in lora + norms]
    elif ia3:
        out.configs.append(_ia3_config(ia3, norms))
        out.exported += [r.id for r in ia3 + norms]
    elif norms:
        out.configs.append({"peft_type": "LN_TUNING", "target_modules": sorted(r.site for r in norms)})
        out.exported += [r.id for r in norms]
    if prompts and len(by_method) == 1 and token_dim is not None:
        out.configs.append({"peft_type": "PROMPT_TUNING", "task_type": task_type or "FEATURE_EXTRACTION",
                            "num_virtual_tokens": prompts[0].setting, "token_dim": token_dim,
                            "num_transformer_submodules": 1})
        out.exported += [r.id for r in prompts]
    if task_type is not None:
        out.configs = [{**config, "task_type": task_type} for config in out.configs]
    exported = set(out.exported)
    for ref in refs:
        if ref.id not in exported:
            why = reason(ref.method)
            if ref.method == "prompt_tuning" and len(by_method) == 1:
                why = "prompt tuning needs the model's embedding width (token_dim)"
            out.unsupported.append(Unsupported(id=ref.id, reason=why))
    return out


def task_type(kind: str) -> str | None:
    """peft's task type for a profile's task kind: CAUSAL_LM for causal_lm, None (the base model) otherwise."""
    return "CAUSAL_LM" if kind == "causal_lm" else None


def peft_config(config: dict[str, Any]) -> Any:
    """A peft config object from an exported dict (imports peft)."""
    from peft import IA3Config, LNTuningConfig, LoraConfig, PromptTuningConfig

    kinds = {"LORA": LoraConfig, "IA3": IA3Config, "LN_TUNING": LNTuningConfig, "PROMPT_TUNING": PromptTuningConfig}
    args = {k: v for k, v in config.items() if k != "peft_type" and v is not None}
    return kinds[config["peft_type"]](**args)


def save_export(export: PeftExport, directory: str | Path) -> list[Path]:
    """`save_pretrained` each config (one subfolder per config when several); returns the folders."""
    directory = Path(directory)
    folders = []
    for i, config in enumerate(export.configs):
        folder = directory if len(export.configs) == 1 else directory / f"{i}-{config['peft_type'].lower()}"
        peft_config(config).save_pretrained(str(folder))
        folders.append(folder)
    return folders
