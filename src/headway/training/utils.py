"""Small helpers shared by the trainer: seeding, RNG snapshots, result tuples, array gathering."""

from __future__ import annotations

import contextlib
import inspect
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

__all__ = [
    "EvalPrediction",
    "PredictionOutput",
    "RemoveColumnsCollator",
    "TrainOutput",
    "dropout_context",
    "example_indices",
    "get_rng_state",
    "keyed_dropout_hooks",
    "set_rng_state",
    "set_seed",
    "speed_metrics",
    "split_by_length",
    "split_rows_by_length",
]

logger = logging.getLogger(__name__)

_SEQUENCE_KEYS = {"input_ids", "attention_mask", "token_type_ids", "position_ids", "special_tokens_mask"}


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and every CUDA device).

    Args:
        seed: the seed.
        deterministic: also ask torch for deterministic kernels (slower; errors on ops that have none).
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)


# -- RNG snapshots that torch.load(weights_only=True) can read -----------------------------------------
def get_rng_state() -> dict[str, Any]:
    """Every RNG the training loop touches, as tensors, lists and numbers only (no numpy objects)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "cpu": torch.random.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore a snapshot from :func:`get_rng_state` (CUDA states only when the device count matches)."""
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(x) for x in internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    np.random.set_state((kind, keys.astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.random.set_rng_state(state["cpu"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# -- results --------------------------------------------------------------------------------------------
class TrainOutput(NamedTuple):
    global_step: int
    training_loss: float
    metrics: dict[str, float]


class PredictionOutput(NamedTuple):
    predictions: np.ndarray | tuple[np.ndarray, ...]
    label_ids: np.ndarray | tuple[np.ndarray, ...] | None
    metrics: dict[str, float] | None


class EvalPrediction:
    """What ``compute_metrics`` receives; unpacks as ``predictions, label_ids = eval_pred``."""

    def __init__(
        self,
        predictions: np.ndarray | tuple[np.ndarray, ...],
        label_ids: np.ndarray | tuple[np.ndarray, ...] | None,
        inputs: np.ndarray | None = None,
        losses: np.ndarray | None = None,
    ) -> None:
        self.predictions = predictions
        self.label_ids = label_ids
        self.inputs = inputs
        self.losses = losses
        self._elements = tuple(x for x in (predictions, label_ids, inputs, losses) if x is not None)

    def __iter__(self):
        return iter(self._elements)

    def __getitem__(self, idx: int) -> Any:
        return self._elements[idx]

    def __len__(self) -> int:
        return len(self._elements)


def speed_metrics(
    split: str, start_time: float, num_samples: float | None = None, num_steps: int | None = None
) -> dict[str, float]:
    """``{split}_runtime``, ``{split}_samples_per_second`` and ``{split}_steps_per_second`` since ``start_time``."""
    runtime = time.time() - start_time
    result = {f"{split}_runtime": round(runtime, 4)}
    if runtime == 0:
        return result
    if num_samples is not None:
        result[f"{split}_samples_per_second"] = round(num_samples / runtime, 3)
    if num_steps is not None:
        result[f"{split}_steps_per_second"] = round(num_steps / runtime, 3)
    return result


def to_python_number(value: Any) -> Any:
    """numpy scalars and 0-d tensors -> Python numbers, recursively, so metrics are JSON-serialisable."""
    if isinstance(value, Mapping):
        return {k: to_python_number(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_python_number(v) for v in value)
    if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
        return value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value


# -- gathering predictions batch by batch ----------------------------------------------------------------
def pad_and_concat(arrays: Sequence[np.ndarray], padding_index: int = -100) -> np.ndarray:
    """Concatenate along the first axis, padding the second axis (sequence length) with ``padding_index``."""
    if len(arrays) == 1:
        return arrays[0]
    if arrays[0].ndim <= 1 or all(a.shape[1:] == arrays[0].shape[1:] for a in arrays):
        return np.concatenate(arrays, axis=0)
    width = max(a.shape[1] for a in arrays)
    out = np.full(
        (sum(a.shape[0] for a in arrays), width, *arrays[0].shape[2:]), padding_index, dtype=arrays[0].dtype
    )
    row = 0
    for a in arrays:
        out[row : row + a.shape[0], : a.shape[1]] = a
        row += a.shape[0]
    return out


def nested_numpy(value: Any) -> Any:
    """Tensors (or tuples of them) -> numpy arrays on the host; bfloat16/half become float32."""
    if isinstance(value, (list, tuple)):
        return type(value)(nested_numpy(v) for v in value)
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()
        return value.cpu().numpy()
    return value


def nested_concat(batches: list[Any], padding_index: int = -100) -> Any:
    """Concatenate a list of per-batch arrays (or tuples of arrays) with :func:`pad_and_concat`."""
    if not batches:
        return None
    if isinstance(batches[0], (list, tuple)):
        return type(batches[0])(
            nested_concat([b[i] for b in batches], padding_index) for i in range(len(batches[0]))
        )
    return pad_and_concat(batches, padding_index)


def nested_take(value: Any, index: np.ndarray) -> Any:
    if isinstance(value, (list, tuple)):
        return type(value)(nested_take(v, index) for v in value)
    return value[index]


# -- batches -----------------------------------------------------------------------------------------------
def find_label_names(model: nn.Module) -> list[str]:
    """The forward arguments that carry targets: ``labels``-like names, or QA start/end positions.

    ``shift_labels`` (a causal LM's optional pre-shifted targets, which the reference takes through
    ``**kwargs``) is not one: evaluation would otherwise wait for a column no collator makes.
    """
    params = inspect.signature(model.forward).parameters
    if "start_positions" in params and "end_positions" in params:
        return ["start_positions", "end_positions"]
    return [p for p in params if "label" in p and p != "shift_labels"]


def unwrap_peft(model: nn.Module) -> nn.Module:
    """The model inside a peft ``PeftModel`` (whose forward signature is generic), else ``model``."""
    if type(model).__name__.startswith("Peft") and hasattr(model, "get_base_model"):
        return model.get_base_model()
    return model


def is_causal_lm(model: nn.Module) -> bool:
    """Whether ``model``'s loss shifts its labels (a decoder-only LM head): position 0 is never a target.

    headway's causal-LM heads inherit ``GenerationMixin`` (``...ForCausalLM``, ``GPT2LMHeadModel``);
    encoder-decoder models, which generate too, score every label.
    """
    from headway.generation.generate import GenerationMixin

    name = type(model).__name__
    causal = isinstance(model, GenerationMixin) or name.endswith(("ForCausalLM", "LMHeadModel"))
    return causal and not getattr(getattr(model, "config", None), "is_encoder_decoder", False)


def accepts_loss_kwargs(model: nn.Module) -> bool:
    """Whether ``model.forward`` takes ``num_items_in_batch`` and returns sum(losses) / num_items_in_batch.

    A class says so with ``accepts_loss_kwargs``; otherwise a forward naming ``num_items_in_batch``, or a
    causal LM's forward with ``**kwargs`` (the decoder contract: the loss reads it from there), does.
    """
    if hasattr(model, "accepts_loss_kwargs"):
        return bool(model.accepts_loss_kwargs)
    params = inspect.signature(model.forward).parameters
    if "num_items_in_batch" in params:
        return True
    return is_causal_lm(model) and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def split_by_length(batch: dict[str, Any], min_saving: float = 0.1) -> list[dict[str, Any]]:
    """Split a right-padded batch into its shorter and its longer rows, each part trimmed to its own
    longest row, at the cut that pads the fewest tokens, when that saves at least ``min_saving`` of
    the tokens; else ``[batch]``.

    Rows are sorted by length (``attention_mask``); every tensor is split by rows, and those whose second
    dimension is the sequence length are trimmed. The sum of per-row losses is unchanged, so with the
    loss normalised by the whole batch's item count the gradient is the same up to rounding.
    """
    return [part for part, _ in split_rows_by_length(batch, min_saving)]


def split_rows_by_length(
    batch: dict[str, Any], min_saving: float = 0.1
) -> list[tuple[dict[str, Any], torch.Tensor | None]]:
    """:func:`split_by_length`, each part with the indices of its rows in ``batch`` (None: not split)."""
    mask = batch.get("attention_mask")
    if (
        not isinstance(mask, torch.Tensor)
        or mask.dim() != 2
        or mask.shape[0] < 4
        or mask.device.type != "cpu"
    ):
        return [(batch, None)]
    rows, width = mask.shape
    if not all(isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == rows for v in batch.values()):
        return [(batch, None)]
    aligned = {k for k, v in batch.items() if v.dim() >= 2 and v.shape[1] == width}
    if any(
        k not in _SEQUENCE_KEYS and not (k == "labels" and not v.is_floating_point())
        for k, v in batch.items()
        if k in aligned
    ):
        return [(batch, None)]  # a tensor as wide as the sequence that may not be one: do not guess
    labels = batch.get("labels")
    if "labels" in aligned and not bool((labels[mask == 0] == -100).all()):
        return [
            (batch, None)
        ]  # labels that do not follow the input's padding (e.g. a decoder's): not token labels
    if not bool(mask[:, 0].all()):  # left padding (or an empty row): positions would shift
        return [(batch, None)]
    lengths = mask.sum(1)
    order = torch.argsort(lengths, stable=True)
    ordered = lengths[order].tolist()
    # The cut that pads the fewest tokens: the k shortest rows padded to ordered[k-1], the rest to the longest.
    cut = min(range(2, rows - 1), key=lambda k: k * ordered[k - 1] + (rows - k) * ordered[-1])
    short, long_ = order[:cut], order[cut:]
    short_len, long_len = ordered[cut - 1], ordered[-1]
    if short_len * cut + long_len * (rows - cut) > (1 - min_saving) * rows * width:
        return [(batch, None)]
    parts = []
    for index, length in ((short, short_len), (long_, long_len)):
        part = {}
        for key, value in batch.items():
            value = value.index_select(0, index)
            if key in aligned:
                value = value[:, :length]
            part[key] = value
        parts.append((part, index))
    return parts


# -- keyed dropout -------------------------------------------------------------------------------------------
def batch_rows(batch: Any) -> int | None:
    """The number of rows of a collated batch (dim 0 of its first tensor), or None if it has no tensor."""
    values = (
        batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (list, tuple)) else ()
    )
    for value in values:
        if isinstance(value, torch.Tensor) and value.dim() >= 1:
            return value.shape[0]
    return None


def example_indices(micro_batch: int, rows: int, batch_size: int, world_size: int, rank: int) -> torch.Tensor:
    """Each row's index in the optimiser step's global batch: (rows,) int64.

    Process ``rank`` of ``world_size`` reads every ``world_size``-th index of the epoch's order from
    ``rank`` on (``EpochSampler``), ``batch_size`` per micro-batch: row ``j`` of its micro-batch ``i``
    within the step is entry ``(i * batch_size + j) * world_size + rank`` of the step's share of that
    order, the same entry one process with ``world_size`` times the batch (or accumulation) reads.
    """
    return (micro_batch * batch_size + torch.arange(rows)) * world_size + rank


def keyed_dropout_hooks(model: nn.Module, enabled: bool) -> tuple[bool, list[Any]]:
    """Whether keyed dropout stays on for ``model``, and the hooks to remove after training: with gradient
    checkpointing on, recomputed layers must draw the masks their forward drew (``track_recomputation``)."""
    if not enabled or not any(getattr(m, "gradient_checkpointing", False) for m in model.modules()):
        return enabled, []
    from headway.nn.dropout import RECOMPUTATION_SUPPORTED, track_recomputation

    if not RECOMPUTATION_SUPPORTED:
        logger.warning("keyed_dropout is off: this torch cannot tell a recomputation from a forward")
        return False, []
    return True, track_recomputation(model)


def dropout_context(
    inputs: Any, indices: torch.Tensor | None, seed: int, step: int
) -> contextlib.AbstractContextManager:
    """Keyed dropout for one micro-batch (``indices``: its rows' :func:`example_indices`); a no-op
    context when ``indices`` is None. Left padding in a 2-D ``attention_mask`` shifts positions so
    they count from each example's first token."""
    if indices is None:
        return contextlib.nullcontext()
    from headway.nn.dropout import DropoutKeys, keyed_dropout

    mask = inputs.get("attention_mask") if isinstance(inputs, Mapping) else None
    offsets, seq_len = None, None
    if isinstance(mask, torch.Tensor) and mask.dim() == 2 and mask.shape[0] == indices.numel():
        seq_len = mask.shape[1]
        if seq_len and not bool(mask[:, 0].all()):  # left padding: count the leading pads of each row
            offsets = mask.ne(0).cumsum(-1).eq(0).sum(-1)
    return keyed_dropout(DropoutKeys(seed, step, indices, offsets=offsets, seq_len=seq_len))


class RemoveColumnsCollator:
    """Drops the keys a model's forward does not take before calling the real collator."""

    def __init__(self, collator: Callable, keep: set[str]) -> None:
        self.collator = collator
        self.keep = keep

    def __call__(self, features: list[Any]) -> Any:
        if isinstance(features[0], dict):
            features = [{k: v for k, v in f.items() if k in self.keep} for f in features]
        return self.collator(features)
