"""TrainingArguments: reference names and defaults, v4 spellings, clear errors."""

from __future__ import annotations

import dataclasses

import pytest

from headway import TrainingArguments

SHARED_DEFAULTS = [
    "per_device_train_batch_size", "per_device_eval_batch_size", "num_train_epochs", "max_steps", "learning_rate",
    "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm", "lr_scheduler_type",
    "warmup_steps", "gradient_accumulation_steps", "logging_steps", "logging_strategy", "eval_strategy",
    "save_strategy", "save_steps", "save_total_limit", "seed", "bf16", "fp16", "dataloader_num_workers",
    "remove_unused_columns", "label_names", "load_best_model_at_end", "metric_for_best_model", "greater_is_better",
    "save_only_model", "optim", "data_seed", "dataloader_drop_last", "push_to_hub", "run_name", "use_cpu",
    "resume_from_checkpoint", "eval_steps", "logging_first_step", "average_tokens_across_devices",
]


def test_defaults_match_reference(tmp_path):
    import transformers
    ref = {f.name: f.default for f in dataclasses.fields(transformers.TrainingArguments)}
    ours = {f.name: f.default for f in dataclasses.fields(TrainingArguments)}
    for name in SHARED_DEFAULTS:
        assert name in ours, name
        assert _plain(ours[name]) == _plain(ref[name]), name


def _plain(value):
    return getattr(value, "value", value)


def test_common_extras_are_accepted(tmp_path):
    args = TrainingArguments(
        output_dir=str(tmp_path), logging_dir=str(tmp_path / "logs"), logging_strategy="epoch", save_only_model=True,
        adam_beta1=0.8, adam_beta2=0.99, adam_epsilon=1e-6, optim="adamw_torch", data_seed=3,
        dataloader_drop_last=True, push_to_hub=False, run_name="x", overwrite_output_dir=True, group_by_length=True,
        gradient_checkpointing=True, disable_tqdm=True, use_cpu=True, report_to="none", warmup_ratio=0.1,
    )
    assert args.train_sampling_strategy == "group_by_length"
    assert args.report_to == []
    assert args.get_warmup_steps(100) == 10


def test_older_evaluation_strategy_spelling(tmp_path):
    args = TrainingArguments(str(tmp_path), evaluation_strategy="epoch")
    assert args.eval_strategy == "epoch" and args.do_eval
    with pytest.raises(ValueError, match="evaluation_strategy='epoch' and eval_strategy='steps' disagree"):
        TrainingArguments(str(tmp_path), evaluation_strategy="epoch", eval_strategy="steps", eval_steps=5)


def test_eval_steps_fall_back_to_logging_steps(tmp_path):
    assert TrainingArguments(str(tmp_path), eval_strategy="steps", logging_steps=7).eval_steps == 7


def test_warmup_steps_fraction_and_count(tmp_path):
    assert TrainingArguments(str(tmp_path), warmup_steps=0.25).get_warmup_steps(10) == 3
    assert TrainingArguments(str(tmp_path), warmup_steps=4).get_warmup_steps(10) == 4


def test_unknown_argument_is_named(tmp_path):
    with pytest.raises(TypeError, match="lerning_rate"):
        TrainingArguments(str(tmp_path), lerning_rate=1e-3)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"load_best_model_at_end": True, "eval_strategy": "epoch", "save_strategy": "steps"},
     "load_best_model_at_end=True requires the save and eval strategies to match"),
    ({"load_best_model_at_end": True, "eval_strategy": "steps", "eval_steps": 3, "save_steps": 4},
     "save_steps to be a round multiple of eval_steps"),
    ({"fp16": True, "use_cpu": True}, "fp16=True needs a CUDA GPU"),
    ({"fp16": True, "bf16": True}, "fp16=True and bf16=True cannot both be set"),
    ({"learning_rate": -1e-3}, "learning_rate must be >= 0"),
    ({"eval_strategy": "steps", "logging_steps": 0, "logging_strategy": "epoch"}, 'eval_strategy="steps" requires'),
    ({"eval_strategy": "sometimes"}, "eval_strategy='sometimes' is not supported"),
    ({"lr_scheduler_type": "triangular"}, "lr_scheduler_type='triangular' is not supported"),
    ({"per_device_train_batch_size": 0}, "per_device_train_batch_size must be a positive integer"),
    ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps must be a positive integer"),
    ({"report_to": "wandb"}, "report_to=\\['wandb'\\] is not supported"),
    ({"push_to_hub": True}, "push_to_hub=True is not supported"),
    ({"save_strategy": "best"}, 'save_strategy="best" needs an eval_strategy'),
    ({"optim": "lion"}, "optim='lion' is not supported"),
    ({"logging_steps": 2.5}, "logging_steps must be an integer when above 1"),
    ({"max_steps": 0}, "max_steps must be a positive number"),
    ({"fsdp": "full_shard bogus"}, "Unknown fsdp option"),
])
def test_impossible_combinations(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainingArguments(str(tmp_path), **kwargs)


def test_best_model_defaults(tmp_path):
    args = TrainingArguments(str(tmp_path), load_best_model_at_end=True, eval_strategy="steps", eval_steps=5,
                             save_steps=10)
    assert args.metric_for_best_model == "loss" and args.greater_is_better is False
    args = TrainingArguments(str(tmp_path), metric_for_best_model="f1")
    assert args.greater_is_better is True


def test_to_json_string(tmp_path):
    import json

    data = json.loads(TrainingArguments(str(tmp_path), hub_token="secret").to_json_string())
    assert data["learning_rate"] == 5e-5 and data["hub_token"] == "<HUB_TOKEN>"
