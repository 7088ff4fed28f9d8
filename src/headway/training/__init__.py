"""Fine-tuning: TrainingArguments, Trainer, data collators, schedules and callbacks.

Each public name lives in one module (``headway/__init__.py`` resolves them lazily from there).
"""
