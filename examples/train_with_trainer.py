"""Train a whole plan (LoRA, BitFit, norms, a bottleneck adapter) with the transformers `Trainer`.

    python examples/train_with_trainer.py

peft holds what it can express (LoRA and the norms); the planner attaches the rest (per-module BitFit,
the adapter). The trainer sees exactly the plan's parameters, and every one of them moves.
"""

import tempfile

import torch
from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

from app.planning import problem_from_profile
from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.methods.trainable import load_trainable, make_trainable, save_trainable
from profiler.models.build import hf_config
from solver import solve

CONFIG = {"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2,
          "intermediate_size": 128, "vocab_size": 200}


class Toy(torch.utils.data.Dataset):
    """Sequences whose label is whether token 7 appears more often than token 9."""

    def __init__(self, n: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(10, 200, (n, 12), generator=generator)
        self.labels = torch.randint(0, 2, (n,), generator=generator)
        self.ids[:, :3] = torch.where(self.labels[:, None] == 1, 7, 9)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones_like(self.ids[i]), "labels": self.labels[i]}


def main() -> None:
    # Data: the model's candidates, measured on its base (the BERT inside the classifier).
    options = ProfileOptions(methods=["lora", "bitfit", "norm_affine", "adapter"], ranks=[4], bottlenecks=[8],
                             batch_size=2, seq_len=12, device="cpu", repeats=1)
    profile = profile_model(ModelSpec(config=CONFIG), options)

    # Model and solve: a plan within 5 % of the parameters, with gains favouring LoRA on values.
    gains = {"methods": {"lora": 0.2, "bitfit": 0.05, "norm_affine": 0.05, "adapter": 0.3},
             "candidates": {"encoder.layer.1.attention.self.value:lora:r4": 2.0}}
    plan = solve(problem_from_profile(profile, {"params": "5%"}, gains=gains))

    # Make the plan trainable on the model you train: its BERT is the profiled model.
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(hf_config({**CONFIG, "num_labels": 2}))
    trainable = make_trainable(model, plan, base_path="bert")
    for p in model.classifier.parameters():  # the task head trains with every plan
        p.requires_grad_(True)
    head = sum(p.numel() for p in model.classifier.parameters())
    before = {n: p.detach().clone() for n, p in trainable.model.named_parameters() if p.requires_grad}

    # Train a few steps with the transformers Trainer.
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, max_steps=5, per_device_train_batch_size=8, learning_rate=1e-2,
                                 report_to=[], use_cpu=True, save_strategy="no", logging_strategy="no")
        Trainer(model=trainable.model, args=args, train_dataset=Toy(64)).train()
        saved = save_trainable(trainable.model, f"{out}/plan.safetensors")
        load_trainable(trainable.model, f"{out}/plan.safetensors")

    # Print: the count the trainer trained, and whether every planned tensor moved.
    moved = [n for n, p in trainable.model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    print(f"plan: {len(plan.selected)} candidates, {plan.params:,} params; peft holds "
          f"{len(trainable.export.exported)}, the planner {len(trainable.attachments)}")
    print(f"trainable besides the head: {trainable.num_parameters() - head:,} "
          f"({'equal' if trainable.num_parameters() - head == plan.params else 'DIFFERENT'})")
    print(f"tensors moved: {len(moved)} of {len(before)}; saved {len(saved)} tensors")


if __name__ == "__main__":
    main()
