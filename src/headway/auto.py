"""Auto classes: pick the config, model or tokenizer class from a checkpoint's ``model_type``.

The mappings are derived from the family table (``headway.models.registry.FAMILIES``, one literal entry
per ``model_type``); classes are imported only when used, so ``import headway`` loads no model code.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, ClassVar

from headway.configuration import PretrainedConfig, load_config_dict
from headway.hub import Checkpoint, pop_hub_kwargs, resolve
from headway.models.registry import FAMILIES, module_of


def _task_mapping(task: str) -> dict[str, str]:
    """``model_type -> "module:Class"`` for one task, from the family table."""
    return {
        model_type: f"{module_of(family)}:{getattr(family, task)}"
        for model_type, family in FAMILIES.items()
        if getattr(family, task)
    }


CONFIG_MAPPING: dict[str, str] = {mt: f"{module_of(f)}:{f.config}" for mt, f in FAMILIES.items()}
MODEL_MAPPING = _task_mapping("model")
MODEL_FOR_PRETRAINING_MAPPING = _task_mapping("pretraining")
MODEL_FOR_MASKED_LM_MAPPING = _task_mapping("masked_lm")
MODEL_FOR_CAUSAL_LM_MAPPING = _task_mapping("causal_lm")
MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING = _task_mapping("seq2seq_lm")
MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING = _task_mapping("sequence_classification")
MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING = _task_mapping("token_classification")
MODEL_FOR_QUESTION_ANSWERING_MAPPING = _task_mapping("question_answering")
MODEL_FOR_MULTIPLE_CHOICE_MAPPING = _task_mapping("multiple_choice")


def _import(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def config_class_for(model_type: str | None, source: str = "") -> type[PretrainedConfig]:
    """The config class of ``model_type``; a ValueError lists the supported types."""
    if not model_type:
        raise ValueError(
            f"The config.json of {source or 'this checkpoint'} has no 'model_type', so headway cannot tell "
            f"which architecture it is. Supported model types: {', '.join(sorted(CONFIG_MAPPING))}."
        )
    if model_type not in CONFIG_MAPPING:
        raise ValueError(
            f"Unsupported model_type {model_type!r}{f' in {source}' if source else ''}. "
            f"headway supports: {', '.join(sorted(CONFIG_MAPPING))}."
        )
    return _import(CONFIG_MAPPING[model_type])


def _checkpoint_and_config(
    name_or_path: Any, kwargs: dict[str, Any], *, read_config: bool = True
) -> tuple[Any, dict[str, Any]]:
    """Resolve a checkpoint (popping the hub keywords and ``gguf_file`` from ``kwargs``) and read its
    config dict: ``config.json``, or a GGUF file's metadata when ``gguf_file`` is given."""
    from headway.gguf import GGUFCheckpoint

    gguf_file = kwargs.pop("gguf_file", None)
    if gguf_file is not None or isinstance(name_or_path, GGUFCheckpoint):
        checkpoint = GGUFCheckpoint.resolve(name_or_path, gguf_file, **pop_hub_kwargs(kwargs))
        return checkpoint, checkpoint.config_dict() if read_config else {}
    checkpoint = resolve(name_or_path, **pop_hub_kwargs(kwargs))
    return checkpoint, load_config_dict(checkpoint) if read_config else {}


class AutoConfig:
    """``AutoConfig.from_pretrained(ckpt)`` returns the config class its ``model_type`` names."""

    def __init__(self) -> None:
        raise TypeError("AutoConfig is not instantiated: use AutoConfig.from_pretrained or AutoConfig.for_model")

    @staticmethod
    def for_model(model_type: str, **kwargs: Any) -> PretrainedConfig:
        return config_class_for(model_type)(**kwargs)

    @staticmethod
    def from_pretrained(
        name_or_path: str | os.PathLike | Checkpoint, *, return_unused_kwargs: bool = False, **kwargs: Any
    ) -> PretrainedConfig | tuple[PretrainedConfig, dict[str, Any]]:
        checkpoint, data = _checkpoint_and_config(name_or_path, kwargs)
        cls = config_class_for(data.get("model_type"), checkpoint.name)
        config, unused = cls._from_dict_with_overrides(data, kwargs, keep_unused=not return_unused_kwargs)
        config.name_or_path = checkpoint.name
        return (config, unused) if return_unused_kwargs else config


class _AutoModel:
    """Base of the AutoModel* classes: a task's table, looked up by the config's ``model_type``."""

    _mapping: ClassVar[dict[str, str]] = {}

    def __init__(self) -> None:
        raise TypeError(f"{type(self).__name__} is not instantiated: use from_pretrained or from_config")

    @classmethod
    def model_class_for(cls, config: PretrainedConfig) -> type:
        model_type = config.model_type
        if model_type not in cls._mapping:
            supported = ", ".join(sorted(cls._mapping))
            raise ValueError(
                f"{cls.__name__} has no model for model_type {model_type!r} ({type(config).__name__}). "
                f"Model types it supports: {supported}."
            )
        return _import(cls._mapping[model_type])

    @classmethod
    def from_config(cls, config: PretrainedConfig, **kwargs: Any) -> Any:
        if not isinstance(config, PretrainedConfig):
            raise TypeError(f"from_config expects a PretrainedConfig, got {type(config).__name__}")
        return cls.model_class_for(config).from_config(config, **kwargs)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike | Checkpoint, *, config: PretrainedConfig | None = None, **kwargs: Any
    ) -> Any:
        if config is None:
            checkpoint, data = _checkpoint_and_config(name_or_path, kwargs)
            config = config_class_for(data.get("model_type"), checkpoint.name).from_dict(data)
            config.name_or_path = checkpoint.name
        else:
            checkpoint, _ = _checkpoint_and_config(name_or_path, kwargs, read_config=False)
        # Keywords naming config fields (num_labels=3, ...) are applied by the model's from_pretrained.
        return cls.model_class_for(config).from_pretrained(checkpoint, config=config, **kwargs)


class AutoModel(_AutoModel):
    _mapping = MODEL_MAPPING


class AutoModelForSequenceClassification(_AutoModel):
    _mapping = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING


class AutoModelForTokenClassification(_AutoModel):
    _mapping = MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING


class AutoModelForQuestionAnswering(_AutoModel):
    _mapping = MODEL_FOR_QUESTION_ANSWERING_MAPPING


class AutoModelForMaskedLM(_AutoModel):
    _mapping = MODEL_FOR_MASKED_LM_MAPPING


class AutoModelForCausalLM(_AutoModel):
    _mapping = MODEL_FOR_CAUSAL_LM_MAPPING


class AutoModelForSeq2SeqLM(_AutoModel):
    _mapping = MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING


class AutoModelForPreTraining(_AutoModel):
    _mapping = MODEL_FOR_PRETRAINING_MAPPING


class AutoModelForMultipleChoice(_AutoModel):
    _mapping = MODEL_FOR_MULTIPLE_CHOICE_MAPPING


class AutoTokenizer:
    """``AutoTokenizer.from_pretrained(ckpt)``: a fast tokenizer from tokenizer.json or vocabulary files."""

    def __init__(self) -> None:
        raise TypeError("AutoTokenizer is not instantiated: use AutoTokenizer.from_pretrained")

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, *args: Any, **kwargs: Any) -> Any:
        from headway.tokenization import Tokenizer

        return Tokenizer.from_pretrained(name_or_path, *args, **kwargs)
