"""The model's repeated layers (blocks), numbered from the input side."""

from __future__ import annotations

from torch import nn


def find_layers(model: nn.Module) -> list[str]:
    """Paths of the model's layers: the longest ModuleList/Sequential of same-type blocks (ties: more params).

    Falls back to the top-level children that hold parameters; [] for a model without any.
    """
    best: tuple[int, int, str, list[str]] | None = None
    for path, module in model.named_modules():
        if not isinstance(module, (nn.ModuleList, nn.Sequential)) or len(module) < 2:
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
