"""TrainingArguments: the reference's field names and defaults, checked when built.

The fields are those of ``transformers.TrainingArguments`` (5.x) that headway's Trainer acts on, plus the
v4 spellings people still pass (``evaluation_strategy``, ``warmup_ratio``, ``group_by_length``,
``logging_dir``, ``overwrite_output_dir``). An unknown keyword is a TypeError naming it (the dataclass
``__init__``); an impossible combination is a ValueError naming the fields involved.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass
from typing import Any

from headway.training.schedules import SCHEDULER_TYPES

logger = logging.getLogger(__name__)

INTERVAL_STRATEGIES = ("no", "steps", "epoch")
SAVE_STRATEGIES = ("no", "steps", "epoch", "best")
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "adamw_torch_foreach", "sgd")
REPORTERS = ("tensorboard",)
FSDP_OPTIONS = ("full_shard", "shard_grad_op", "no_shard", "offload", "auto_wrap")


def _value(x: Any) -> Any:
    """Enum members (the reference's IntervalStrategy...) -> their string value."""
    return getattr(x, "value", x)


@dataclass
class TrainingArguments:
    """Hyper-parameters and switches of :class:`~headway.training.trainer.Trainer`.

    Defaults are the reference's. ``warmup_steps`` below 1 is a fraction of the training steps (as in
    transformers 5); ``warmup_ratio`` (v4) is used when ``warmup_steps`` is 0. ``eval_steps``,
    ``save_steps`` and ``logging_steps`` below 1 are fractions of the training steps too.
    """

    output_dir: str | None = None
    overwrite_output_dir: bool = False
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False
    # batches and steps
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    num_train_epochs: float = 3.0
    max_steps: int = -1
    # optimiser and schedule
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    optim: str = "adamw_torch_fused"
    optim_args: str | None = None
    lr_scheduler_type: str = "linear"
    lr_scheduler_kwargs: dict | None = None
    warmup_steps: float = 0
    warmup_ratio: float = 0.0
    label_smoothing_factor: float = 0.0
    average_tokens_across_devices: bool = True
    # precision and memory
    bf16: bool = False
    fp16: bool = False
    gradient_checkpointing: bool = False
    gradient_checkpointing_kwargs: dict | None = None
    torch_compile: bool = False
    # logging
    logging_dir: str | None = None
    logging_strategy: str = "steps"
    logging_steps: float = 500
    logging_first_step: bool = False
    logging_nan_inf_filter: bool = True
    report_to: str | list[str] | None = "none"
    run_name: str | None = None
    disable_tqdm: bool | None = None
    log_level: str = "passive"
    # evaluation
    eval_strategy: str = "no"
    evaluation_strategy: str | None = None  # v4 spelling of eval_strategy
    eval_steps: float | None = None
    eval_delay: float = 0
    eval_on_start: bool = False
    prediction_loss_only: bool = False
    eval_accumulation_steps: int | None = None
    # checkpoints
    save_strategy: str = "steps"
    save_steps: float = 500
    save_total_limit: int | None = None
    save_only_model: bool = False
    save_safetensors: bool = True
    load_best_model_at_end: bool = False
    metric_for_best_model: str | None = None
    greater_is_better: bool | None = None
    resume_from_checkpoint: str | bool | None = None
    ignore_data_skip: bool = False
    # data
    seed: int = 42
    data_seed: int | None = None
    full_determinism: bool = False
    dataloader_num_workers: int = 0
    dataloader_drop_last: bool = False
    dataloader_pin_memory: bool = True
    dataloader_persistent_workers: bool = False
    dataloader_prefetch_factor: int | None = None
    remove_unused_columns: bool = True
    label_names: list[str] | None = None
    group_by_length: bool = False  # v4 spelling of train_sampling_strategy="group_by_length"
    train_sampling_strategy: str = "random"
    # headway only: split each micro-batch in two by length, each half padded on its own (fewer padded
    # tokens; the loss is still normalised over the whole batch). None: on for headway models on CPU.
    split_batches_by_length: bool | None = None
    # headway only: dropout masks keyed by (seed, step, example's index in the global batch, the dropout
    # call, the element's position) instead of drawn from each process's RNG, so N processes reach the
    # weights one process does with the same global batch. False: torch's RNG, as transformers does.
    keyed_dropout: bool = True
    length_column_name: str = "length"
    # devices and processes
    use_cpu: bool = False
    no_cuda: bool = False  # v4 spelling of use_cpu
    local_rank: int = -1
    ddp_backend: str | None = None
    ddp_find_unused_parameters: bool | None = None
    ddp_timeout: int = 1800
    fsdp: str | list[str] | None = None
    fsdp_config: dict | None = None
    # hub (accepted; pushing is not supported)
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_token: str | None = None
    # what the reference also accepts and headway ignores
    skip_memory_metrics: bool = True
    include_num_input_tokens_seen: bool | str = False

    def __post_init__(self) -> None:
        self.output_dir = os.path.expanduser(self.output_dir or "trainer_output")
        if self.logging_dir is None:
            self.logging_dir = os.path.join(self.output_dir, "runs")
        self.eval_strategy = _value(self.eval_strategy)
        self.logging_strategy = _value(self.logging_strategy)
        self.save_strategy = _value(self.save_strategy)
        self.lr_scheduler_type = _value(self.lr_scheduler_type)
        self.optim = _value(self.optim)
        if self.evaluation_strategy is not None:
            old = _value(self.evaluation_strategy)
            if self.eval_strategy not in ("no", old):
                raise ValueError(
                    f"evaluation_strategy={old!r} and eval_strategy={self.eval_strategy!r} disagree; "
                    "pass only eval_strategy (evaluation_strategy is its older spelling)"
                )
            self.eval_strategy = self.evaluation_strategy = old
        if self.no_cuda:
            self.use_cpu = True
        if self.group_by_length:
            self.train_sampling_strategy = "group_by_length"
        if self.disable_tqdm is None:
            self.disable_tqdm = logging.getLogger("headway").getEffectiveLevel() > logging.WARNING
        self._check_choices()
        self._check_numbers()
        self._check_strategies()
        self._check_precision()
        self._check_reporting()

    # -- validation ----------------------------------------------------------------------------------------
    def _check_choices(self) -> None:
        for name, allowed in (
            ("eval_strategy", INTERVAL_STRATEGIES),
            ("logging_strategy", INTERVAL_STRATEGIES),
            ("save_strategy", SAVE_STRATEGIES),
            ("lr_scheduler_type", SCHEDULER_TYPES),
            ("optim", OPTIMIZERS),
            ("train_sampling_strategy", ("random", "sequential", "group_by_length")),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name}={value!r} is not supported; expected one of {list(allowed)}")
        if self.push_to_hub:
            raise ValueError(
                "push_to_hub=True is not supported by headway; upload output_dir with huggingface_hub"
            )
        if self.label_smoothing_factor:
            raise ValueError(
                "label_smoothing_factor is not supported; pass compute_loss_func to the Trainer instead"
            )
        if isinstance(self.fsdp, str):
            self.fsdp = self.fsdp.split()
        self.fsdp = list(self.fsdp or [])
        unknown = [o for o in self.fsdp if o not in FSDP_OPTIONS]
        if unknown:
            raise ValueError(f"Unknown fsdp option(s) {unknown}; expected some of {list(FSDP_OPTIONS)}")

    def _check_numbers(self) -> None:
        if self.learning_rate < 0:
            raise ValueError(f"learning_rate must be >= 0, got {self.learning_rate}")
        for name in (
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in (
            "weight_decay",
            "max_grad_norm",
            "warmup_steps",
            "num_train_epochs",
            "adam_epsilon",
            "dataloader_num_workers",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.warmup_ratio <= 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1], got {self.warmup_ratio}")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.save_total_limit is not None and self.save_total_limit < 0:
            raise ValueError(f"save_total_limit must be >= 0 or None, got {self.save_total_limit}")
        if self.max_steps == 0 or (self.max_steps < 0 and self.max_steps != -1):
            raise ValueError(
                f"max_steps must be a positive number of steps or -1 (use epochs), got {self.max_steps}"
            )
        if self.dataloader_num_workers == 0 and self.dataloader_prefetch_factor is not None:
            raise ValueError("dataloader_prefetch_factor needs dataloader_num_workers > 0")

    def _check_strategies(self) -> None:
        if self.logging_strategy == "steps" and not self.logging_steps:
            raise ValueError('logging_strategy="steps" requires a non-zero logging_steps')
        if self.eval_strategy == "steps" and not self.eval_steps:
            if not self.logging_steps:
                raise ValueError(
                    'eval_strategy="steps" requires eval_steps (or a non-zero logging_steps to use)'
                )
            self.eval_steps = self.logging_steps
        if self.eval_strategy != "no":
            self.do_eval = True
        for name in ("logging_steps", "eval_steps", "save_steps"):
            value = getattr(self, name)
            if value is not None and value > 1:
                if value != int(value):
                    raise ValueError(f"{name} must be an integer when above 1, got {value}")
                setattr(self, name, int(value))
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.save_strategy == "best" and self.eval_strategy == "no":
            raise ValueError('save_strategy="best" needs an eval_strategy other than "no"')
        if self.load_best_model_at_end:
            if self.save_strategy != "best" and self.eval_strategy != self.save_strategy:
                raise ValueError(
                    "load_best_model_at_end=True requires the save and eval strategies to match, but got "
                    f"eval_strategy={self.eval_strategy!r} and save_strategy={self.save_strategy!r}"
                )
            if self.eval_strategy == "steps" and self.save_strategy == "steps":
                ratio = self.save_steps / self.eval_steps
                if abs(ratio - round(ratio)) > 1e-9:
                    raise ValueError(
                        "load_best_model_at_end=True requires save_steps to be a round multiple of eval_steps, got "
                        f"save_steps={self.save_steps} and eval_steps={self.eval_steps}"
                    )
            if self.metric_for_best_model is None:
                self.metric_for_best_model = "loss"
        if self.greater_is_better is None and self.metric_for_best_model is not None:
            self.greater_is_better = not self.metric_for_best_model.endswith("loss")

    def _check_precision(self) -> None:
        if self.fp16 and self.bf16:
            raise ValueError("fp16=True and bf16=True cannot both be set; choose one")
        if self.fp16 and self.device.type != "cuda":
            raise ValueError(
                "fp16=True needs a CUDA GPU (float16 autocast with loss scaling); on CPU use bf16=True instead"
            )
        if self.bf16 and self.device.type == "cuda":
            import torch

            if not torch.cuda.is_bf16_supported():
                raise ValueError("bf16=True but this GPU does not support bfloat16; use fp16=True")

    def _check_reporting(self) -> None:
        report = self.report_to
        if report is None or report == "none" or report == ["none"]:
            report = []
        elif report == "all" or report == ["all"]:
            report = [r for r in REPORTERS if _installed(r)]
        elif isinstance(report, str):
            report = [report]
        unknown = [r for r in report if r not in REPORTERS]
        if unknown:
            raise ValueError(
                f"report_to={unknown} is not supported; expected 'none', 'all' or one of {list(REPORTERS)}"
            )
        missing = [r for r in report if not _installed(r)]
        if missing:
            raise ValueError(f"report_to={missing} needs the {missing[0]!r} package, which is not installed")
        self.report_to = list(report)

    # -- derived values ----------------------------------------------------------------------------------------
    @property
    def world_size(self) -> int:
        """Number of processes, from the WORLD_SIZE variable that torchrun sets."""
        return int(os.environ.get("WORLD_SIZE", "1"))

    @property
    def process_index(self) -> int:
        return int(os.environ.get("RANK", "0"))

    @property
    def local_process_index(self) -> int:
        return int(os.environ.get("LOCAL_RANK", "0"))

    @property
    def device(self) -> Any:
        import torch

        if not self.use_cpu and torch.cuda.is_available():
            return torch.device("cuda", self.local_process_index if self.world_size > 1 else 0)
        return torch.device("cpu")

    @property
    def n_gpu(self) -> int:
        return 1 if self.device.type == "cuda" else 0

    @property
    def train_batch_size(self) -> int:
        return self.per_device_train_batch_size

    @property
    def eval_batch_size(self) -> int:
        return self.per_device_eval_batch_size

    @property
    def should_save(self) -> bool:
        """Only the main process writes checkpoints, logs and models."""
        return self.process_index == 0

    @property
    def should_log(self) -> bool:
        return self.process_index == 0

    def get_warmup_steps(self, num_training_steps: int) -> int:
        """Warm-up steps: ``warmup_steps`` (a count, or a fraction when below 1), else ``warmup_ratio``."""
        if self.warmup_steps >= 1:
            return int(self.warmup_steps)
        ratio = self.warmup_steps if self.warmup_steps > 0 else self.warmup_ratio
        return math.ceil(num_training_steps * ratio)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["hub_token"] = "<HUB_TOKEN>" if out["hub_token"] else None
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)


def _installed(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


__all__ = ["TrainingArguments"]
