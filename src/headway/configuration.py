"""Model configurations: typed dataclasses with the Hugging Face field names.

Every family declares its config with ``@config_class`` on a subclass of ``PretrainedConfig``:

    @config_class
    class BertConfig(PretrainedConfig):
        model_type: ClassVar[str] = "bert"
        vocab_size: int = 30522
        ...

A config accepts keyword arguments it does not know (they are kept as attributes and written back by
``save_pretrained``, so config.json round-trips losslessly) and the derived ``num_labels``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from typing_extensions import Self

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
T = TypeVar("T", bound="PretrainedConfig")

# Spellings of older configs -> the field they mean now.
_RENAMED_KEYS = {"torch_dtype": "dtype"}
# Keys that live in a loaded config.json but say nothing about the model.
_DROPPED_KEYS = {"transformers_version", "_commit_hash", "_attn_implementation_autoset", "attn_implementation"}


def config_class(cls: type[T]) -> type[T]:
    """Make ``cls`` a dataclass whose ``__init__`` also takes unknown keys and ``num_labels``."""
    cls = dataclass(cls, repr=False)
    generated = cls.__init__
    names = {f.name for f in dataclasses.fields(cls)}

    @functools.wraps(generated)
    def __init__(self, **kwargs: Any) -> None:
        for old, new in _RENAMED_KEYS.items():
            if old in kwargs:
                kwargs.setdefault(new, kwargs.pop(old))
        num_labels = kwargs.pop("num_labels", None)
        generated(self, **{k: kwargs.pop(k) for k in list(kwargs) if k in names})
        for key, value in kwargs.items():
            if key not in _DROPPED_KEYS:
                setattr(self, key, value)  # unknown keys are kept and saved back
        if num_labels is not None and num_labels != self.num_labels:
            self.num_labels = num_labels

    cls.__init__ = __init__
    return cls


def _int_keys(mapping: dict | None) -> dict[int, str] | None:
    return None if mapping is None else {int(k): v for k, v in mapping.items()}


# Checked wherever a family has the field (each family's own spellings included), so that a bad
# config.json fails when read, naming the field, rather than as a hang, a huge allocation, NaN or an
# internal error while the model is built or run. A field whose default is None may also be None.
_POSITIVE_INT_FIELDS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "intermediate_size", "max_position_embeddings", "head_dim", "embedding_size", "attention_head_size",
    "pooler_hidden_size", "n_embd", "n_layer", "n_head", "n_positions", "n_inner", "dim", "hidden_dim",
    "n_layers", "n_heads",
)
_NON_NEGATIVE_INT_FIELDS = ("type_vocab_size",)
_EPSILON_FIELDS = ("layer_norm_eps", "rms_norm_eps", "layer_norm_epsilon", "norm_eps")
_DROPOUT_SUFFIXES = ("dropout", "dropout_prob", "pdrop")
# Refused here only when of the wrong kind (the reference's config classes refuse the same); an unknown
# activation name, or an initializer range that cannot be drawn from, fails when a model is built or
# initialised (headway.model_checks), as the reference reads such configs but cannot build them.
_ACTIVATION_FIELDS = (
    "hidden_act", "activation_function", "hidden_activation", "activation", "pooler_hidden_act",
)
_INIT_FIELDS = ("initializer_range", "init_std", "initializer_factor")
_ROPE_FIELDS = ("rope_parameters", "rope_scaling")
# num_labels above this is refused before its id2label names are made (10**9 of them would not fit).
MAX_NUM_LABELS = 1 << 20


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_fields(config: PretrainedConfig) -> None:
    """Raise a ValueError naming the first field whose value the model cannot be built or run with."""
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    for name, default in defaults.items():
        value = getattr(config, name)
        if value is None and default is None:
            continue
        if name in _POSITIVE_INT_FIELDS and not (_is_int(value) and value > 0):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
        if name in _NON_NEGATIVE_INT_FIELDS and not (_is_int(value) and value >= 0):
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if name in _EPSILON_FIELDS and not (_is_real(value) and 0 < value < math.inf):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if name.endswith(_DROPOUT_SUFFIXES) and not (_is_real(value) and 0 <= value <= 1):
            raise ValueError(f"{name} must be a probability between 0 and 1, got {value!r}")
        if name in _ACTIVATION_FIELDS and not (isinstance(value, str) or callable(value)):
            raise ValueError(f"{name} must be the name of an activation (a string), got {value!r:.80}")
        if name in _INIT_FIELDS and not _is_real(value):
            raise ValueError(
                f"{name} must be a number (the standard deviation of initial weights), got {value!r:.80}"
            )
        if name in _ROPE_FIELDS and value is not None and not isinstance(value, dict):
            raise ValueError(
                f"{name} must be an object of rotary parameters (rope_type, rope_theta...) or null, "
                f"got {value!r:.80}"
            )
    vocab_size = getattr(config, "vocab_size", None)
    for name in defaults:
        if name.endswith("_token_id"):
            _check_token_id(name, getattr(config, name), vocab_size)


def _check_token_id(name: str, value: Any, vocab_size: int | None) -> None:
    """A token id is None, -1 (which several Hub configs use for "none"; the reference loads them) or an
    int >= 0. Past the vocabulary, ``pad_token_id`` is refused (it is the embedding's padding row); the
    others only warn, as in the reference: a family's default (GPT-2's 50256) in a small test config is
    common, and matters only once generation uses it."""
    for token_id in value if isinstance(value, list) and name == "eos_token_id" else [value]:
        if token_id is None or token_id == -1 and _is_int(token_id):
            continue
        allowed = f"0 to {vocab_size - 1} (vocab_size {vocab_size})" if vocab_size else "a token id >= 0"
        if not _is_int(token_id) or token_id < 0 or (
            name == "pad_token_id" and vocab_size is not None and token_id >= vocab_size
        ):
            raise ValueError(f"{name} must be None or a token id from {allowed}, got {value!r}")
        if vocab_size is not None and token_id >= vocab_size:
            logger.warning("%s %r is outside the vocabulary (%s): it cannot be generated or embedded",
                           name, value, allowed)


def _label_maps(id2label: Any, label2id: Any) -> tuple[dict[int, str] | None, dict[str, int] | None]:
    """``id2label`` with int keys and ``label2id`` with int values; a ValueError naming a bad entry."""
    if id2label is not None:
        if not isinstance(id2label, dict):
            raise ValueError(f"id2label must be a dict of label id -> name, got {type(id2label).__name__}")
        for key, label in id2label.items():
            if not (_is_int(key) or isinstance(key, str) and key.strip().lstrip("-").isdigit()):
                raise ValueError(f"id2label keys must be ints (or strings of ints), got {key!r}")
            if not isinstance(label, str):
                raise ValueError(f"id2label values must be label names (str), got {label!r} for id {key!r}")  # noqa: TRY004
        id2label = _int_keys(id2label)
    if label2id is not None:
        if not isinstance(label2id, dict):
            raise ValueError(f"label2id must be a dict of label name -> id, got {type(label2id).__name__}")
        for label, key in label2id.items():
            if not isinstance(label, str):
                raise ValueError(f"label2id keys must be label names (str), got {label!r}")  # noqa: TRY004
            if not (_is_int(key) or isinstance(key, str) and key.strip().lstrip("-").isdigit()):
                raise ValueError(f"label2id values must be ints, got {key!r} for label {label!r}")
        label2id = {label: int(key) for label, key in label2id.items()}
    return id2label, label2id


@config_class
class PretrainedConfig:
    """Fields shared by every model (the reference's names and defaults)."""

    model_type: ClassVar[str] = ""

    architectures: list[str] | None = None
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    problem_type: str | None = None  # "regression" | "single_label_classification" | "multi_label_classification"
    finetuning_task: str | None = None
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    sep_token_id: int | None = None
    decoder_start_token_id: int | None = None
    tie_word_embeddings: bool = True
    is_encoder_decoder: bool = False
    is_decoder: bool = False
    add_cross_attention: bool = False
    output_hidden_states: bool = False
    output_attentions: bool = False
    return_dict: bool = True
    dtype: str | None = None
    tokenizer_class: str | None = None
    prefix: str | None = None
    task_specific_params: dict[str, Any] | None = None
    chunk_size_feed_forward: int = 0
    _name_or_path: str = field(default="", compare=False)

    _PROBLEM_TYPES: ClassVar[tuple[str, ...]] = (
        "regression",
        "single_label_classification",
        "multi_label_classification",
    )

    def __post_init__(self) -> None:
        _check_fields(self)
        self.id2label, self.label2id = _label_maps(self.id2label, self.label2id)
        if self.id2label is None:
            self.id2label = {i: f"LABEL_{i}" for i in range(2)}
        if self.label2id is None:
            self.label2id = {label: i for i, label in self.id2label.items()}
        if self.problem_type is not None and self.problem_type not in self._PROBLEM_TYPES:
            raise ValueError(f"problem_type must be one of {self._PROBLEM_TYPES} or None, got {self.problem_type!r}")
        if self.dtype is not None and not isinstance(self.dtype, str):
            self.dtype = str(self.dtype).removeprefix("torch.")

    # -- labels -----------------------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, n: int) -> None:
        if not _is_int(n) or not 1 <= n <= MAX_NUM_LABELS:
            raise ValueError(f"num_labels must be a positive int of at most {MAX_NUM_LABELS}, got {n!r}")
        if self.id2label is None or len(self.id2label) != n:
            self.id2label = {i: f"LABEL_{i}" for i in range(n)}
            self.label2id = {label: i for i, label in self.id2label.items()}

    @property
    def use_return_dict(self) -> bool:
        return self.return_dict

    @property
    def max_input_length(self) -> int | None:
        """The most tokens one sequence may hold: the position table's size less the rows a family keeps
        for padding (RoBERTa, MPNet), or None when nothing in the model limits it."""
        return getattr(self, "max_position_embeddings", None)

    @property
    def name_or_path(self) -> str:
        return self._name_or_path

    @name_or_path.setter
    def name_or_path(self, value: str) -> None:
        self._name_or_path = str(value)

    # -- dict / JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every field and kept unknown key, JSON-ready (label keys as strings, dtype as a name)."""
        out: dict[str, Any] = {}
        for key, value in vars(self).items():
            if key.startswith("_"):
                continue
            out[key] = copy.deepcopy(value)
        out["model_type"] = self.model_type
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        return dict(sorted(out.items()))

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str | os.PathLike) -> None:
        from headway.checkpoint import atomic_write_text

        atomic_write_text(Path(path), self.to_json_string())

    def update(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            setattr(self, key, value)

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> Self:
        data = {k: v for k, v in data.items() if k != "model_type"}
        data.update(overrides)
        return cls(**data)

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()  # type: ignore[union-attr]

    # -- files --------------------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write ``config.json`` into ``save_directory`` (created if needed); the folder's other files stay.

        The folder is replaced as a whole (``headway.atomic.staged_folder``).
        """
        from headway.atomic import staged_folder

        with staged_folder(save_directory) as stage:
            self.to_json_file(stage.path / CONFIG_NAME)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike, *, return_unused_kwargs: bool = False, **kwargs: Any
    ) -> Self | tuple[Self, dict[str, Any]]:
        """Read config.json of a checkpoint; keyword arguments that name config fields override it.

        Keywords that are not config fields are kept as attributes, like unknown JSON keys, unless
        ``return_unused_kwargs=True``, which returns them instead.
        """
        from headway.hub import pop_hub_kwargs, resolve

        data = load_config_dict(resolve(name_or_path, **pop_hub_kwargs(kwargs)))
        model_type = data.get("model_type")
        if cls.model_type and model_type and model_type != cls.model_type:
            logger.warning(
                "Loading a %r checkpoint into %s (model_type %r); this may give wrong results.",
                model_type,
                cls.__name__,
                cls.model_type,
            )
        config, unused = cls._from_dict_with_overrides(data, kwargs, keep_unused=not return_unused_kwargs)
        config.name_or_path = os.fspath(name_or_path)
        return (config, unused) if return_unused_kwargs else config

    @classmethod
    def _from_dict_with_overrides(
        cls, data: dict[str, Any], overrides: dict[str, Any], *, keep_unused: bool
    ) -> tuple[Self, dict[str, Any]]:
        config = cls.from_dict(data)
        unused: dict[str, Any] = {}
        for key, value in overrides.items():
            if key in _RENAMED_KEYS:
                key = _RENAMED_KEYS[key]
            if key == "num_labels" or hasattr(config, key) or keep_unused:
                setattr(config, key, value)
            else:
                unused[key] = value
        if "id2label" in overrides:
            config.id2label = _int_keys(config.id2label)
            if "label2id" not in overrides:
                config.label2id = {label: i for i, label in config.id2label.items()}
        return config, unused


PreTrainedConfig = PretrainedConfig  # the transformers 5 spelling; both names are the same class


def load_config_dict(checkpoint: Any) -> dict[str, Any]:
    """Read and parse config.json of a resolved ``headway.hub.Checkpoint``."""
    path = checkpoint.get(CONFIG_NAME)
    if path is None:
        raise FileNotFoundError(
            f"{checkpoint.name!r} has no config.json, so it is not a model checkpoint headway can load. "
            "Looked in:\n" + "\n".join(f"  - {s}" for s in checkpoint.searched)
        )
    return read_json_object(path, what="config")


def read_json_object(path: str | os.PathLike, *, what: str = "JSON file") -> dict[str, Any]:
    """The content of a JSON file that must hold an object; a ValueError naming the file otherwise
    (see ``headway.jsonfile.read_json``, the one reader of checkpoint JSON files)."""
    from .jsonfile import read_json

    return read_json(path, expect=dict, what=what)
