"""The kind of module a candidate sits on (q, k, v, o, gate, up, down, norm, bias, prompt), from its site path.

The kind is read from the path's last components, so it works on any model whose modules follow
one of the common naming schemes (BERT, LLaMA, GPT-2, DistilBERT, T5, ViT):
`encoder.layer.3.attention.self.query` -> q, `model.layers.3.mlp.gate_proj` -> gate, BERT's
`intermediate.dense` -> up and `output.dense` -> down (but `attention.output.dense` -> o),
`*LayerNorm` / `*norm` -> norm. The method decides where it says more than the path: BitFit trains
the bias of its module (kind `bias`), norm-affine tuning a norm, prompt tuning a soft prompt.
An unknown name keeps its last path component.
"""

from __future__ import annotations

import re

KINDS = ("q", "k", "v", "o", "gate", "up", "down", "norm", "bias", "prompt")
"""The known kinds, in the order a heatmap shows them (unknown kinds follow, sorted)."""

_BY_METHOD = {"bitfit": "bias", "norm_affine": "norm", "prompt_tuning": "prompt"}

# (pattern matched at the end of the lowercased path, kind); the first match wins, so the
# attention output is tested before the MLP output it would otherwise look like.
_BY_PATH: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rf"(?:^|\.)(?:{pattern})$"), kind)
    for pattern, kind in (
        (r"query|q_proj|q_lin|q", "q"),
        (r"key|k_proj|k_lin|k", "k"),
        (r"value|v_proj|v_lin|v", "v"),
        (r"attention\.output\.dense|attention\.output|o_proj|out_proj|out_lin|attn\.c_proj|o", "o"),
        (r"gate_proj|gate", "gate"),
        (r"up_proj|intermediate\.dense|fc1|c_fc|lin1|wi", "up"),
        (r"down_proj|output\.dense|fc2|mlp\.c_proj|lin2|wo", "down"),
        (r"[^.]*norm|ln_[^.]*|ln", "norm"),
    )
)


def path_kind(site: str) -> str:
    """The kind of module at `site` by its path alone: one of KINDS, or the path's last component."""
    path = site.lower()
    for pattern, kind in _BY_PATH:
        if pattern.search(path):
            return kind
    return site.rsplit(".", 1)[-1]


def module_kind(site: str, method: str) -> str:
    """The kind a candidate of `method` at `site` occupies: `bias` for BitFit, `prompt` for prompt tuning, ..."""
    return _BY_METHOD.get(method) or path_kind(site)


def kind_order(kind: str) -> tuple[int, str]:
    """Sort key of a kind: the known kinds in KINDS order, then the others by name."""
    return (KINDS.index(kind), "") if kind in KINDS else (len(KINDS), kind)
