"""Tiny random models, a stand-in tokenizer and toy data, shared by every test (fast, CPU, offline)."""

from __future__ import annotations

import os

import numpy as np
import torch

from profiler.training.datasets import Dataset

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_BERT = {"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2,
             "intermediate_size": 128, "vocab_size": 500}
"""A 2-layer BERT of hidden size 64."""
SLOW_BERT = {**TINY_BERT, "hidden_size": 128, "intermediate_size": 256}
"""TINY_BERT twice as wide: measurements long enough to interrupt."""
DEEP_BERT = {**TINY_BERT, "num_hidden_layers": 12, "hidden_size": 16, "intermediate_size": 24, "vocab_size": 100}
"""12 layers, so that layer 1 and layer 11 paths test peft's regex pitfalls."""
TINY_GPT2 = {"model_type": "gpt2", "n_layer": 2, "n_embd": 48, "n_head": 2, "vocab_size": 300, "n_positions": 64}
TINY_LLAMA = {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
              "num_key_value_heads": 2, "intermediate_size": 96, "vocab_size": 200}
"""A 2-layer Llama with grouped-query attention (4 heads, 2 key/value heads)."""
WORDS = ["film", "plot", "actor", "scene", "music", "story", "good", "bad"]


def real_model(config: dict, task: str = "classification") -> torch.nn.Module:
    """A CPU model of a config dict as the profiler builds it for `task` (the base model for classification;
    "auto" or "causal_lm": ForCausalLM for decoders), random weights (seed 0), eval mode, frozen."""
    from profiler.models.build import build
    from profiler.schema import ModelSpec

    torch.manual_seed(0)
    return build(ModelSpec(config=config), "cpu", task=task).model.requires_grad_(False)


class Tokenizer:
    """Words -> ids by hashing (a stand-in with the transformers call signature)."""

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab

    def __call__(self, texts: list[str], truncation: bool, max_length: int, padding: str,
                 return_tensors: str) -> dict[str, torch.Tensor]:
        ids = torch.zeros(len(texts), max_length, dtype=torch.long)
        mask = torch.zeros(len(texts), max_length, dtype=torch.long)
        for i, text in enumerate(texts):
            words = [2 + sum(map(ord, w)) % (self.vocab - 2) for w in text.split()][:max_length]
            ids[i, :len(words)] = torch.tensor(words)
            mask[i, :len(words)] = 1
        return {"input_ids": ids, "attention_mask": mask}


def toy_texts(n: int, seed: int = 0) -> Dataset:
    """Sentences whose label is whether they contain 'good' more than 'bad'."""
    rng = np.random.default_rng(seed)
    words = WORDS[:6]
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(2))
        body = list(rng.choice(words, 5)) + ["good" if label else "bad"] * 2
        rng.shuffle(body)
        texts.append(" ".join(body))
        labels.append(label)
    return Dataset(np.array(labels), ["0", "1"], texts=texts)


CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> {% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}")
"""A ChatML-like template over whitespace-separated tokens."""


def save_tiny_llama(path, tokenizer: bool = True) -> None:
    """TINY_LLAMA (tied embeddings) saved as safetensors at `path`, with a word-level tokenizer over WORDS
    (pad, unk, `<|im_start|>`, `<|im_end|>` as the end token) and CHAT_TEMPLATE, unless `tokenizer` is False."""
    from tokenizers import Tokenizer as WordTokenizer
    from tokenizers import models, pre_tokenizers
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    from profiler.models.build import hf_config

    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", "user", "assistant", *WORDS])}
    path.mkdir()
    if tokenizer:
        words = WordTokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        fast = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="<unk>", pad_token="<pad>",
                                       eos_token="<|im_end|>", additional_special_tokens=["<|im_start|>"])
        fast.chat_template = CHAT_TEMPLATE
        fast.save_pretrained(path)
    torch.manual_seed(0)
    config = {**TINY_LLAMA, "vocab_size": len(vocab), "tie_word_embeddings": True, "pad_token_id": 0,
              "eos_token_id": 3}
    LlamaForCausalLM(hf_config(config)).save_pretrained(path)


def toy_completions(n: int, seed: int = 0) -> Dataset:
    """Prompts of four to seven words from WORDS with "good" or "bad" twice among them; the completion is that word."""
    rng = np.random.default_rng(seed)
    prompts, completions = [], []
    for _ in range(n):
        answer = "good" if rng.integers(2) else "bad"
        words = [*rng.choice(WORDS[:6], int(rng.integers(2, 6))), answer, answer]
        rng.shuffle(words)
        prompts.append(" ".join(words))
        completions.append(answer)
    return Dataset(None, [], prompts=prompts, completions=completions)
