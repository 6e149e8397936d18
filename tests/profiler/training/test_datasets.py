"""Uploaded datasets: JSONL and NPZ parsing, validation errors, splits."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from profiler.training.datasets import DatasetError, parse_jsonl, parse_npz


def jsonl(rows: list[object]) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


def test_jsonl_maps_labels_to_sorted_classes() -> None:
    data = parse_jsonl(jsonl([{"text": f"t{i}", "label": ["pos", "neg"][i % 2]} for i in range(6)]) + b"\n\n")
    assert data.kind == "text" and len(data) == 6 and data.classes == ["neg", "pos"]
    assert data.y.tolist() == [1, 0, 1, 0, 1, 0]
    assert data.summary()["class_counts"] == [3, 3]


def test_integer_labels_sort_numerically() -> None:
    data = parse_jsonl(jsonl([{"text": "x", "label": v} for v in (10, 2, 10, 2)]))
    assert data.classes == ["2", "10"] and data.y.tolist() == [1, 0, 1, 0]


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "line 1: invalid JSON"),
    (jsonl([{"text": "", "label": 1}] * 4), "line 1: \"text\" must be a non-empty string"),
    (jsonl([{"text": "a", "label": 1.5}] * 4), "\"label\" must be"),
    (jsonl([{"text": "a", "label": 1}] * 4), "at least 2 distinct labels"),
    (jsonl([{"text": "a", "label": 1}]), "need at least 4"),
    (b"\xff\xfe", "not UTF-8"),
    (jsonl([[1, 2]] * 4), "expected an object"),
    (jsonl([{"text": "a", "label": True}] * 4), "\"label\" must be"),
    (jsonl([{"prompt": "q", "completion": ""}] * 4), "line 1: \"completion\" must be a non-empty string"),
    (jsonl([{"prompt": " ", "completion": "a"}] * 4), "line 1: \"prompt\" must be a non-empty string"),
    (jsonl([{"completion": "a"}] * 4), "line 1: \"prompt\" must be a non-empty string"),
    (jsonl([{"text": "a", "label": 0}, {"text": "b", "label": 1}, {"text": "c"}]),
     "line 3: a \\{\"text\"\\} \\(no label\\) row after \\{\"text\", \"label\"\\} rows"),
    (jsonl([{"text": "a"}, {"prompt": "p", "completion": "c"}]), "line 2: a \\{\"prompt\", \"completion\"\\} row"),
    (jsonl([{"text": "a"}] * 3), "need at least 4"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_jsonl_rejects_bad_input(body: bytes, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_jsonl(body)


def test_jsonl_prompt_completion_and_corpus_rows_train_a_causal_lm() -> None:
    pairs = parse_jsonl(jsonl([{"prompt": f"p{i}", "completion": "c" * (i + 1)} for i in range(5)]))
    assert (pairs.kind, pairs.task, len(pairs), pairs.y) == ("completion", "causal_lm", 5, None)
    assert pairs.summary()["completion_chars"] == {"min": 1, "max": 5, "mean": 3.0}
    train, val = pairs.split(0.4, seed=0)
    assert sorted(train.prompts + val.prompts) == [f"p{i}" for i in range(5)] and len(val) == 2
    assert all(len(c) == int(p[1:]) + 1 for p, c in zip(train.prompts, train.completions, strict=True))
    corpus = parse_jsonl(jsonl([{"text": f"line {i}"} for i in range(4)]))
    assert (corpus.kind, corpus.task, corpus.prompts, corpus.completions[0]) == ("corpus", "causal_lm", None, "line 0")


def npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_npz_round_trip_and_split() -> None:
    x = np.random.default_rng(0).normal(size=(20, 3, 4)).astype(np.float64)
    data = parse_npz(npz(x=x, y=np.arange(20) % 3))
    assert data.kind == "array" and data.x.dtype == np.float32 and data.summary()["shape"] == [3, 4]
    train, val = data.split(0.25, seed=1)
    assert len(train) == 15 and len(val) == 5
    both = sorted(np.concatenate([train.x, val.x]).reshape(20, -1).tolist())
    assert both == sorted(data.x.reshape(20, -1).tolist())


@pytest.mark.parametrize(("arrays", "message"), [
    ({"x": np.zeros((4, 2))}, "lacks array"),
    ({"x": np.zeros((4, 2)), "y": np.zeros(5, dtype=int)}, "x has 4 examples but y has 5"),
    ({"x": np.full((4, 2), np.nan), "y": np.arange(4) % 2}, "NaN"),
    ({"x": np.zeros(4), "y": np.arange(4) % 2}, "features after"),
    ({"x": np.zeros((4, 2)), "y": np.zeros(4)}, "1-D integer"),
])
def test_npz_rejects_bad_input(arrays: dict, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_npz(npz(**arrays))


def test_npz_rejects_garbage_and_pickles() -> None:
    for body in (b"garbage", b""):  # an empty body made numpy raise EOFError (a 500 before)
        with pytest.raises(DatasetError, match="not a readable"):
            parse_npz(body)
    with pytest.raises(DatasetError):
        parse_npz(npz(x=np.array([object()] * 4, dtype=object), y=np.arange(4) % 2))
    bare = io.BytesIO()
    np.save(bare, np.zeros((4, 2)))
    with pytest.raises(DatasetError, match="not an .npz archive"):
        parse_npz(bare.getvalue())


def test_user_task_from_a_model_directory(tmp_path) -> None:
    from transformers import BertTokenizer

    from profiler.training.task import user_task
    from tests.tiny import TINY_BERT, real_model, toy_texts

    real_model(TINY_BERT).save_pretrained(tmp_path / "model")
    with pytest.raises(DatasetError, match="has no tokenizer .* a text dataset needs one"):  # no silent [UNK]s
        user_task(str(tmp_path / "model"), toy_texts(20))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film"]) + "\n")
    BertTokenizer(str(vocab)).save_pretrained(tmp_path / "model")
    task = user_task(str(tmp_path / "model"), toy_texts(20), validation=0.25, max_len=8)
    assert len(task.train) == 15 and len(task.validation) == 5 and task.num_classes == 2
    ids = task.train.inputs["input_ids"]
    assert ids.shape == (15, 8) and {5, 6} & set(ids.flatten().tolist())  # "good"/"bad" are real tokens
