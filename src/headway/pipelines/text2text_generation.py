"""text2text-generation, summarization and translation: generate a new text from a text with an
encoder-decoder (T5, BART, mBART, Marian, Pegasus), in the form transformers 4.57 had them.

    >>> from headway import pipeline
    >>> summarizer = pipeline("summarization", model="sshleifer/distilbart-cnn-12-6")
    >>> summarizer("An apple a day, keeps the doctor away", min_length=5, max_length=20)
    [{'summary_text': '...'}]
    >>> pipeline("translation_en_to_fr", model="google-t5/t5-base")("How old are you?")
    [{'translation_text': '...'}]

Each input gives a list of ``num_return_sequences`` dicts (``{"generated_text"}``, ``{"summary_text"}`` or
``{"translation_text"}``; ``{"..._token_ids"}`` with ``return_tensors=True``). A list of inputs gives one
dict per input when each has one result, else one list per input, as the reference.

Generation settings, as the reference layers them: the pipeline's defaults (``max_new_tokens=256``,
``num_beams=4``) give way to the values the checkpoint's generation config sets, keywords given at
construction override both, then the entry of ``config.task_specific_params`` named by the task (T5's
"summarize: " / "translate English to French: " prefixes and lengths); a call's keywords come last. When the
checkpoint sets its own ``max_length``, the pipeline's ``max_new_tokens`` default is dropped so that it
counts; otherwise ``max_new_tokens`` wins over a ``max_length`` given later, as in transformers 4.57.

Where headway differs from 4.57, on purpose: batches are right-padded and grouped by length, so results do
not depend on ``batch_size``; ``..._token_ids`` stop at the longest of an input's own sequences (4.57 keeps the
padding of whatever shared its batch); keywords given at construction are not overridden by the checkpoint's
values at call time; an empty text, an input longer than the encoder's positions (with truncation off) and an
unknown language code are errors naming the value rather than crashes or silent unknown tokens.
"""

from __future__ import annotations

import copy
import enum
import logging
from typing import Any

import torch

from headway.pipelines.base import Feature, Pipeline, describe

logger = logging.getLogger(__name__)

# generate() arguments the pipelines pass through besides the GenerationConfig fields.
_GENERATE_ARGUMENTS = frozenset(
    {"generation_config", "logits_processor", "stopping_criteria", "streamer", "decoder_input_ids",
     "decoder_attention_mask", "tokenizer"}
)  # fmt: skip
_TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")


class ReturnType(enum.Enum):
    """What each result holds: token ids or text."""

    TENSORS = 0
    TEXT = 1


def _generation_fields() -> dict[str, Any]:
    from headway.generation.config import GenerationConfig

    return GenerationConfig.fields()


class Text2TextGenerationPipeline(Pipeline):
    """Generate text from text with an encoder-decoder (``AutoModelForSeq2SeqLM``).

    Parameters (at construction or per call):
        return_tensors: Return ``generated_token_ids`` (decoder start token included) instead of text.
        return_text: Accepted for compatibility (text is returned unless ``return_tensors=True``).
        clean_up_tokenization_spaces: Passed to ``tokenizer.decode`` (default False, as the reference).
        truncation: Tokenizer truncation (default off): True or a strategy cuts inputs to the tokenizer's
            ``model_max_length`` (at most the model's positions); with it off, an input longer than the
            model's positions is a ValueError.
        stop_sequence: Stop at this text's first token (its other tokens are ignored, with a warning).
        **generate_kwargs: ``generate`` settings (``max_length``, ``min_length``, ``max_new_tokens``,
            ``num_beams``, ``num_return_sequences``, ``do_sample``, ``generation_config``...). Given at
            construction, the ``GenerationConfig`` fields become the pipeline's ``generation_config``.
    """

    default_task = "text2text-generation"
    return_name = "generated"
    # The pipeline's own defaults, used where the checkpoint's generation config leaves the global default.
    default_generation: dict[str, Any] = {"max_new_tokens": 256, "num_beams": 4}

    def __init__(self, model: Any, tokenizer: Any, **kwargs: Any) -> None:
        config = getattr(model, "config", None)
        if not getattr(config, "is_encoder_decoder", False) or not callable(getattr(model, "generate", None)):
            task = kwargs.get("task") or self.default_task
            raise ValueError(
                f"The {task} pipeline needs an encoder-decoder model that can generate (AutoModelForSeq2SeqLM: "
                f"T5, BART, mBART, Marian, Pegasus), got {type(model).__name__}. For a decoder-only model use "
                "the text-generation pipeline."
            )
        fields = _generation_fields()
        construction = {key: kwargs.pop(key) for key in list(kwargs) if key in fields}
        super().__init__(model, tokenizer, **kwargs)
        self.prefix, self.generation_config = self._pipeline_generation_config(construction)

    # -- settings -----------------------------------------------------------------------------------------
    def _pipeline_generation_config(self, construction: dict[str, Any]) -> tuple[str | None, Any]:
        """The prefix and the generation settings of this pipeline, layered as transformers 4.57 does."""
        from headway.generation.config import GenerationConfig

        fields = _generation_fields()
        values = dict(self.default_generation)
        for key, model_value in self._model_generation_values().items():
            if values.get(key, fields[key]) == fields[key] and model_value != fields[key]:
                values[key] = model_value
        if values.get("temperature") == 0.0:
            values["do_sample"] = False
        values.update(construction)
        default_new = self.default_generation.get("max_new_tokens")
        if (
            default_new is not None
            and values.get("max_new_tokens") == default_new
            and values.get("max_length") not in (None, fields["max_length"])
        ):  # the checkpoint's (or the caller's) max_length counts
            values["max_new_tokens"] = None
        prefix = getattr(self.model.config, "prefix", None)
        task_params = getattr(self.model.config, "task_specific_params", None)
        params = task_params.get(self.task) if isinstance(task_params, dict) else None
        if isinstance(params, dict):
            params = dict(params)  # the model's config is left as it is
            prefix = params.pop("prefix", prefix)
            values.update({key: value for key, value in params.items() if key in fields})
        if values.get("pad_token_id") is None and self.tokenizer.pad_token_id is not None:
            values["pad_token_id"] = self.tokenizer.pad_token_id
        if prefix is not None and not isinstance(prefix, str):
            raise TypeError(f"The model config's prefix must be a str, got {describe(prefix)}")
        return prefix, GenerationConfig(**_without_unused_flags(values))  # None values stay unset

    def _model_generation_values(self) -> dict[str, Any]:
        """The fields the model's generation config sets."""
        fields = _generation_fields()
        return {k: v for k, v in self.model.generation_config.to_diff_dict().items() if k in fields}

    def _sanitize_parameters(
        self,
        return_tensors: bool | None = None,
        return_text: bool | None = None,
        return_type: ReturnType | None = None,
        clean_up_tokenization_spaces: bool | None = None,
        truncation: bool | str | None = None,
        stop_sequence: str | None = None,
        **generate_kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        pre: dict[str, Any] = {}
        if truncation is not None:
            pre["truncation"] = _check_truncation(truncation)
        fields = _generation_fields()
        unknown = sorted(
            key for key in generate_kwargs if key not in fields and key not in _GENERATE_ARGUMENTS
        )
        if unknown:
            raise TypeError(
                f"{self.task} got unexpected keyword arguments {unknown}: they are neither pipeline parameters "
                "nor generate() settings"
            )
        forward = dict(generate_kwargs)
        if stop_sequence is not None:
            forward["eos_token_id"] = self._stop_token(stop_sequence)
        post: dict[str, Any] = {}
        if return_tensors is not None and return_type is None:
            return_type = ReturnType.TENSORS if return_tensors else ReturnType.TEXT
        if return_type is not None:
            if not isinstance(return_type, ReturnType):
                raise TypeError(f"return_type must be a ReturnType, got {describe(return_type)}")
            post["return_type"] = return_type
        if clean_up_tokenization_spaces is not None:
            post["clean_up_tokenization_spaces"] = clean_up_tokenization_spaces
        return pre, forward, post

    def _stop_token(self, stop_sequence: Any) -> int:
        if not isinstance(stop_sequence, str):
            raise TypeError(f"stop_sequence must be a str, got {describe(stop_sequence)}")
        ids = self.tokenizer.encode(stop_sequence, add_special_tokens=False)
        if not ids:
            raise ValueError(f"stop_sequence {stop_sequence!r} gives no tokens; expected some text")
        if len(ids) > 1:
            logger.warning(
                "Stopping on a multiple token sequence is not yet supported: generation stops at the first token "
                "of stop_sequence %r.", stop_sequence,
            )  # fmt: skip
        return ids[0]

    # -- calling --------------------------------------------------------------------------------------------
    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Generate from one text, a list of texts, or a generator / dataset of texts.

        Returns:
            For one text, a list of ``num_return_sequences`` dicts. For a list, one dict per text when each
            has one result (else one list per text), in input order. For a generator, an iterator of lists.
        """
        result = super().__call__(inputs, *args, **kwargs)
        if isinstance(inputs, (list, tuple)) and all(len(records) == 1 for records in result):
            return [records[0] for records in result]
        return result

    def preprocess(
        self, inputs: list[str], truncation: bool | str = False, **params: Any
    ) -> list[list[Feature]]:
        prefix = self.prefix or ""
        return self._encode([prefix + text for text in inputs], truncation)

    def _encode(
        self, texts: list[str], truncation: bool | str, encode: Any = None, **meta: Any
    ) -> list[list[Feature]]:
        """Tokenize a window of texts in one call (``encode`` in place of the tokenizer); one row each.

        Raises:
            ValueError: A row is longer than the model's positions and truncation is off.
        """
        limit = getattr(self.model.config, "max_input_length", None)
        kwargs: dict[str, Any] = {"truncation": truncation}
        truncating = truncation not in (False, "do_not_truncate")
        if truncating and limit and not 0 < self.tokenizer.model_max_length <= limit:
            kwargs["max_length"] = limit  # the tokenizer's own limit would overflow the positions
        encoded = (encode or self.tokenizer)(texts, **kwargs)
        features = []
        for index, ids in enumerate(encoded["input_ids"]):
            ids = list(ids)
            if limit and len(ids) > limit:
                raise ValueError(
                    f"{self._window_name(index)} is {len(ids)} tokens long, more than the {limit} positions of "
                    f"this model's encoder. Pass truncation=True to cut it to {limit} tokens, or shorten it."
                )
            if not ids:
                raise ValueError(f"{self._window_name(index)} gives no tokens; expected some text")
            features.append([Feature(ids, meta=dict(meta))])
        if truncating:
            self._warn_truncated(texts, features, kwargs.get("max_length", self.tokenizer.model_max_length))
        return features

    def _warn_truncated(self, texts: list[str], features: list[list[Feature]], length: int) -> None:
        """Log the inputs that truncation cut (rows at the limit that are longer untruncated)."""
        full = [i for i, feats in enumerate(features) if len(feats[0]) == length]
        if not full:
            return
        lengths = [
            len(ids) for ids in self.tokenizer([texts[i] for i in full], truncation=False)["input_ids"]
        ]
        for index, untruncated in zip(full, lengths):
            if untruncated > length:
                logger.warning(
                    "%s is %d tokens long: it was truncated to %d tokens.",
                    self._window_name(index), untruncated, length,
                )  # fmt: skip

    def _collate(self, features: list[Feature]) -> dict[str, torch.Tensor]:
        batch = super()._collate(features)
        batch.pop("token_type_ids", None)  # not an encoder-decoder input
        forced = features[0].meta.get("forced_bos_token_id")
        if forced is not None:  # mBART-style target language, the same for the whole call
            batch["forced_bos_token_id"] = torch.tensor(forced)
        return batch

    # -- the model ----------------------------------------------------------------------------------------------
    def _check_lengths(self, input_length: int, min_length: int, max_length: int) -> None:
        """Warn about lengths that look wrong for the task (nothing for plain text2text)."""

    def _call_parameters(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        """As the base, with the call's generation settings resolved once (not per batch)."""
        pre, forward, post = super()._call_parameters(kwargs)
        return pre, self._resolve_generation(forward), post

    def _resolve_generation(self, forward: dict[str, Any]) -> dict[str, Any]:
        """The ``generate`` arguments of a call: the pipeline's ``generation_config`` updated with the call's
        settings, plus ``None`` for the fields the model's generation config sets but the pipeline unset (so
        that ``generate`` does not put them back), and the lengths the task's warnings read."""
        fields = _generation_fields()
        call = {key: value for key, value in forward.items() if key in fields}
        lengths = (
            call.get("min_length", self.generation_config.min_length),
            call.get("max_length", self.generation_config.max_length),
        )
        if "generation_config" in forward:  # the caller's config replaces the pipeline's, as in the reference
            return {**forward, "check_lengths": lengths}
        config = copy.deepcopy(self.generation_config)
        config.update(**call)  # warns (once a call) about flags the caller set to no effect
        for key, value in _without_unused_flags(config.to_dict()).items():
            if key in fields and value != getattr(config, key):
                setattr(config, key, value)  # so that generate() does not warn about them at each batch
        if (
            config.max_new_tokens is None
            and "max_length" not in call
            and config.max_length == fields["max_length"]
        ):  # the reference's default of 20 new tokens after the decoder start, within the positions
            positions = getattr(self.model.config, "max_position_embeddings", None)
            length = fields["max_length"] + 1
            config.max_length = min(length, positions) if positions else length
        unset = {
            key: None for key, value in self._model_generation_values().items() if not config.is_set(key)
        }
        others = {key: value for key, value in forward.items() if key not in fields}
        return {**others, **unset, "generation_config": config, "check_lengths": lengths}

    def _forward(
        self,
        model_inputs: dict[str, torch.Tensor],
        check_lengths: tuple[int, int] | None = None,
        **generate_kwargs: Any,
    ) -> dict[str, Any]:
        input_ids = model_inputs["input_ids"]  # (B, T), right-padded
        in_b, input_length = input_ids.shape
        if check_lengths is None:  # called directly, not through __call__
            generate_kwargs = self._resolve_generation(generate_kwargs)
            check_lengths = generate_kwargs.pop("check_lengths")
        self._check_lengths(input_length, *check_lengths)
        forced = model_inputs.get("forced_bos_token_id")
        if forced is not None:
            generate_kwargs = {"forced_bos_token_id": int(forced), **generate_kwargs}
        output = self.model.generate(
            input_ids=input_ids, attention_mask=model_inputs["attention_mask"], **generate_kwargs
        )
        sequences = output if isinstance(output, torch.Tensor) else output.sequences
        out_b = sequences.shape[0]
        sequences = sequences.reshape(in_b, out_b // in_b, -1)  # (B, num_return_sequences, length)
        eos = generate_kwargs.get("eos_token_id", self._setting("eos_token_id", generate_kwargs))
        return {"output_ids": sequences, "eos": eos}

    def _setting(self, name: str, generate_kwargs: dict[str, Any]) -> Any:
        """The value of generation field ``name`` that ``generate`` uses with these arguments."""
        config = generate_kwargs.get("generation_config")
        if config is not None and config.is_set(name):
            return getattr(config, name)
        return getattr(self.model.generation_config, name)

    def postprocess(
        self,
        outputs: dict[str, Any],
        features: list[Feature],
        return_type: ReturnType = ReturnType.TEXT,
        clean_up_tokenization_spaces: bool = False,
    ) -> list[list[dict[str, Any]]]:
        sequences = outputs["output_ids"]  # (B, n, length)
        rows = [_trim(sequences[row], outputs["eos"]) for row in range(sequences.shape[0])]
        if return_type == ReturnType.TENSORS:
            return [[{f"{self.return_name}_token_ids": ids} for ids in row] for row in rows]
        texts = self.tokenizer.batch_decode(
            [ids for row in rows for ids in row],
            skip_special_tokens=True,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
        )
        n = sequences.shape[1]
        key = f"{self.return_name}_text"
        return [[{key: text} for text in texts[row * n : (row + 1) * n]] for row in range(len(rows))]


# Flags that only act in one mode, with their neutral values: (mode test, {flag: neutral}).
_MODE_FLAGS = (
    (lambda v: v.get("num_beams", 1) == 1, {"early_stopping": False, "length_penalty": 1.0}),
    (
        lambda v: not v.get("do_sample", False),
        {
            "temperature": 1.0,
            "top_p": 1.0,
            "top_k": 50,
            "typical_p": 1.0,
            "epsilon_cutoff": 0.0,
            "eta_cutoff": 0.0,
        },
    ),
)


def _without_unused_flags(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the flags of an unused mode (beam-search ones without beams, sampling ones without
    sampling) at their neutral values: they change nothing, and ``generate`` would warn about them at each
    batch when a checkpoint sets them (BART-CNN's ``length_penalty=2.0`` under a call's ``num_beams=1``)."""
    values = dict(values)
    for unused, flags in _MODE_FLAGS:
        if unused(values):
            values.update({flag: neutral for flag, neutral in flags.items() if values.get(flag) is not None})
    return values


def _trim(sequences: torch.Tensor, eos: Any) -> list[list[int]]:
    """An input's sequences (n, length) as lists, cut after the longest one's end: the padding a batch adds
    after an end-of-sequence token is dropped, so ids do not depend on what else was in the batch."""
    ends = []
    eos_ids = torch.tensor(
        [] if eos is None else [eos] if isinstance(eos, int) else list(eos), dtype=torch.long
    )
    for row in sequences:
        hits = torch.isin(row[1:], eos_ids).nonzero()  # position 0 is the decoder's start token
        ends.append(int(hits[0]) + 2 if len(hits) else row.shape[0])
    return sequences[:, : max(ends)].tolist()


def _check_truncation(truncation: Any) -> bool | str:
    if isinstance(truncation, enum.Enum):  # a TruncationStrategy
        truncation = truncation.value
    if isinstance(truncation, bool) or truncation in _TRUNCATION_STRATEGIES:
        return truncation
    raise ValueError(
        f"truncation must be True, False or one of {', '.join(_TRUNCATION_STRATEGIES)}, got {describe(truncation)}"
    )


class SummarizationPipeline(Text2TextGenerationPipeline):
    """Summarize texts (``[{"summary_text": ...}]``) with a seq2seq model (BART-CNN, T5 with "summarize: ").

    Takes the parameters of ``Text2TextGenerationPipeline``; ``min_length`` and ``max_length`` bound the
    summary. Logs the reference's warnings when ``max_length`` is below ``min_length`` or above the input's
    length.
    """

    default_task = "summarization"
    return_name = "summary"

    def _check_lengths(self, input_length: int, min_length: int, max_length: int) -> None:
        if max_length < min_length:
            logger.warning(
                "Your min_length=%d must be inferior than your max_length=%d.", min_length, max_length
            )
        if input_length < max_length:
            logger.warning(
                "Your max_length is set to %d, but your input_length is only %d. Since this is a summarization "
                "task, where outputs shorter than the input are typically wanted, you might consider decreasing "
                "max_length manually, e.g. summarizer('...', max_length=%d)",
                max_length, input_length, input_length // 2,
            )  # fmt: skip


class TranslationPipeline(Text2TextGenerationPipeline):
    """Translate texts (``[{"translation_text": ...}]``) with a seq2seq model.

    The task may be ``"translation_xx_to_yy"``: ``xx`` and ``yy`` become ``src_lang`` and ``tgt_lang`` and
    the task picks T5's ``task_specific_params`` entry (its "translate English to French: " prefix). A plain
    ``"translation"`` task on a model with such entries takes the first one, with a warning.

    Parameters (besides those of ``Text2TextGenerationPipeline``):
        src_lang, tgt_lang: Language codes for multilingual tokenizers (mBART: "en_XX", "fr_XX"): the source
            is tokenized as ``src_lang`` and generation starts with ``tgt_lang``'s token. Single-pair models
            (Marian, T5) ignore them.
    """

    default_task = "translation"
    return_name = "translation"

    def __init__(self, model: Any, tokenizer: Any, **kwargs: Any) -> None:
        task = kwargs.get("task") or self.default_task
        params = getattr(getattr(model, "config", None), "task_specific_params", None) or {}
        if task == "translation" and isinstance(params, dict):
            named = next((key for key in params if key.startswith("translation")), None)
            if named is not None:
                logger.warning(
                    '"translation" task was used, instead of "translation_XX_to_YY", defaulting to "%s"',
                    named,
                )
                kwargs["task"] = named
        super().__init__(model, tokenizer, **kwargs)

    def _sanitize_parameters(
        self, src_lang: str | None = None, tgt_lang: str | None = None, **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        pre, forward, post = super()._sanitize_parameters(**kwargs)
        for name, value in (("src_lang", src_lang), ("tgt_lang", tgt_lang)):
            if value is not None:
                if not isinstance(value, str) or not value:
                    raise TypeError(
                        f"{name} must be a language code (a non-empty str), got {describe(value)}"
                    )
                pre[name] = value
        if src_lang is None and tgt_lang is None:
            languages = translation_languages(self.task)
            if languages is not None:
                pre["src_lang"], pre["tgt_lang"] = languages
        return pre, forward, post

    def preprocess(
        self,
        inputs: list[str],
        truncation: bool | str = False,
        src_lang: str | None = None,
        tgt_lang: str | None = None,
    ) -> list[list[Feature]]:
        build = getattr(self.tokenizer, "_build_translation_inputs", None)
        if build is None:  # a single-pair model: the languages are in the model itself (and T5's prefix)
            return super().preprocess(inputs, truncation=truncation)
        forced: dict[str, int] = {}

        def encode(texts: list[str], **kwargs: Any) -> Any:
            encoded = build(texts, return_tensors=None, src_lang=src_lang, tgt_lang=tgt_lang, **kwargs)
            forced["id"] = int(encoded.pop("forced_bos_token_id"))
            return encoded

        features = self._encode(list(inputs), truncation, encode)
        for feats in features:
            feats[0].meta["forced_bos_token_id"] = forced["id"]
        return features

    def _check_lengths(self, input_length: int, min_length: int, max_length: int) -> None:
        if input_length > 0.9 * max_length:
            logger.warning(
                "Your input_length: %d is bigger than 0.9 * max_length: %d. You might consider increasing your "
                "max_length manually, e.g. translator('...', max_length=400)",
                input_length, max_length,
            )  # fmt: skip


def translation_languages(task: str) -> tuple[str, str] | None:
    """``("en", "fr")`` for ``"translation_en_to_fr"``; None for any other task name (as the reference)."""
    items = task.split("_")
    if task and len(items) == 4 and items[0] == "translation" and items[2] == "to":
        return items[1], items[3]
    return None


__all__ = ["ReturnType", "SummarizationPipeline", "Text2TextGenerationPipeline", "TranslationPipeline"]
