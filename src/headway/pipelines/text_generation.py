"""text-generation: continue prompts, or chats, with a causal language model.

    >>> from headway import pipeline
    >>> generator = pipeline("text-generation", model="openai-community/gpt2")
    >>> generator("Once upon a time", max_new_tokens=20, do_sample=False)
    [{'generated_text': 'Once upon a time, ...'}]
    >>> generator([{"role": "user", "content": "Hi!"}], max_new_tokens=20)  # a chat: the reply is appended
    [{'generated_text': [{'role': 'user', 'content': 'Hi!'}, {'role': 'assistant', 'content': '...'}]}]

Returns what the reference returns: a list of ``num_return_sequences`` dicts per input (one list for one
input, a list of lists for a list), each ``{"generated_text": str}`` (the prompt plus the new text by
default; only the new text with ``return_full_text=False``), ``{"generated_text": [messages]}`` for a
chat, or ``{"generated_token_ids": [ids]}`` with ``return_tensors=True``.

As in the reference, the generation settings that neither the caller nor the model's generation config
set default to ``max_new_tokens=256, do_sample=True, temperature=0.7``. Batches are padded on the LEFT
(what a decoder needs to continue every row at once) by the pipeline itself: the user's tokenizer keeps
its ``padding_side``.
"""

from __future__ import annotations

import copy
import enum
import logging
from collections.abc import Mapping
from typing import Any

import torch

from headway.pipelines.base import Feature, Pipeline, check_text, describe

logger = logging.getLogger(__name__)


class ReturnType(enum.Enum):
    """What each result holds: the token ids, the new text only, or the prompt and the new text."""

    TENSORS = 0
    NEW_TEXT = 1
    FULL_TEXT = 2


# The reference's pipeline defaults, used where neither the caller nor the model's generation config
# sets the value (sampling ones only when sampling).
GENERATION_DEFAULTS: dict[str, Any] = {"max_new_tokens": 256, "do_sample": True, "temperature": 0.7}
_SAMPLING_PARAMS = frozenset(
    {"temperature", "top_k", "top_p", "min_p", "top_h", "typical_p", "epsilon_cutoff", "eta_cutoff"}
)
# Keywords the pipeline itself puts among the forward parameters (not generation settings).
_PIPELINE_FORWARD_KEYS = frozenset({"prefix_length", "tokenizer"})


class Chat:
    """A conversation given as one input: the list of ``{"role", "content"}`` messages it wraps."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages

    def __repr__(self) -> str:
        return f"Chat({self.messages!r})"


def _looks_like_chat(value: Any) -> bool:
    """A list of messages (its first item is a dict), as opposed to a list of prompts or of chats."""
    return isinstance(value, (list, tuple)) and bool(value) and isinstance(value[0], Mapping)


class TextGenerationPipeline(Pipeline):
    """Continue prompts or chats with a ``...ForCausalLM`` (or ``...LMHeadModel``) model.

    Parameters (at construction or per call):
        return_full_text: True (default) returns the prompt followed by the new text, False the new text
            only. For a chat, True returns the conversation with the reply appended.
        return_text: Return text (the default); only checked against the other two options.
        return_tensors: Return ``generated_token_ids`` (prompt and new tokens, no padding) instead of text.
        prefix: Text put before every prompt (not returned as part of it).
        clean_up_tokenization_spaces: Passed to ``tokenizer.decode``.
        skip_special_tokens: Passed to ``tokenizer.decode`` (default True).
        continue_final_message: For a chat: continue its last message instead of starting a reply (by
            default True exactly when the last message is the assistant's).
        stop_sequence: A string (or list) that ends generation once generated.
        handle_long_generation: None, or "hole": cut the prompt on the left so that the new tokens fit
            in ``tokenizer.model_max_length``.
        truncation, max_length, add_special_tokens, tokenizer_encode_kwargs: Passed to the tokenizer
            (``max_length`` is also ``generate``'s total length, as in the reference).
        tools, documents: Passed to the chat template.
        generate_kwargs: A dict of ``generate`` arguments; any other keyword (``max_new_tokens``,
            ``do_sample``, ``temperature``, ``num_return_sequences``, ``streamer``, ``generation_config``...)
            goes to ``generate`` too.
    """

    default_task = "text-generation"
    model_kind = ""  # ForCausalLM and LMHeadModel: checked in __init__

    def __init__(self, model: Any, tokenizer: Any, **kwargs: Any) -> None:
        name = type(model).__name__
        if not callable(getattr(model, "generate", None)):
            raise TypeError(
                f"The text-generation pipeline needs a model that can generate (a *ForCausalLM or *LMHeadModel), "
                f"got {name}. Load one with AutoModelForCausalLM or let pipeline() load it from a checkpoint."
            )
        self._pad_warned = False
        super().__init__(model, tokenizer, **kwargs)
        prefix = getattr(self.model.config, "prefix", None)
        if "prefix" not in self._defaults[0] and isinstance(prefix, str) and prefix:
            pre, fwd, _ = self._sanitize_parameters(prefix=prefix)
            self._defaults[0].update(pre)
            self._defaults[1].update(fwd)

    # -- parameters -------------------------------------------------------------------------------------
    def _sanitize_parameters(
        self,
        return_full_text: bool | None = None,
        return_tensors: bool | None = None,
        return_text: bool | None = None,
        return_type: ReturnType | None = None,
        clean_up_tokenization_spaces: bool | None = None,
        prefix: str | None = None,
        handle_long_generation: str | None = None,
        stop_sequence: str | list[str] | None = None,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        continue_final_message: bool | None = None,
        skip_special_tokens: bool | None = None,
        tokenizer_encode_kwargs: dict[str, Any] | None = None,
        tools: list[Any] | None = None,
        documents: list[Any] | None = None,
        generate_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        generate = {**(generate_kwargs or {}), **kwargs}
        pre: dict[str, Any] = {}
        for key in ("add_special_tokens", "padding"):
            if key in generate:
                pre[key] = generate.pop(key)
        pre.pop("padding", None)  # rows are padded per batch, on the left
        if truncation is not None:
            pre["truncation"] = truncation
        if max_length is not None:
            pre["max_length"] = generate["max_length"] = max_length
        for key, value in (
            ("tools", tools),
            ("documents", documents),
            ("continue_final_message", continue_final_message),
            ("tokenizer_encode_kwargs", tokenizer_encode_kwargs),
        ):
            if value is not None:
                pre[key] = value
        if prefix is not None:
            if not isinstance(prefix, str):
                raise TypeError(f"prefix must be a str, got {describe(prefix)}")
            pre["prefix"] = prefix
            if prefix:
                ids = self.tokenizer(prefix, add_special_tokens=bool(pre.get("add_special_tokens", False)))
                generate["prefix_length"] = len(ids["input_ids"])
        if handle_long_generation is not None:
            if handle_long_generation != "hole":
                raise ValueError(
                    f"handle_long_generation must be None or 'hole', got {handle_long_generation!r}"
                )
            pre["handle_long_generation"] = handle_long_generation
            pre["generate_kwargs"] = dict(generate)
        if stop_sequence is not None:
            generate["stop_strings"] = (
                [stop_sequence] if isinstance(stop_sequence, str) else list(stop_sequence)
            )
            generate["tokenizer"] = self.tokenizer

        post: dict[str, Any] = {}
        if return_full_text is not None and return_type is None:
            if return_text is not None:
                raise ValueError("return_text is mutually exclusive with return_full_text")
            if return_tensors is not None:
                raise ValueError("return_full_text is mutually exclusive with return_tensors")
            return_type = ReturnType.FULL_TEXT if return_full_text else ReturnType.NEW_TEXT
        if return_tensors is not None and return_type is None:
            if return_text is not None:
                raise ValueError("return_text is mutually exclusive with return_tensors")
            return_type = ReturnType.TENSORS if return_tensors else None
        if return_type is not None:
            if not isinstance(return_type, ReturnType):
                raise TypeError(f"return_type must be a ReturnType, got {describe(return_type)}")
            post["return_type"] = return_type
        for key, value in (
            ("clean_up_tokenization_spaces", clean_up_tokenization_spaces),
            ("continue_final_message", continue_final_message),
            ("skip_special_tokens", skip_special_tokens),
        ):
            if value is not None:
                post[key] = value
        return pre, generate, post

    def _call_parameters(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        """As the base, except that a call's ``generation_config`` replaces the generation settings given
        at construction (as the reference: they are not layered over it)."""
        call = self._sanitize_parameters(**kwargs)
        pre, fwd, post = ({**default, **given} for default, given in zip(self._defaults, call))
        if "generation_config" in call[1]:
            fwd = {
                key: value for key, value in fwd.items() if key in call[1] or key in _PIPELINE_FORWARD_KEYS
            }
        return pre, fwd, post

    # -- inputs -----------------------------------------------------------------------------------------
    def __call__(self, text_inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Complete a prompt (str), a chat (list of message dicts), or a list of either.

        Returns:
            A list of ``num_return_sequences`` result dicts for one input; a list of such lists for a
            list of inputs (in input order); an iterator of them for a generator or dataset.
        """
        if _looks_like_chat(text_inputs):
            text_inputs = Chat(list(text_inputs))
        return super().__call__(text_inputs, *args, **kwargs)

    def _check_input(self, item: Any, index: int | None = None) -> Any:
        what = self._what(index)
        if isinstance(item, Chat) or _looks_like_chat(item):
            messages = item.messages if isinstance(item, Chat) else list(item)
            return Chat(_check_messages(messages, what))
        if isinstance(item, (list, tuple)):
            raise TypeError(
                f"{what} is {describe(item)}; expected a prompt (str) or a chat (a list of "
                "{'role': ..., 'content': ...} dicts)"
            )
        return check_text(item, what)

    def preprocess(
        self,
        inputs: list[Any],
        prefix: str = "",
        add_special_tokens: bool | None = None,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        continue_final_message: bool | None = None,
        tokenizer_encode_kwargs: dict[str, Any] | None = None,
        tools: list[Any] | None = None,
        documents: list[Any] | None = None,
        handle_long_generation: str | None = None,
        generate_kwargs: dict[str, Any] | None = None,
    ) -> list[list[Feature]]:
        tokenizer_kwargs = {
            key: value
            for key, value in (
                ("add_special_tokens", add_special_tokens),
                ("truncation", truncation),
                ("max_length", max_length),
            )
            if value is not None
        }
        tokenizer_kwargs.update(tokenizer_encode_kwargs or {})
        ids: list[list[int]] = [[] for _ in inputs]
        texts = [i for i, item in enumerate(inputs) if isinstance(item, str)]
        if texts:  # one tokenizer call for every prompt of the window
            encoded = self.tokenizer([prefix + inputs[i] for i in texts], **tokenizer_kwargs)
            for i, row in zip(texts, encoded["input_ids"]):
                ids[i] = list(row)
        chat_kwargs = {k: v for k, v in tokenizer_kwargs.items() if k != "add_special_tokens"}
        features: list[list[Feature]] = []
        for i, item in enumerate(inputs):
            meta: dict[str, Any] = {"prompt": item}
            if isinstance(item, Chat):
                # A chat ending with the assistant's message is a prefill: continue it by default.
                cont = continue_final_message
                if cont is None:
                    cont = item.messages[-1]["role"] == "assistant"
                encoding = self.tokenizer.apply_chat_template(
                    item.messages,
                    add_generation_prompt=not cont,
                    continue_final_message=cont,
                    return_dict=True,
                    tools=tools,
                    documents=documents,
                    **chat_kwargs,
                )
                ids[i] = list(encoding["input_ids"])
                meta["continue_final_message"] = cont
            if handle_long_generation == "hole":
                ids[i] = self._make_hole(ids[i], generate_kwargs or {})
            self._check_length(ids[i], i)
            features.append([Feature(ids[i], meta=meta)])
        return features

    def _check_length(self, ids: list[int], index: int) -> None:
        if not ids:
            raise ValueError(f"{self._window_name(index)} gives no tokens; expected a non-empty prompt")
        limit = getattr(self.model.config, "max_input_length", None)
        if limit and len(ids) > limit:
            raise ValueError(
                f"{self._window_name(index)} is {len(ids)} tokens long, more than the {limit} this model can "
                "attend to. Shorten it, pass truncation=True with max_length=..., or "
                "handle_long_generation='hole'."
            )

    def _make_hole(self, ids: list[int], generate_kwargs: dict[str, Any]) -> list[int]:
        """Keep the prompt's last tokens so that the new tokens fit in ``tokenizer.model_max_length``."""
        params = self._get_set_generation_params(self._prepare_generate_kwargs(dict(generate_kwargs)))
        new_tokens = params.get("max_new_tokens")
        if new_tokens is None:
            new_tokens = params["max_length"] - len(ids)
            if new_tokens < 0:
                raise ValueError(
                    "Cannot infer how many new tokens are expected: max_length is below the prompt"
                )
        limit = self.tokenizer.model_max_length
        if len(ids) + new_tokens > limit:
            keep = limit - new_tokens
            if keep <= 0:
                raise ValueError(
                    f"handle_long_generation='hole' cannot work: {new_tokens} new tokens exceed the model's "
                    f"maximum length {limit}"
                )
            ids = ids[-keep:]
        return ids

    def _collate(self, features: list[Feature]) -> dict[str, torch.Tensor]:
        """Pad a batch on the LEFT: each row's last prompt token ends the row, where generation goes on."""
        longest = max(len(f) for f in features)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self._eos_id()
            if longest != min(len(f) for f in features) and not self._pad_warned:
                self._pad_warned = True
                logger.warning(
                    "The tokenizer has no pad_token: batched prompts are padded with eos_token_id %s "
                    "(masked out). Set tokenizer.pad_token to choose another.",
                    pad,
                )
        ids = [[pad] * (longest - len(f)) + f.input_ids for f in features]
        mask = [[0] * (longest - len(f)) + [1] * len(f) for f in features]
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}  # (B, T) each

    def _eos_id(self) -> int:
        eos = self.tokenizer.eos_token_id
        if eos is None:
            eos = self.model.generation_config.eos_token_id
            eos = eos[0] if isinstance(eos, (list, tuple)) else eos
        return int(eos) if eos is not None else 0

    # -- generation settings ----------------------------------------------------------------------------
    def _get_set_generation_params(self, generate_kwargs: dict[str, Any]) -> dict[str, Any]:
        """The settings a ``generate`` call with these keywords does not take from the global defaults:
        the keywords over their ``generation_config`` over the model's generation config."""
        params = self.model.generation_config.to_diff_dict()
        config = generate_kwargs.get("generation_config")
        if config is not None:
            params.update(config.to_diff_dict())
        return {**params, **generate_kwargs}

    def _prepare_generate_kwargs(self, generate_kwargs: dict[str, Any]) -> dict[str, Any]:
        """The caller's settings plus the pipeline's defaults for what nobody set (as the reference)."""
        defaults = dict(GENERATION_DEFAULTS)
        if self.tokenizer.pad_token_id is not None:
            defaults["pad_token_id"] = self.tokenizer.pad_token_id
        given = self._get_set_generation_params(generate_kwargs)
        added = {
            key: value
            for key, value in defaults.items()
            if key not in given and not (key == "max_new_tokens" and "max_length" in given)
        }
        if not {**given, **added}.get("do_sample"):
            added = {key: value for key, value in added.items() if key not in _SAMPLING_PARAMS}
        user_config = generate_kwargs.get("generation_config")
        if user_config is None:
            return {**generate_kwargs, **added}
        user_config = copy.deepcopy(user_config)
        user_config.update(**added)
        return {**generate_kwargs, "generation_config": user_config}

    # -- the model --------------------------------------------------------------------------------------
    def _forward(self, model_inputs: dict[str, torch.Tensor], **generate_kwargs: Any) -> dict[str, Any]:
        input_ids = model_inputs["input_ids"]  # (B, T), left-padded
        prefix_length = generate_kwargs.pop("prefix_length", 0)
        generate_kwargs = self._prepare_generate_kwargs(generate_kwargs)
        if prefix_length:  # a total length (not a count of new tokens) must include the prefix
            params = self._get_set_generation_params(generate_kwargs)
            for length, new_tokens in (("max_length", "max_new_tokens"), ("min_length", "min_new_tokens")):
                if length in params and new_tokens not in params:
                    generate_kwargs[length] = params[length] + prefix_length
        output = self.model.generate(
            input_ids=input_ids, attention_mask=model_inputs["attention_mask"], **generate_kwargs
        )
        in_b = input_ids.shape[0]
        extras: dict[str, Any] = {}
        if isinstance(output, torch.Tensor):
            sequences = output
        else:
            sequences = output.sequences
            out_b = sequences.shape[0]
            for key, value in vars(output).items():
                if key in ("sequences", "past_key_values") or value is None:
                    continue
                if isinstance(value, tuple) and value and isinstance(value[0], torch.Tensor):
                    value = torch.stack(value).swapaxes(0, 1)  # (out_b, steps, ...)
                if isinstance(value, torch.Tensor) and value.shape[0] == out_b:
                    extras[key] = value.reshape(in_b, out_b // in_b, *value.shape[1:])
        out_b = sequences.shape[0]
        sequences = sequences.reshape(in_b, out_b // in_b, -1)  # (B, num_return_sequences, T + new)
        return {"sequences": sequences, "prompt_length": input_ids.shape[1], **extras}

    def postprocess(
        self,
        outputs: dict[str, Any],
        features: list[Feature],
        return_type: ReturnType = ReturnType.FULL_TEXT,
        clean_up_tokenization_spaces: bool | None = None,
        continue_final_message: bool | None = None,
        skip_special_tokens: bool | None = None,
    ) -> list[list[dict[str, Any]]]:
        sequences = outputs["sequences"]  # (B, n, T + new)
        prompt_length = outputs["prompt_length"]  # the padded prompt width
        n = sequences.shape[1]
        extras = {k: v.tolist() for k, v in outputs.items() if k not in ("sequences", "prompt_length")}
        if return_type == ReturnType.TENSORS:
            texts = None
        else:
            # The prompt is cut by token count, as the reference does: its text is the input as given.
            texts = self.tokenizer.batch_decode(
                sequences[:, :, prompt_length:].reshape(-1, sequences.shape[-1] - prompt_length).tolist(),
                skip_special_tokens=True if skip_special_tokens is None else skip_special_tokens,
                clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            )
        results = []
        for row, feature in enumerate(features):
            padding = prompt_length - len(feature)
            records = []
            for k in range(n):
                if texts is None:
                    record: dict[str, Any] = {"generated_token_ids": sequences[row, k, padding:].tolist()}
                else:
                    text = texts[row * n + k]
                    if return_type == ReturnType.FULL_TEXT:
                        text = self._full_text(feature.meta, text, continue_final_message)
                    record = {"generated_text": text}
                for key, values in extras.items():
                    record[key] = values[row][k]
                records.append(record)
            results.append(records)
        return results

    @staticmethod
    def _full_text(meta: dict[str, Any], new_text: str, continue_final_message: bool | None) -> Any:
        """The prompt followed by the new text; for a chat, the conversation with the reply added."""
        prompt = meta["prompt"]
        if isinstance(prompt, str):
            return prompt + new_text
        messages = [dict(message) for message in prompt.messages]
        cont = continue_final_message
        if cont is None:
            cont = meta.get("continue_final_message", messages[-1]["role"] == "assistant")
        if cont:  # the last message (a prefill) goes on
            messages[-1] = {"role": messages[-1]["role"], "content": messages[-1]["content"] + new_text}
            return messages
        return [*messages, {"role": "assistant", "content": new_text}]


def _check_messages(messages: list[Any], what: str) -> list[dict[str, Any]]:
    """Each message must be a dict with a str ``role`` and a ``content`` (or ``tool_calls``)."""
    if not messages:
        raise ValueError(f"{what} is an empty chat; expected at least one message")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise TypeError(f"{what}: message [{index}] is {describe(message)}; expected a dict")
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise ValueError(
                f"{what}: message [{index}] has no role ({describe(dict(message))}); expected "
                "{'role': 'user', 'content': ...}"
            )
        if "content" not in message and "tool_calls" not in message:
            raise ValueError(
                f"{what}: message [{index}] ({role}) has no content; expected {{'role': ..., 'content': ...}}"
            )
    return list(messages)


__all__ = ["Chat", "ReturnType", "TextGenerationPipeline"]
