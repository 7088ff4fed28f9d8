"""Learning-rate schedules: the reference's ``get_scheduler`` names, as ``LambdaLR`` multipliers.

Each multiplier is a module-level function bound with ``functools.partial``, so the scheduler's
``state_dict()`` holds only numbers and lists (``torch.load(weights_only=True)`` reads it back).
"""

from __future__ import annotations

import math
from functools import partial

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

SCHEDULER_TYPES = (
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt",
)


def _warmup(step: int, warmup: int) -> float:
    return float(step) / float(max(1, warmup))


def _constant(_: int) -> float:
    return 1.0


def _constant_with_warmup(step: int, *, num_warmup_steps: int) -> float:
    if step < num_warmup_steps:
        return float(step) / float(max(1.0, num_warmup_steps))
    return 1.0


def _linear(step: int, *, num_warmup_steps: int, num_training_steps: int) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    return max(0.0, float(num_training_steps - step) / float(max(1, num_training_steps - num_warmup_steps)))


def _cosine(step: int, *, num_warmup_steps: int, num_training_steps: int, num_cycles: float) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    progress = float(step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


def _cosine_with_restarts(step: int, *, num_warmup_steps: int, num_training_steps: int, num_cycles: int) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    progress = float(step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    if progress >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(num_cycles) * progress) % 1.0))))


def _polynomial(
    step: int, *, num_warmup_steps: int, num_training_steps: int, lr_end: float, power: float, lr_init: float
) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    if step > num_training_steps:
        return lr_end / lr_init  # LambdaLR multiplies by lr_init
    pct_remaining = 1 - (step - num_warmup_steps) / (num_training_steps - num_warmup_steps)
    return ((lr_init - lr_end) * pct_remaining**power + lr_end) / lr_init


def _inverse_sqrt(step: int, *, num_warmup_steps: int, timescale: int) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    shift = timescale - num_warmup_steps
    return 1.0 / math.sqrt((step + shift) / timescale)


def get_scheduler(
    name: str,
    optimizer: Optimizer,
    num_warmup_steps: int | None = None,
    num_training_steps: int | None = None,
    scheduler_specific_kwargs: dict | None = None,
) -> LambdaLR:
    """Build the schedule called ``name`` (one of ``SCHEDULER_TYPES``) over ``optimizer``.

    Args:
        name: schedule name, as ``TrainingArguments.lr_scheduler_type``.
        optimizer: the optimizer whose learning rates are scaled.
        num_warmup_steps: steps of linear warm-up from 0 (every schedule but ``constant``).
        num_training_steps: total optimiser steps (the decaying schedules).
        scheduler_specific_kwargs: ``num_cycles`` (cosine), ``lr_end`` / ``power`` (polynomial),
            ``timescale`` (inverse_sqrt).
    """
    name = getattr(name, "value", name)
    if name not in SCHEDULER_TYPES:
        raise ValueError(f"Unknown lr_scheduler_type {name!r}; expected one of {list(SCHEDULER_TYPES)}")
    kwargs = dict(scheduler_specific_kwargs or {})
    if name == "constant":
        return LambdaLR(optimizer, _constant)
    if num_warmup_steps is None:
        raise ValueError(f"lr_scheduler_type {name!r} requires num_warmup_steps")
    if name == "constant_with_warmup":
        return LambdaLR(optimizer, partial(_constant_with_warmup, num_warmup_steps=num_warmup_steps))
    if name == "inverse_sqrt":
        timescale = kwargs.pop("timescale", None) or (num_warmup_steps or 10_000)
        return LambdaLR(optimizer, partial(_inverse_sqrt, num_warmup_steps=num_warmup_steps, timescale=timescale))
    if num_training_steps is None:
        raise ValueError(f"lr_scheduler_type {name!r} requires num_training_steps")
    steps = {"num_warmup_steps": num_warmup_steps, "num_training_steps": num_training_steps}
    if name == "linear":
        fn = partial(_linear, **steps)
    elif name == "cosine":
        fn = partial(_cosine, **steps, num_cycles=kwargs.pop("num_cycles", 0.5))
    elif name == "cosine_with_restarts":
        fn = partial(_cosine_with_restarts, **steps, num_cycles=kwargs.pop("num_cycles", 1))
    else:  # polynomial
        lr_init = optimizer.defaults["lr"]
        lr_end = kwargs.pop("lr_end", 1e-7)
        if not lr_init > lr_end:
            raise ValueError(f"lr_end ({lr_end}) must be smaller than the initial lr ({lr_init})")
        fn = partial(_polynomial, **steps, lr_end=lr_end, power=kwargs.pop("power", 1.0), lr_init=lr_init)
    if kwargs:
        raise TypeError(f"Unexpected scheduler_specific_kwargs for {name!r}: {sorted(kwargs)}")
    return LambdaLR(optimizer, fn)


__all__ = ["SCHEDULER_TYPES", "get_scheduler"]
