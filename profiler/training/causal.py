"""A causal-LM task: a decoder trained on completion tokens, its batches and its metrics.

Examples are tokenized as prompt + completion + end token (the prompt through the tokenizer's chat
template as a user turn when it has one; a corpus text is a completion without a prompt) and
left-padded, so every completion ends at the last position: `CausalLM` asks the decoder for the
logits of only the positions that predict a labelled token (`logits_to_keep`), never the whole
sequence through the vocabulary projection. Labels are the token ids where the loss counts and
`IGNORE` elsewhere. The exact match of an example is whether the argmax at every labelled position
is its token (teacher forcing): that holds exactly when greedy decoding from the prompt produces the
completion and then the end token.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from profiler.training.datasets import Dataset, DatasetError

IGNORE = -100
"""The label of a position the loss skips (prompt, padding)."""
Batch = dict[str, torch.Tensor]


class CausalLM(nn.Module):
    """A decoder (a transformers ForCausalLM: its `lm_head` is pretrained, so there is no task head to train)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def head_parameters(self) -> list[nn.Parameter]:
        """The task head's parameters: none."""
        return []

    def predictions(self, batch: Batch, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, targets): the logits at the positions predicting the batch's last labelled stretch,
        (batch, k, vocab), and the tokens they predict, (batch, k) with `IGNORE` where none counts."""
        labelled = y != IGNORE
        first = int(torch.where(labelled.any(0), torch.arange(y.shape[1], device=y.device), y.shape[1]).min())
        keep = y.shape[1] - first + 1
        logits = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                              logits_to_keep=keep).logits
        return logits[:, :-1], y[:, first:]

    def forward(self, batch: Batch) -> torch.Tensor:
        """The logits of the last position, (batch, vocab)."""
        out = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1)
        return out.logits[:, -1]

    def loss(self, batch: Batch, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per labelled token, nats."""
        logits, targets = self.predictions(batch, y)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)

    def tally(self, batch: Batch, y: torch.Tensor) -> tuple[int, float, int]:
        """(examples whose every labelled token is the argmax, summed cross-entropy in nats, labelled tokens)."""
        logits, targets = self.predictions(batch, y)
        counted = targets != IGNORE
        right = ((logits.argmax(-1) == targets) | ~counted).all(1)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum")
        return int(right.sum()), float(loss), int(counted.sum())


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """The prompt's token ids: a user turn with the assistant's turn opened when the tokenizer has a chat
    template, else the text as the tokenizer encodes it (its special tokens included)."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
        return _ids(tokenizer, text)
    return list(tokenizer(prompt)["input_ids"])


def tokenize_example(tokenizer: Any, prompt: str | None, completion: str, max_len: int,
                     number: int) -> tuple[list[int], list[int]]:
    """(token ids, labels) of one example, at most `max_len` tokens: a prompt too long loses its start; a
    corpus text too long loses its end; DatasetError naming example `number` when the completion and its end
    token leave no room for a prompt token."""
    end = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if prompt is None:
        ids = (list(tokenizer(completion)["input_ids"]) + end)[:max_len]
        return ids, [IGNORE, *ids[1:]]
    answer = _ids(tokenizer, completion) + end
    if len(answer) >= max_len:
        raise DatasetError(f"example {number}: the completion takes {len(answer)} tokens with its end token; the "
                           f"sequence limit is {max_len} (prompt included)")
    question = prompt_ids(tokenizer, prompt)[-(max_len - len(answer)):]
    return question + answer, [IGNORE] * len(question) + answer


def encode_causal(data: Dataset, tokenizer: Any | None, max_len: int) -> tuple[Batch, torch.Tensor]:
    """(inputs, labels) of a prompt/completion or corpus dataset: token ids and attention mask left-padded to
    `max_len`, labels (examples, max_len) with `IGNORE` off the completions."""
    if tokenizer is None:
        raise DatasetError("a causal-LM dataset needs a model directory with a tokenizer")
    assert data.completions is not None
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    n = len(data.completions)
    ids = torch.full((n, max_len), pad, dtype=torch.long)
    mask = torch.zeros(n, max_len, dtype=torch.long)
    labels = torch.full((n, max_len), IGNORE, dtype=torch.long)
    prompts = data.prompts or [None] * n
    for i, (prompt, completion) in enumerate(zip(prompts, data.completions, strict=True)):
        tokens, targets = tokenize_example(tokenizer, prompt, completion, max_len, i + 1)
        if len(tokens) < 2:
            raise DatasetError(f"example {i + 1}: a single token, nothing to predict")
        ids[i, max_len - len(tokens):] = torch.tensor(tokens)
        mask[i, max_len - len(tokens):] = 1
        labels[i, max_len - len(tokens):] = torch.tensor(targets)
    return {"input_ids": ids, "attention_mask": mask}, labels
