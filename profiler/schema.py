"""Pydantic schemas at the profiler's edges: what to profile, how, and the resulting Profile.

Pure pydantic (no torch import), so the web service can import it cheaply.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from solver import Strict

DEFAULT_METHODS = ["lora", "adapter", "bitfit", "norm_affine", "prompt_tuning"]
MAX_SETTINGS = 32
"""Most values of one setting list (ranks, bottlenecks, prompt lengths)."""
MAX_SEED = 2**63 - 1
MAX_PATTERNS, MAX_PATTERN_CHARS = 256, 256


class ModelSpec(Strict):
    """Which model to profile: exactly one of a catalog `name`, a transformers `config` dict, a local `path`."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    config: dict[str, Any] | None = None
    path: str | None = Field(default=None, min_length=1, max_length=4096)

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSpec:
        given = [k for k in ("name", "config", "path") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of name, config, path (got {given or 'none'})")
        if self.config is not None and not isinstance(self.config.get("model_type"), str):
            raise ValueError("config: must include a string `model_type`")
        return self

    def label(self) -> str:
        """A short human-readable name of the model."""
        if self.name is not None:
            return self.name
        if self.config is not None:
            return f"config:{self.config['model_type']}"
        return str(self.path).rstrip("/").rsplit("/", 1)[-1]


def _positive_unique(values: list[int], maximum: int, field: str) -> list[int]:
    if not values:
        raise ValueError(f"{field}: give at least one value")
    for v in values:
        if not 1 <= v <= maximum:
            raise ValueError(f"{field}: {v} is outside 1..{maximum}")
    return sorted(set(values))


class DeviceSpec(Strict):
    """A GPU as published figures: dense peak rates per dtype, memory bandwidth and size, kernel launch cost."""

    name: str = Field(min_length=1, max_length=64)
    matrix_tflops: dict[Literal["float32", "bfloat16", "float16"], float] = Field(
        description="Dense peak of matrix products (tensor cores; float32 without TF32, as torch runs it), TFLOP/s.")
    vector_tflops: dict[Literal["float32", "bfloat16", "float16"], float] = Field(
        description="Peak of other operations (CUDA cores), TFLOP/s.")
    bandwidth_gbs: float = Field(gt=0, le=1e6, description="Memory bandwidth, GB/s.")
    memory_gb: float = Field(gt=0, le=1e5, description="Memory size, GB (10^9 bytes).")
    launch_us: float = Field(default=5.0, ge=0, le=1e4, description="Cost of one kernel launch, microseconds.")
    source: str = Field(default="", max_length=500, description="Where the figures come from.")

    @field_validator("matrix_tflops", "vector_tflops")
    @classmethod
    def _rates(cls, rates: dict[str, float]) -> dict[str, float]:
        if "float32" not in rates or any(not 0 < v <= 1e5 for v in rates.values()):
            raise ValueError("give positive TFLOP/s per dtype, float32 among them")
        return rates


class ProfileOptions(Strict):
    """What to measure (methods and their settings, sites) and how (shape, device, dtype, repeats)."""

    methods: list[str] = Field(default_factory=lambda: list(DEFAULT_METHODS), min_length=1, max_length=16)
    ranks: list[int] = Field(default_factory=lambda: [4, 8, 16], max_length=MAX_SETTINGS)
    bottlenecks: list[int] = Field(default_factory=lambda: [16, 64], max_length=MAX_SETTINGS)
    prompt_lengths: list[int] = Field(default_factory=lambda: [10, 20], max_length=MAX_SETTINGS)
    target_modules: list[str] | None = Field(default=None, max_length=MAX_PATTERNS)
    batch_size: int = Field(default=8, ge=1, le=4096)
    seq_len: int = Field(default=128, ge=1, le=131072)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="Dtype of the frozen weights: auto takes the config's torch_dtype, else float32. "
        "Adapters train in float32 beside a half-precision base (peft's default).")
    task: Literal["auto", "causal_lm", "classification"] = Field(
        default="auto", description="The model trained: causal_lm profiles the ForCausalLM class (lm_head included); "
        "classification the base model with a linear head of num_labels; auto: causal_lm for decoder configs.")
    num_labels: int = Field(default=2, ge=2, le=100_000, description="Classes of a classification head.")
    checkpointing: bool = Field(default=False, description="Gradient checkpointing per layer: layers keep only "
                                "their input and recompute their forward in the backward pass.")
    quantization: Literal["none", "int8", "nf4"] = Field(
        default="none", description="Storage of the frozen linear weights inside layers (QLoRA-style int8 or NF4), "
        "for the memory account only (no quantized kernels run).")
    allow_defaults: bool = Field(default=False, description="Profile a config dict that leaves shape keys (layers, "
                                 "hidden size, heads, ...) to transformers' defaults; the profile notes them.")
    target_device: str | DeviceSpec | None = Field(
        default=None, description="Plan for this GPU (a name from GET /v1/devices, or its figures): nothing is timed "
        "locally; latencies are roofline predictions for it, and memory counts its CUDA overhead.")
    timing: Literal["measure", "none"] = Field(
        default="measure", description="none: nothing is timed; units run on the meta device (shapes only): FLOPs "
        "and memory are counted as usual, latencies are 0.")
    repeats: int = Field(default=5, ge=1, le=1000, description="Timed repeats per measurement (after warm-up).")
    warmup: int = Field(default=2, ge=0, le=100, description="Untimed warm-up runs per measurement.")
    threads: int | None = Field(default=None, ge=1, le=1024, description="CPU threads; default: torch's current count.")
    seed: int = Field(default=0, ge=0, le=MAX_SEED)

    @field_validator("methods")
    @classmethod
    def _methods_unique(cls, methods: list[str]) -> list[str]:
        if len(set(methods)) != len(methods):
            raise ValueError("methods: duplicate method")
        return methods

    @field_validator("ranks")
    @classmethod
    def _ranks(cls, v: list[int]) -> list[int]:
        return _positive_unique(v, 4096, "ranks")

    @field_validator("bottlenecks")
    @classmethod
    def _bottlenecks(cls, v: list[int]) -> list[int]:
        return _positive_unique(v, 65536, "bottlenecks")

    @field_validator("prompt_lengths")
    @classmethod
    def _prompt_lengths(cls, v: list[int]) -> list[int]:
        return _positive_unique(v, 4096, "prompt_lengths")

    @field_validator("target_modules")
    @classmethod
    def _targets(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v or any(not p for p in v):
            raise ValueError("target_modules: give non-empty patterns, or null for all sites")
        for i, pattern in enumerate(v):
            if len(pattern) > MAX_PATTERN_CHARS:
                raise ValueError(f"target_modules.{i}: {len(pattern)} characters; the limit is {MAX_PATTERN_CHARS}")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"target_modules.{i}: {pattern!r} is not a regular expression ({exc})") from None
        return v


class ModelInfo(Strict):
    """The profiled model: name, exact parameter count, layer count, whole-model forward FLOPs."""

    name: str
    total_params: int = Field(ge=0)
    num_layers: int = Field(ge=0)
    forward_flops: float = Field(ge=0, description="Whole-model forward FLOPs at the profiled shape.")
    architecture: str = ""
    task: str = Field(default="", description="causal_lm or classification: what the profiled class trains for.")
    head: str = Field(default="", description="The head the task trains with (lm_head, tied or not; a linear head).")


class ProfileCandidate(Strict):
    """A solver candidate (costs measured, gain null until estimated) plus profiler details."""

    id: str
    method: str
    group: str | None = None
    layer: int | None = None
    gain: float | None = None
    gain_source: str | None = Field(default=None, description="Where `gain` came from: user, prior, gradient or probe.")
    gain_details: dict[str, Any] | None = Field(default=None, description="How the gain was estimated (source-specific).")
    params: int = Field(gt=0)
    flops: float = Field(gt=0, description="Training FLOPs added per step (forward + backward).")
    latency_ms: float = Field(ge=0, description="Inference latency added per batch (unmerged).")
    memory_bytes: float = Field(ge=0, description="Training memory added: state_bytes + activation_bytes (a saved "
                                "input shared with other candidates is counted in `saved_inputs`).")
    site: str
    config: dict[str, Any] = Field(default_factory=dict)
    inference_flops: float = Field(ge=0, description="Forward FLOPs added per batch.")
    train_step_ms: float = Field(ge=0, description="Training-step time added per batch.")
    latency_spread_ms: float = Field(default=0.0, ge=0, description="Interquartile range of latency_ms.")
    train_step_spread_ms: float = Field(default=0.0, ge=0, description="Interquartile range of train_step_ms.")
    activation_bytes: float = Field(default=0.0, ge=0, description="Activations it saves for backward, besides "
                                    "its saved input.")
    state_bytes: float = Field(default=0.0, ge=0, description="Its trainable parameters, gradients and AdamW moments.")
    saved_input: str | None = Field(default=None, description="Key of the input activation it saves (in "
                                    "`saved_inputs`): paid once by every candidate that saves it.")
    peak_memory_bytes: float | None = Field(default=None, description="Measured CUDA peak added (CUDA only).")
    measurement: str = Field(default="", description="Key of the shared measurement this came from.")
    estimated: list[str] = Field(
        default_factory=list,
        description="Timing fields estimated from FLOPs (at the profile's measured ms per FLOP) because the "
        "measured difference was lost in timing noise.",
    )


class ProfileLayer(Strict):
    """Shared cost of a frozen layer (backward reaches it) plus its forward cost."""

    index: int = Field(ge=0)
    path: str = ""
    backward_flops: float = Field(ge=0)
    memory_bytes: float = Field(ge=0, description="Activations saved for the layer's backward.")
    forward_flops: float = Field(ge=0)
    forward_ms: float = Field(ge=0)
    backward_ms: float = Field(ge=0)
    forward_spread_ms: float = Field(default=0.0, ge=0)
    backward_spread_ms: float = Field(default=0.0, ge=0)


class SavedInput(Strict):
    """An activation several sites read (q, k and v read one input): saved once when any adapter needs it."""

    key: str
    layer: int | None = None
    bytes: float = Field(ge=0)


class MemoryParts(Strict):
    """Training memory by part, bytes: what the `memory_breakdown` of a plan adds up."""

    weights: float = Field(default=0.0, ge=0, description="Frozen weights in their storage dtype (or quantized).")
    trainable_state: float = Field(default=0.0, ge=0, description="Trainable parameters, gradients, AdamW moments.")
    activations: float = Field(default=0.0, ge=0, description="Tensors saved for backward, each storage once.")
    logits: float = Field(default=0.0, ge=0, description="LM heads: the logits and the loss's float32 copy.")
    overhead: float = Field(default=0.0, ge=0, description="CUDA context and allocator reserve on GPU; 0 on CPU.")


class ProfileMemory(Strict):
    """The fixed parts of training memory (paid by any plan) and how the parts are counted."""

    fixed: MemoryParts = Field(default_factory=MemoryParts)
    dtype: str = Field(default="float32", description="Storage dtype of the frozen weights.")
    adapter_dtype: str = Field(default="float32", description="Dtype of new adapter parameters and their state.")
    quantization: str = "none"
    checkpointing: bool = False
    notes: list[str] = Field(default_factory=list)


class ProfileTimings(Strict):
    """Wall time spent profiling, in seconds, per stage."""

    prepare_s: float = 0.0
    measure_s: float = 0.0
    assemble_s: float = 0.0
    num_units: int = Field(default=0, validation_alias=AliasChoices("num_units", "num_tasks"),
                           description="Measurement units run (profiles stored before 0.2 call it num_tasks).")
    estimated_timings: int = Field(default=0, description="Candidate timings estimated from FLOPs (noise fallback).")


class GainCost(Strict):
    """What filling a profile's gains cost, against the fine-tuning run it plans for (docs/gains.md#cost).

    A fine-tuning run of `steps` x `batch_size` passes every example forward and backward once, 2 x steps x
    batch_size example-passes; the head-only baseline of probes passes them forward only.
    """

    source: str
    wall_s: float = Field(ge=0, description="Wall time of the whole gains run, seconds.")
    forward_examples: int = Field(ge=0, description="Examples passed forward (probes' training steps included).")
    backward_examples: int = Field(ge=0, description="Examples passed backward (probes' training steps included).")
    probes: int = Field(default=0, ge=0, description="Fine-tuning runs trained (head-only baseline included).")
    run_steps: int = Field(ge=0, description="Steps of the planned fine-tuning run (the TrainConfig's).")
    run_batch_size: int = Field(ge=1, description="Examples per step of the planned fine-tuning run.")
    cost_share: float = Field(ge=0, description="(forward + backward examples) / (2 x run_steps x run_batch_size): "
                              "the gains run's passes as a share of one planned fine-tuning run's.")


class Profile(Strict):
    """What each candidate costs on one model, device, dtype and input shape."""

    model: ModelInfo
    device: str
    dtype: str
    batch_size: int
    seq_len: int = Field(description="Tokens per example in the profiled input (patches for ViT, pixels for CNNs).")
    inputs: dict[str, list[int]] = Field(default_factory=dict, description="Input tensor shapes.")
    torch_version: str
    threads: int
    candidates: list[ProfileCandidate]
    layers: list[ProfileLayer]
    uncounted_ops: dict[str, int] = Field(default_factory=dict, description="Ops counted as 0 FLOPs (e.g. lookups, masks).")
    saved_inputs: list[SavedInput] = Field(default_factory=list)
    memory: ProfileMemory = Field(default_factory=ProfileMemory)
    timed: bool = Field(default=True, description="Whether latencies were measured (false: options.timing none).")
    target: DeviceSpec | None = Field(default=None, description="The device the latencies and memory are for.")
    timing_kind: str = Field(default="measured", description="What the latencies are: measured on `device`, "
                             "roofline:<device> (predicted for a target device), or none (not timed: 0).")
    notes: list[str] = Field(default_factory=list, description="What the profiler decided for you (sites left out...).")
    options: ProfileOptions
    spec: ModelSpec
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC), strict=False)
    timings: ProfileTimings = Field(default_factory=ProfileTimings)
    gain_cost: GainCost | None = Field(default=None, description="What estimating the gains cost (null: not "
                                       "recorded, or gains not estimated by `peft-planner gains`).")

    @property
    def task_kind(self) -> Literal["classification", "causal_lm"]:
        """The task the profiled model trains for (profiles made before tasks had kinds: classification)."""
        return "causal_lm" if self.model.task == "causal_lm" else "classification"


class CatalogEntry(Strict):
    """A built-in model shape (random weights, no download)."""

    name: str
    family: str
    description: str
    params: int = Field(description="Approximate parameter count.")


class MethodInfo(Strict):
    """A registered adapter method and its setting."""

    name: str
    description: str
    setting: str | None
    default_settings: list[int]
    mergeable: bool
    adds_latency: bool
