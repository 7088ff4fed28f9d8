"""``GenerationConfig``: the settings of ``generate()`` (length, strategy, sampling, penalties, special tokens).

It reads and writes ``generation_config.json`` with the Hugging Face field names.

Set versus default: as in transformers 5, a field the user never set is told apart from one set to its
default value, because ``generate`` merges three layers by that distinction (the caller's settings over
the checkpoint's ``generation_config.json`` over the global defaults). Defaults therefore live on the
class and only the values somebody set live on the instance: ``GenerationConfig().top_k`` reads 50,
``is_set("top_k")`` is False, and ``to_diff_dict()`` (what ``save_pretrained`` writes) holds exactly the set
values, as the reference's file does. Assigning None to a field unsets it. This is why the class is not a
dataclass, unlike the model configs.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Any, ClassVar

from typing_extensions import Self

logger = logging.getLogger(__name__)

GENERATION_CONFIG_NAME = "generation_config.json"

# Keys of a generation_config.json that describe the file, not the generation.
_METADATA_KEYS = frozenset({"transformers_version", "_commit_hash", "_original_object_hash"})
# Arguments of ``generate()`` that people put in the config by mistake.
_GENERATE_ONLY_ARGUMENTS = (
    "logits_processor",
    "stopping_criteria",
    "prefix_allowed_tokens_fn",
    "synced_gpus",
    "assistant_model",
    "streamer",
    "negative_prompt_ids",
    "negative_prompt_attention_mask",
)


class GenerationConfig:
    """Settings of ``generate()``, with the reference's field names and defaults.

    Args:
        **kwargs: any field below; keys that are not fields are kept as attributes and written back.

    Raises:
        ValueError: a value that cannot work (see ``validate``).
    """

    # -- length ---------------------------------------------------------------------------------------
    max_length: int = 20
    max_new_tokens: int | None = None
    min_length: int = 0
    min_new_tokens: int | None = None
    early_stopping: bool | str = False  # True, False or "never" (beam search)
    max_time: float | None = None
    stop_strings: str | list[str] | None = None
    # -- strategy -------------------------------------------------------------------------------------
    do_sample: bool = False
    num_beams: int = 1
    use_cache: bool = True
    cache_implementation: str | None = None
    cache_config: Any = None
    # -- logits manipulation --------------------------------------------------------------------------
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    min_p: float | None = None
    top_h: float | None = None
    typical_p: float = 1.0
    epsilon_cutoff: float = 0.0
    eta_cutoff: float = 0.0
    repetition_penalty: float = 1.0
    encoder_repetition_penalty: float = 1.0
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    encoder_no_repeat_ngram_size: int = 0
    bad_words_ids: list[list[int]] | None = None
    renormalize_logits: bool | None = None
    forced_bos_token_id: int | None = None
    forced_eos_token_id: int | list[int] | None = None
    remove_invalid_values: bool = False
    exponential_decay_length_penalty: tuple[int, float] | None = None
    suppress_tokens: list[int] | None = None
    begin_suppress_tokens: list[int] | None = None
    sequence_bias: Any = None
    token_healing: bool | None = None
    guidance_scale: float | None = None
    watermarking_config: Any = None
    # -- outputs --------------------------------------------------------------------------------------
    num_return_sequences: int = 1
    output_attentions: bool | None = None
    output_hidden_states: bool | None = None
    output_scores: bool = False
    output_logits: bool | None = None
    return_dict_in_generate: bool = False
    # -- special tokens -------------------------------------------------------------------------------
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    decoder_start_token_id: int | None = None
    # -- assisted generation and performance (kept so that Hub files round-trip) ------------------------
    is_assistant: bool | None = None
    num_assistant_tokens: int = 20
    num_assistant_tokens_schedule: str = "constant"
    assistant_confidence_threshold: float = 0.4
    prompt_lookup_num_tokens: int | None = None
    max_matching_ngram_size: int | None = None
    assistant_early_exit: int | None = None
    assistant_lookbehind: int = 10
    target_lookbehind: int = 10
    compile_config: Any = None
    disable_compile: bool | None = None
    prefill_chunk_size: int | None = None
    # -- deprecated by the reference, still read from old files ----------------------------------------
    low_memory: bool | None = None
    penalty_alpha: float | None = None
    dola_layers: Any = None
    diversity_penalty: float = 0.0
    num_beam_groups: int = 1
    constraints: Any = None
    force_words_ids: Any = None

    extra_output_flags: ClassVar[tuple[str, ...]] = (
        "output_logits",
        "output_scores",
        "output_attentions",
        "output_hidden_states",
    )

    def __init__(self, **kwargs: Any) -> None:
        for key in _METADATA_KEYS:
            kwargs.pop(key, None)
        object.__setattr__(self, "_from_model_config", bool(kwargs.pop("_from_model_config", False)))
        for key, value in kwargs.items():
            setattr(self, key, value)
        self.validate(user_set=set(kwargs))

    # -- set / default ------------------------------------------------------------------------------------
    @classmethod
    def fields(cls) -> dict[str, Any]:
        """Every field with its default value."""
        names = dict.fromkeys(
            n for klass in reversed(cls.__mro__) for n in vars(klass).get("__annotations__", {})
        )
        return {name: getattr(cls, name) for name in names if name != "extra_output_flags"}

    @staticmethod
    def _get_default_generation_params() -> dict[str, Any]:
        """The global defaults that fill whatever the caller and the checkpoint left unset (non-None ones)."""
        return {k: v for k, v in GenerationConfig.fields().items() if v is not None}

    def __setattr__(self, name: str, value: Any) -> None:
        if value is None and name in _FIELDS:
            self.__dict__.pop(name, None)  # None unsets: the default shows through
        else:
            object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if name in _FIELDS:
            self.__dict__.pop(name, None)
        else:
            object.__delattr__(self, name)

    def is_set(self, name: str) -> bool:
        """Whether ``name`` was given a value (by the caller, a file or ``update``) rather than defaulted."""
        return name in self.__dict__

    # -- dict / JSON ----------------------------------------------------------------------------------
    def _own(self) -> dict[str, Any]:
        """The values set on this instance: fields and kept unknown keys."""
        own = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if not k.startswith("_")}
        if self._from_model_config:
            own["_from_model_config"] = True
        return own

    def to_dict(self) -> dict[str, Any]:
        """Every field (defaults included) and every kept unknown key."""
        return _jsonable({**self.fields(), **self._own()})

    def to_diff_dict(self) -> dict[str, Any]:
        """Only what was set: the content of a saved ``generation_config.json``."""
        return _jsonable(self._own())

    def to_json_string(self, use_diff: bool = True) -> str:
        data = self.to_diff_dict() if use_diff else self.to_dict()
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str | os.PathLike, use_diff: bool = True) -> None:
        from headway.checkpoint import atomic_write_text

        atomic_write_text(Path(path), self.to_json_string(use_diff=use_diff))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GenerationConfig):
            return NotImplemented
        return self.to_json_string(use_diff=False) == other.to_json_string(use_diff=False)

    def __hash__(self) -> int:
        return hash(self.to_json_string(use_diff=False))

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"

    def __deepcopy__(self, memo: dict) -> Self:
        new = type(self).__new__(type(self))
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return new

    # -- building -------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> Self | tuple[Self, dict[str, Any]]:
        """A config from a dict; ``kwargs`` override it (``return_unused_kwargs=True`` also returns the
        keywords that are not fields)."""
        return_unused = kwargs.pop("return_unused_kwargs", False)
        config = cls(**data)
        unused = config.update(**kwargs)
        return (config, unused) if return_unused else config

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name: str | os.PathLike,
        config_file_name: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> Self | tuple[Self, dict[str, Any]]:
        """Read ``generation_config.json`` (or ``config_file_name``) of a checkpoint folder or Hub id.

        Keyword arguments that name fields override the file; ``return_unused_kwargs=True`` returns the
        others too. Hub keywords (``revision``, ``cache_dir``, ``local_files_only``, ``token``...) are accepted.

        Raises:
            FileNotFoundError: the checkpoint has no such file (the message names the places looked).
            ValueError: the file is not a JSON object, or holds a value that cannot work.
        """
        from headway.configuration import read_json_object
        from headway.hub import pop_hub_kwargs, resolve

        name = os.fspath(config_file_name) if config_file_name is not None else GENERATION_CONFIG_NAME
        kwargs.pop("_from_auto", None)
        kwargs.pop("_from_pipeline", None)
        checkpoint = resolve(pretrained_model_name, **pop_hub_kwargs(kwargs))
        path = checkpoint.require(name)
        data = read_json_object(path, what="generation config")
        if kwargs.pop("_from_model_config", False):
            return cls.from_model_config(data)
        return cls.from_dict(data, **kwargs)

    @classmethod
    def from_model_config(cls, model_config: Any) -> Self:
        """A config from a model config: its special tokens (eos / bos / pad / decoder_start) and any other
        generation field it holds, for checkpoints without a ``generation_config.json``."""
        data = model_config if isinstance(model_config, dict) else model_config.to_dict()
        values = {k: v for k, v in data.items() if k in _FIELDS and v is not None}
        # Some composite configs keep the decoder's tokens in a sub-config: used where the top level is silent.
        for sub_name in ("decoder", "generator", "text_config"):
            sub = data.get(sub_name)
            if isinstance(sub, dict):
                for key, value in sub.items():
                    if key in _FIELDS and value is not None:
                        values.setdefault(key, value)
                break
        config = cls(_from_model_config=True, **values)
        if not config.return_dict_in_generate and any(getattr(config, f) for f in cls.extra_output_flags):
            config.return_dict_in_generate = True
        return config

    def update(
        self, defaults_only: bool = False, allow_custom_entries: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        """Set the fields named in ``kwargs``; return the keywords that were not used.

        Args:
            defaults_only: only fill fields that are not set yet (how ``generate`` layers the checkpoint's
                settings and the global defaults under the caller's).
            allow_custom_entries: also take keys that are neither fields nor kept keys.
            **kwargs: the values.
        """
        used = []
        for key, value in kwargs.items():
            known = key in _FIELDS or key in self.__dict__
            if not known and not allow_custom_entries:
                continue
            if defaults_only and known and self.is_set(key):
                continue
            setattr(self, key, value)
            used.append(key)
        self.validate(user_set=set(used))
        return {k: v for k, v in kwargs.items() if k not in used}

    # -- files ----------------------------------------------------------------------------------------
    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        config_file_name: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> None:
        """Write the set values to ``save_directory/generation_config.json`` (created if needed).

        The folder is replaced as a whole (``headway.atomic.staged_folder``); its other files stay.

        Raises:
            ValueError: ``save_directory`` is a file, or a value cannot work.
        """
        if kwargs.get("push_to_hub"):
            raise ValueError(
                "push_to_hub=True is not supported by headway; upload the folder with huggingface_hub"
            )
        self.validate()
        from headway.atomic import staged_folder

        with staged_folder(save_directory) as stage:
            self.to_json_file(stage.path / (config_file_name or GENERATION_CONFIG_NAME))

    # -- checks ---------------------------------------------------------------------------------------
    def validate(self, strict: bool = False, *, user_set: set[str] | None = None) -> None:
        """Raise ValueError for a value that cannot work; log a warning for a flag that has no effect.

        Args:
            strict: raise for the flags without effect too.
            user_set: the names set by this call (warnings about flags without effect are limited to them and
                to the flags of the mode they conflict with); None means every set field.
        """
        self._check_values()
        issues = self._ineffective_flags(self.__dict__.keys() if user_set is None else user_set)
        if issues:
            message = "These generation flags have no effect:\n" + "\n".join(f"- {m}" for m in issues)
            if strict:
                raise ValueError(message)
            logger.warning(message)

    def _check_values(self) -> None:
        def bad(name: str, expected: str) -> ValueError:
            return ValueError(f"GenerationConfig.{name} must be {expected}, got {getattr(self, name)!r}")

        if self.early_stopping not in (True, False, "never"):
            raise bad("early_stopping", "True, False or 'never'")
        for name in ("max_length", "min_length", "num_beams", "num_return_sequences"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise bad(name, "an int")
        # Token counts: ints (a bool counts as 0 / 1, as in the reference); a float would end generation one
        # token early in the reference (max_new_tokens=2.0 gives one token), a string fails deep in torch.
        max_new, min_new = self.max_new_tokens, self.min_new_tokens
        if max_new is not None and not (isinstance(max_new, int) and max_new > 0):
            raise bad("max_new_tokens", "a positive int (or None)")
        if min_new is not None and not (isinstance(min_new, int) and min_new >= 0):
            raise bad("min_new_tokens", "a non-negative int (or None)")
        if self.min_length < 0:
            raise bad("min_length", "a non-negative int")
        if self.num_beams < 1:
            raise bad("num_beams", "at least 1")
        if self.num_return_sequences < 1:
            raise bad("num_return_sequences", "at least 1")
        if self.num_return_sequences > 1:
            if self.num_beams == 1 and not self.do_sample:
                raise ValueError(
                    f"GenerationConfig.num_return_sequences={self.num_return_sequences} needs sampling "
                    "(do_sample=True) or beam search (num_beams > 1): greedy search returns one sequence"
                )
            if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
                raise ValueError(
                    f"GenerationConfig.num_return_sequences ({self.num_return_sequences}) must be at most "
                    f"num_beams ({self.num_beams})"
                )
        if not isinstance(self.no_repeat_ngram_size, int) or self.no_repeat_ngram_size < 0:
            raise bad("no_repeat_ngram_size", "a non-negative int (0 turns it off)")
        if not _is_number(self.repetition_penalty) or self.repetition_penalty <= 0:
            raise bad("repetition_penalty", "a positive float (1.0 turns it off)")
        if not _is_number(self.length_penalty):
            raise bad("length_penalty", "a float")
        if self.exponential_decay_length_penalty is not None:
            pair = self.exponential_decay_length_penalty
            if (
                not isinstance(pair, (tuple, list))
                or len(pair) != 2
                or not isinstance(pair[0], int)
                or pair[0] < 0
                or not _is_number(pair[1])
            ):
                raise bad("exponential_decay_length_penalty", "a (start_index >= 0, decay_factor) pair")
        if self.bad_words_ids is not None and (
            not isinstance(self.bad_words_ids, list)
            or not self.bad_words_ids
            or not all(isinstance(ids, list) and ids for ids in self.bad_words_ids)
        ):
            raise bad("bad_words_ids", "a non-empty list of non-empty lists of token ids")
        if self.do_sample:  # the warpers are built only when sampling; elsewhere these values are unused
            if not _is_number(self.temperature) or self.temperature <= 0:
                raise bad(
                    "temperature", "a positive float when do_sample=True (use do_sample=False for greedy)"
                )
            if not isinstance(self.top_k, int) or self.top_k < 0:
                raise bad("top_k", "a non-negative int (0 turns it off)")
            if not _is_number(self.top_p) or not 0 < self.top_p <= 1:
                raise bad("top_p", "a float in (0, 1]")
            if self.min_p is not None and (not _is_number(self.min_p) or not 0 <= self.min_p <= 1):
                raise bad("min_p", "a float in [0, 1] (or None)")
            if not _is_number(self.typical_p) or not 0 < self.typical_p <= 1:
                raise bad("typical_p", "a float in (0, 1]")
        if self.suppress_tokens is not None:
            for forced_name in ("forced_bos_token_id", "forced_eos_token_id"):
                forced = getattr(self, forced_name)
                forced = set() if forced is None else {forced} if isinstance(forced, int) else set(forced)
                if forced and forced <= set(self.suppress_tokens):
                    raise ValueError(
                        f"GenerationConfig.{forced_name} ({sorted(forced)}) is also in suppress_tokens: every "
                        "logit would be -inf at the forcing step. Remove the overlap (use min_new_tokens to "
                        "prevent an early end-of-sequence token)"
                    )
        for name in _GENERATE_ONLY_ARGUMENTS:
            if name in self.__dict__:
                raise ValueError(f"{name!r} is an argument of generate(), not a GenerationConfig field")

    def _ineffective_flags(self, user_set: Any) -> list[str]:
        user_set = set(user_set)
        issues = []
        # Only flags this call set are worth a warning: a value inherited from a checkpoint's file (or from
        # the config that ``generate(generation_config=...)`` layers over the model's) is harmless whatever
        # mode the call picks, and would otherwise warn on every call.
        if not self.do_sample:
            for name, neutral in (
                ("temperature", 1.0),
                ("top_p", 1.0),
                ("min_p", None),
                ("typical_p", 1.0),
                ("top_k", 50),
                ("epsilon_cutoff", 0.0),
                ("eta_cutoff", 0.0),
            ):
                if getattr(self, name) != neutral and name in user_set:
                    issues.append(
                        f"{name}={getattr(self, name)!r} is only used when sampling (do_sample=True)"
                    )
        if self.num_beams == 1:
            for name, neutral in (("early_stopping", False), ("length_penalty", 1.0)):
                if getattr(self, name) != neutral and name in user_set:
                    issues.append(
                        f"{name}={getattr(self, name)!r} is only used by beam search (num_beams > 1)"
                    )
        if not self.return_dict_in_generate:
            for name in self.extra_output_flags:
                if getattr(self, name) is True and name in user_set:
                    issues.append(f"{name}=True is ignored without return_dict_in_generate=True")
        if self.pad_token_id is not None and self.pad_token_id < 0 and "pad_token_id" in user_set:
            issues.append(
                f"pad_token_id={self.pad_token_id} is negative: batched generation with padding fails"
            )
        return issues


_FIELDS = frozenset(GenerationConfig.fields())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """Tuples as lists, dict keys as strings, objects with ``to_dict`` as dicts (what JSON will hold)."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if hasattr(value, "to_dict"):
            return value.to_dict()
        return value

    return {k: convert(v) for k, v in sorted(data.items())}


__all__ = ["GENERATION_CONFIG_NAME", "GenerationConfig"]
