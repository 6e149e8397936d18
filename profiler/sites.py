"""Where methods can attach (`Site`): linear/conv weights, biases, norms, the input embedding, adapter positions;
and the model's repeated layers, numbered from the input side."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from profiler.measure.tensors import TensorSpec
from profiler.measure.trace import Trace

ATTENTION = re.compile(r"attn|attention", re.IGNORECASE)
NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm, nn.modules.batchnorm._BatchNorm,
              nn.RMSNorm)


@dataclass(frozen=True)
class Site:
    """A place a method can attach: a module path, its kind, layer index and recorded shapes.

    kind: "linear" (Linear / transformers Conv1D), "conv" (Conv2d, groups 1), "bias", "norm",
    "embedding" (input token embedding), "adapter" (output of a layer's attention or MLP block).
    `input_of` names the module whose input this site reads too (`Call.input_of`): sites of one name
    read one tensor, whose saved copy any of their adapters pays once.
    """

    path: str
    kind: str
    layer: int | None
    module_type: str
    in_spec: TensorSpec | None
    out_spec: TensorSpec | None
    dims: dict[str, Any] = field(default_factory=dict)
    position: str | None = None
    input_of: str | None = None


def find_layers(model: nn.Module) -> list[str]:
    """Paths of the model's layers: the longest ModuleList (a 1-layer model's too) or Sequential (of 2 or more:
    one child is usually a wrapper) of same-type blocks (ties: more params).

    Falls back to the top-level children that hold parameters; [] for a model without any.
    """
    best: tuple[int, int, str, list[str]] | None = None
    for path, module in model.named_modules():
        if not isinstance(module, (nn.ModuleList, nn.Sequential)) or len(module) < (1 if isinstance(module, nn.ModuleList) else 2):
            continue
        kinds = {type(child) for child in module}
        if len(kinds) != 1 or next(iter(kinds)) in (nn.Linear, nn.Dropout, nn.Identity):
            continue
        params = sum(p.numel() for p in module.parameters())
        if params == 0:
            continue
        prefix = f"{path}." if path else ""
        key = (len(module), params, path, [f"{prefix}{name}" for name, _ in module.named_children()])
        if best is None or key[:2] > best[:2]:
            best = key
    if best is not None:
        return best[3]
    return [name for name, child in model.named_children() if any(True for _ in child.parameters())]


def layer_of(path: str, layers: list[str], order: dict[str, int]) -> int | None:
    """Layer index of a module path: its block, 0 for modules run before the first block, None after the last."""
    for i, layer in enumerate(layers):
        if path == layer or path.startswith(layer + "."):
            return i
    if not layers or path not in order or layers[0] not in order:
        return None
    return 0 if order[path] < order[layers[0]] else None


def is_norm(module: nn.Module) -> bool:
    """Whether a module is a normalization layer (torch types, or a class named *Norm such as LlamaRMSNorm)."""
    return isinstance(module, NORM_TYPES) or type(module).__name__.endswith(("RMSNorm", "LayerNorm"))


def _linear_dims(module: nn.Module) -> dict[str, int] | None:
    if isinstance(module, nn.Linear):
        return {"d_in": module.in_features, "d_out": module.out_features}
    if type(module).__name__ == "Conv1D" and hasattr(module, "nf"):  # transformers' GPT-2 linear
        return {"d_in": int(module.weight.shape[0]), "d_out": int(module.weight.shape[1])}
    return None


def _norm_dims(module: nn.Module) -> dict[str, Any]:
    if isinstance(module, (nn.modules.instancenorm._InstanceNorm, nn.modules.batchnorm._BatchNorm)):
        return {"features": module.num_features}
    if isinstance(module, nn.GroupNorm):
        return {"features": module.num_channels}
    shape = getattr(module, "normalized_shape", None)
    if shape is None:
        weight = getattr(module, "weight", None)
        shape = tuple(weight.shape) if weight is not None else ()
    return {"shape": list(shape)} if shape else {}


def _site_kinds(module: nn.Module) -> Iterable[tuple[str, dict[str, Any]]]:
    dims = _linear_dims(module)
    if dims is not None:
        yield "linear", dims
    elif isinstance(module, nn.Conv2d) and module.groups == 1:
        yield "conv", {"d_in": module.in_channels, "d_out": module.out_channels}
    if is_norm(module):
        nd = _norm_dims(module)
        if nd:
            yield "norm", nd
    elif isinstance(getattr(module, "bias", None), nn.Parameter):
        yield "bias", {"d_out": int(module.bias.numel())}  # type: ignore[union-attr]


def _adapter_sites(model: nn.Module, layers: list[str], trace: Trace) -> list[Site]:
    """Per layer, the last linear of its attention block ("after_attention") and the last other linear ("after_mlp")."""
    sites = []
    for index, layer in enumerate(layers):
        linears = [(trace.calls[p].order, p, m) for p, m in model.get_submodule(layer).named_modules(prefix=layer)
                   if _linear_dims(m) is not None and p in trace.calls]
        linears.sort(key=lambda t: t[0])
        rel = {p: p[len(layer) + 1:] for _, p, _ in linears}
        for position, pick in (("after_attention", True), ("after_mlp", False)):
            chosen = [(p, m) for _, p, m in linears if bool(ATTENTION.search(rel[p])) == pick]
            if chosen:
                path, module = chosen[-1]
                call = trace.calls[path]
                sites.append(Site(path, "adapter", index, type(module).__name__, call.first_in, call.first_out,
                                  _linear_dims(module) or {}, position))
    return sites


def _embedding_site(model: nn.Module, trace: Trace, order: dict[str, int], layers: list[str]) -> list[Site]:
    getter = getattr(model, "get_input_embeddings", None)
    embedding = getter() if callable(getter) else None
    if not isinstance(embedding, nn.Embedding):
        return []
    path = next(p for p, m in model.named_modules() if m is embedding)
    if path not in trace.calls:
        return []
    call = trace.calls[path]
    return [Site(path, "embedding", 0 if layers else None, "Embedding", call.first_in, call.first_out,
                 {"d_out": embedding.embedding_dim})]


def matches(path: str, patterns: list[str] | None) -> bool:
    """peft-style target matching: a pattern equal to the path, a suffix after a dot, or a full regex match."""
    if patterns is None:
        return True
    return any(path == p or path.endswith("." + p) or re.fullmatch(p, path) for p in patterns)


def find_sites(model: nn.Module, layers: list[str], trace: Trace, target_modules: list[str] | None = None) -> list[Site]:
    """All sites of modules that ran in `trace`, in forward order, restricted to `target_modules` patterns."""
    order = {p: c.order for p, c in trace.calls.items()}
    sites: list[Site] = []
    for path, module in model.named_modules():
        if path not in trace.calls or not path:
            continue
        call = trace.calls[path]
        for kind, dims in _site_kinds(module):
            sites.append(Site(path, kind, layer_of(path, layers, order), type(module).__name__,
                              call.first_in, call.first_out, dims, input_of=call.input_of))
    sites += _adapter_sites(model, layers, trace)
    sites += _embedding_site(model, trace, order, layers)
    sites.sort(key=lambda s: (order[s.path], s.kind))
    return [s for s in sites if matches(s.path, target_modules)]
