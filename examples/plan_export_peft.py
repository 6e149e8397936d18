"""Plan LoRA and norm tuning for a model, export the plan to peft, and load it in peft.

    python examples/plan_export_peft.py

peft trains exactly as many parameters as the plan counts.
"""

import tempfile

from peft import PeftConfig, get_peft_model
from transformers import AutoModel

from app.planning import problem_from_profile
from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.methods.export import export_plan, save_export
from profiler.models.build import hf_config
from solver import solve

CONFIG = {"model_type": "bert", "num_hidden_layers": 4, "hidden_size": 64, "num_attention_heads": 2,
          "intermediate_size": 128, "vocab_size": 1000}


def main() -> None:
    # Data: a 4-layer BERT config, LoRA ranks 2, 4 and 8 on every linear, and every norm's affine.
    options = ProfileOptions(methods=["lora", "norm_affine"], ranks=[2, 4, 8], batch_size=2, seq_len=16,
                             device="cpu", repeats=1)
    profile = profile_model(ModelSpec(config=CONFIG), options)

    # Model: gains by layer (later layers worth more) and, for one module, by rank; within 4 % of the
    # model's parameters.
    gains = {"methods": {"lora": {"default": 0.5, "layers": {2: 0.8, 3: 1.0}}, "norm_affine": 0.1},
             "candidates": {"encoder.layer.3.attention.self.value:lora:r8": 2.0}}
    problem = problem_from_profile(profile, {"params": "4%"}, gains=gains)

    # Solve exactly.
    plan = solve(problem)

    # Export: the plan as peft configs, written with save_pretrained.
    export = export_plan(plan.selected)
    assert export.complete, export.unsupported
    with tempfile.TemporaryDirectory() as folder:
        (written,) = save_export(export, folder)
        config = PeftConfig.from_pretrained(str(written))

    # Load: the same architecture in transformers, wrapped by peft with the exported config.
    model = get_peft_model(AutoModel.from_config(hf_config(CONFIG)), config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    # Print: the plan's parameter count is what peft trains.
    print(f"status {plan.status}: {len(plan.selected)} candidates, {plan.params:,} params planned")
    print(f"peft {type(config).__name__}: r={config.r}, rank_pattern={dict(config.rank_pattern)}")
    print(f"peft trains {trainable:,} parameters: {'equal' if trainable == plan.params else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
