"""Training: tasks (model + data), the fine-tuning loop, plan validation, datasets."""
