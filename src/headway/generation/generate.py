"""``generate()``: greedy search, sampling and beam search over a decoder with a key/value cache.

A ``...ForCausalLM`` head inherits ``GenerationMixin`` and gains ``generate``, which gives the reference
library's tokens (and, for beam search, its ``sequences_scores``) for the same settings and seed:

- the prompt runs in one forward (``logits_to_keep=1``) into a ``DynamicCache`` reserved to the final
  length, then one token per step; left padding is handled by position ids counted over the attention
  mask (``cumsum - 1``), as the reference does;
- greedy picks ``argmax`` of the processed scores, sampling ``torch.multinomial`` of their softmax (so a
  ``torch.manual_seed`` gives the reference's draws), beam search keeps the reference's fixed-shape
  bookkeeping (running beams, finished beams, the early-stopping heuristic) so that ties break alike;
- finished rows are padded with ``pad_token_id`` (the first ``eos_token_id`` when no pad is set);
- an encoder-decoder (``...ForConditionalGeneration``) runs its encoder once and decodes from
  ``decoder_start_token_id`` into an ``EncoderDecoderCache``, of which beam search moves only the
  self-attention part (``headway.generation.seq2seq``).

Per step the loop does no Python work that grows with the vocabulary or the past, and reads one value
back from the device: whether every row has finished.

The settings come from ``GenerationConfig`` (``headway.generation.config``); the score processors and
stopping criteria they imply are built by ``headway.generation.processors`` and ``.stopping``.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
import torch.nn.functional as F

from headway.generation import seq2seq as seq2seq_inputs
from headway.generation.cache import DynamicCache, EncoderDecoderCache
from headway.outputs import GenerateBeamDecoderOnlyOutput, GenerateDecoderOnlyOutput

logger = logging.getLogger(__name__)

# generate() keywords that are inputs, not settings.
_INPUT_KWARGS = ("input_ids", "attention_mask", "tokenizer")

_warned: set[str] = set()  # messages already logged by _warn_once


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


class GenerationMixin:
    """Adds ``generate`` to a model with a language-model head (``...ForCausalLM``,
    ``...ForConditionalGeneration``).

    A decoder is called only as ``self(input_ids=, attention_mask=, position_ids=, past_key_values=,
    use_cache=, cache_position=, logits_to_keep=1)``; an encoder-decoder as ``self(decoder_input_ids=,
    decoder_attention_mask=, encoder_outputs=, attention_mask=, past_key_values=, use_cache=,
    cache_position=, logits_to_keep=1)``, and must have ``get_encoder()``. Either returns ``.logits`` and
    ``.past_key_values``. An encoder-decoder whose class sets ``groups_encoder_rows`` gets the encoder's
    output once per input, not repeated for each beam or sample.
    """

    # -- the model's default settings ------------------------------------------------------------------
    @property
    def generation_config(self) -> Any:
        """The model's default ``GenerationConfig``: from ``generation_config.json`` when the checkpoint
        has one, else derived from the model config on first use."""
        config = self.__dict__.get("_generation_config")
        if config is None:
            from headway.generation.config import GenerationConfig

            config = GenerationConfig.from_model_config(self.config)
            self.__dict__["_generation_config"] = config
        return config

    @generation_config.setter
    def generation_config(self, value: Any) -> None:
        self.__dict__["_generation_config"] = value

    @classmethod
    def can_generate(cls) -> bool:
        return True

    def load_generation_config(self, checkpoint: Any) -> None:
        """Take ``generation_config.json`` from a resolved ``headway.hub.Checkpoint`` when it has one
        (a GGUF file has none: its settings come from the model config)."""
        from headway.generation.config import GENERATION_CONFIG_NAME, GenerationConfig

        find = getattr(checkpoint, "get", None)
        path = find(GENERATION_CONFIG_NAME) if find is not None else None
        if path is not None:
            self.generation_config = GenerationConfig.from_pretrained(path.parent)

    # -- generate -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        inputs: torch.Tensor | None = None,
        generation_config: Any = None,
        logits_processor: Any = None,
        stopping_criteria: Any = None,
        streamer: Any = None,
        **kwargs: Any,
    ) -> torch.LongTensor | GenerateDecoderOnlyOutput | GenerateBeamDecoderOnlyOutput:
        """Continue each prompt of ``inputs`` (B, T) token by token.

        For an encoder-decoder (``config.is_encoder_decoder``), ``inputs`` and ``attention_mask`` are the
        encoder's, and the decoder generates from ``decoder_input_ids=`` or ``decoder_start_token_id``
        (see ``headway.generation.seq2seq``); the returned ids are the decoder's.

        Args:
            inputs: prompt token ids (B, T), left-padded when the rows differ in length; ``input_ids=``
                works too. None starts every row from ``bos_token_id``.
            generation_config: settings to use instead of ``self.generation_config`` (its unset fields
                are taken from the model's).
            logits_processor: extra processors, run after the ones the settings imply.
            stopping_criteria: extra stopping criteria, on top of the ones the settings imply.
            streamer: receives ``put(prompt_ids)``, then ``put(new_ids)`` each step, then ``end()``.
            **kwargs: ``attention_mask`` (B, T) of 0/1; ``tokenizer`` (for ``stop_strings``); any
                ``GenerationConfig`` field (``max_new_tokens=32``, ``do_sample=True``...), which
                overrides the config for this call only.

        Returns:
            The token ids (B * num_return_sequences, T + new), prompt included; or, with
            ``return_dict_in_generate=True``, a ``GenerateDecoderOnlyOutput`` (greedy, sampling) or a
            ``GenerateBeamDecoderOnlyOutput`` (beam search); ``Generate(Beam)EncoderDecoderOutput`` for an
            encoder-decoder.
        """
        from headway.generation.processors import build_logits_processors
        from headway.generation.stopping import build_stopping_criteria

        settings, inputs_kwargs = self._settings(generation_config, kwargs)
        seq2seq = bool(self.config.is_encoder_decoder)
        if seq2seq:  # the encoder runs once; the decoder's prompt starts with decoder_start_token_id
            encoder_outputs, encoder_mask = seq2seq_inputs.encode(self, inputs, inputs_kwargs, settings)
            start = seq2seq_inputs.decoder_start_token_id(settings, self.config)
            batch = encoder_outputs.last_hidden_state.shape[0]
            input_ids, attention_mask = seq2seq_inputs.decoder_prompt(
                inputs_kwargs, batch, start, self.device
            )
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
        else:
            input_ids = self._prompt_ids(inputs, inputs_kwargs.get("input_ids"), settings)
        beams = settings.num_beams > 1
        if beams and streamer is not None:
            raise ValueError("streamer cannot be used with beam search; set num_beams=1 to stream")
        eos, pad = self._special_tokens(settings, input_ids.device)
        if not seq2seq:
            attention_mask = self._attention_mask(input_ids, inputs_kwargs.get("attention_mask"), eos, pad)
        prompt_len = input_ids.shape[1]
        self._set_lengths(settings, prompt_len, generation_config, kwargs)

        # Left padding: a row's first real token is at position 0 (padding positions are masked anyway).
        position_ids = attention_mask.long().cumsum(-1) - 1  # (B, T)
        position_ids = position_ids.masked_fill(attention_mask == 0, 0)
        if bool(attention_mask.all()):  # nothing masked: the model takes its causal-only path
            attention_mask = None
        expand = max(settings.num_beams, settings.num_return_sequences)
        model_kwargs: dict[str, Any] = {}
        if seq2seq:  # repeated for each beam or sample, unless the model reads one row per group of them
            groups = getattr(self, "groups_encoder_rows", False)
            expanded, encoder_mask = seq2seq_inputs.expand_encoder(
                encoder_outputs, encoder_mask, 1 if groups else expand
            )
            model_kwargs = {"encoder_outputs": expanded, "attention_mask": encoder_mask}
        if expand > 1:
            input_ids = input_ids.repeat_interleave(expand, dim=0)
            position_ids = position_ids.repeat_interleave(expand, dim=0)
            if attention_mask is not None:
                attention_mask = attention_mask.repeat_interleave(expand, dim=0)
        if streamer is not None:
            streamer.put(input_ids.cpu())

        processors = build_logits_processors(
            settings,
            prompt_len,
            device=input_ids.device,
            logits_processor=logits_processor,
            attention_mask=attention_mask,
        )
        criteria = build_stopping_criteria(
            settings,
            tokenizer=inputs_kwargs.get("tokenizer"),
            stopping_criteria=stopping_criteria,
            max_position_embeddings=self.config.max_input_length,
        )
        run = self._beam_search if beams else self._decode
        out = run(
            input_ids, attention_mask, position_ids, settings, processors, criteria, eos, pad, streamer,
            model_kwargs,
        )  # fmt: skip
        if seq2seq and settings.return_dict_in_generate:
            return seq2seq_inputs.encoder_decoder_output(out, encoder_outputs)
        return out

    # -- preparing a call ---------------------------------------------------------------------------------
    def _settings(self, generation_config: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """This call's settings (a copy) and the keywords that are inputs; unknown keywords are an error.

        As the reference layers them: the keywords over ``generation_config`` (when given) over the
        model's ``generation_config`` over the global defaults.
        """
        from headway.generation.config import GenerationConfig

        model_config = self.generation_config
        if generation_config is None:
            settings = copy.deepcopy(model_config)
        elif isinstance(generation_config, GenerationConfig):
            settings = copy.deepcopy(generation_config)
            settings.update(**model_config.to_diff_dict(), defaults_only=True, allow_custom_entries=True)
        else:
            raise TypeError(
                f"generation_config must be a GenerationConfig, got {type(generation_config).__name__}"
            )
        input_names = _INPUT_KWARGS
        if self.config.is_encoder_decoder:
            input_names += seq2seq_inputs.SEQ2SEQ_INPUT_KWARGS
        inputs = {key: kwargs[key] for key in input_names if key in kwargs}
        unused = settings.update(**{k: v for k, v in kwargs.items() if k not in input_names})
        # The reference ignores extras left at None (synced_gpus=None, assistant_model=None...).
        unknown = [key for key, value in unused.items() if value is not None]
        if unknown:
            raise ValueError(
                f"The following `model_kwargs` are not used by the model: {unknown} (note: typos in the "
                "generate arguments will also show up in this list)"
            )
        _check_settings(settings)
        return settings, inputs

    def _prompt_ids(self, inputs: Any, input_ids: Any, settings: Any) -> torch.Tensor:
        if inputs is not None and input_ids is not None:
            raise ValueError("pass the prompt either as `inputs` or as `input_ids=`, not both")
        ids = inputs if inputs is not None else input_ids
        if ids is None:
            if settings.bos_token_id is None:
                raise ValueError("`bos_token_id` has to be defined when no `input_ids` are provided.")
            ids = torch.full((1, 1), int(settings.bos_token_id), dtype=torch.long)
        if not isinstance(ids, torch.Tensor):
            raise TypeError(f"input_ids must be a torch.Tensor of token ids, got {type(ids).__name__}")
        if ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, seq_len), got {tuple(ids.shape)}")
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise TypeError(f"input_ids must hold integer token ids, got dtype {ids.dtype}")
        if ids.shape[0] == 0 or ids.shape[1] == 0:
            raise ValueError(f"input_ids is empty (shape {tuple(ids.shape)}): give at least one prompt token")
        limit = self.config.max_input_length
        if limit is not None and ids.shape[1] > limit:
            raise ValueError(
                f"the prompt has {ids.shape[1]} tokens, more than the {limit} this model can attend to "
                f"(config.max_input_length); shorten it"
            )
        return ids.to(self.device, torch.long)

    def _special_tokens(self, settings: Any, device: torch.device) -> tuple[torch.Tensor | None, int | None]:
        """The eos ids as a 1-D tensor (or None) and the pad id (the first eos when unset, or None)."""
        eos_ids = settings.eos_token_id
        if isinstance(eos_ids, int):
            eos_ids = [eos_ids]
        eos = torch.tensor(list(eos_ids), dtype=torch.long, device=device) if eos_ids else None
        pad = settings.pad_token_id
        if pad is None and eos is not None:
            pad = int(eos_ids[0])
            _warn_once(
                f"pad_token_id is not set: finished sequences are padded with eos_token_id {pad} "
                "(set generation_config.pad_token_id to choose another)."
            )
        return eos, (None if pad is None else int(pad))

    def _attention_mask(
        self, input_ids: torch.Tensor, attention_mask: Any, eos: torch.Tensor | None, pad: int | None
    ) -> torch.Tensor:
        if attention_mask is not None:
            if not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != input_ids.shape:
                shape = tuple(attention_mask.shape) if isinstance(attention_mask, torch.Tensor) else None
                raise ValueError(
                    f"attention_mask must be a tensor of the prompt's shape {tuple(input_ids.shape)}, got "
                    f"{shape if shape is not None else type(attention_mask).__name__}"
                )
            attention_mask = attention_mask.to(input_ids.device)
            if input_ids.shape[0] > 1 and bool((attention_mask[:, -1] == 0).any()):
                logger.warning(
                    "right-padding detected in a batched prompt: decoder-only models need left padding "
                    "(tokenizer.padding_side = 'left') to generate correctly"
                )
            return attention_mask
        # As the reference: the mask is read from the pad token when it is set, differs from every eos
        # token, and occurs in the prompt; otherwise every token is attended.
        if (
            pad is not None
            and (eos is None or not bool((eos == pad).any()))
            and bool((input_ids == pad).any())
        ):
            return input_ids.ne(pad).long()
        return torch.ones_like(input_ids)

    def _set_lengths(self, settings: Any, prompt_len: int, given: Any, kwargs: dict[str, Any]) -> None:
        """Turn max_new_tokens / min_new_tokens into total lengths, as the reference does."""
        default_max = (
            kwargs.get("max_length") is None
            and (given is None or not given.is_set("max_length"))
            and not self.generation_config.is_set("max_length")
        )
        limit = self.config.max_input_length
        if settings.max_new_tokens is not None:
            settings.max_length = prompt_len + settings.max_new_tokens
        elif default_max:
            settings.max_length = type(settings).max_length + prompt_len  # 20 new tokens
            if limit is not None:
                settings.max_length = min(settings.max_length, limit)
        if prompt_len >= settings.max_length:
            name = "decoder_input_ids" if self.config.is_encoder_decoder else "input_ids"
            raise ValueError(
                f"Input length of {name} is {prompt_len}, but `max_length` is set to {settings.max_length}. "
                "Increase `max_length` or, better, set `max_new_tokens`."
            )
        if getattr(settings, "min_new_tokens", None) is not None:
            settings.min_length = prompt_len + settings.min_new_tokens
        if settings.min_length > settings.max_length:
            # As the reference: not an error (a checkpoint's min_length may exceed a call's max_new_tokens);
            # the end-of-sequence tokens stay forbidden and generation stops at max_length.
            logger.warning(
                "min_length (%d) is larger than max_length (%d): generation stops at max_length, without an "
                "end-of-sequence token unless one is forced",
                settings.min_length,
                settings.max_length,
            )

    # -- one forward ----------------------------------------------------------------------------------
    def prepare_inputs_for_generation(
        self,
        input_ids: torch.Tensor,
        past_key_values: DynamicCache | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache_position: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The keywords of one forward of ``generate`` (a hook that wrappers such as peft replace)."""
        if self.config.is_encoder_decoder:  # the ids are the decoder's; the encoder's output is in kwargs
            return {
                "decoder_input_ids": input_ids,
                "attention_mask": attention_mask,  # the encoder's
                "past_key_values": past_key_values,
                "use_cache": past_key_values is not None,
                "cache_position": cache_position,
                "logits_to_keep": 1,
                **kwargs,
            }
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            "past_key_values": past_key_values,
            "use_cache": past_key_values is not None,
            "cache_position": cache_position,
            "logits_to_keep": 1,
            **kwargs,
        }

    def _forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor,
        cache: DynamicCache | EncoderDecoderCache | None,
        cache_position: torch.Tensor,
        model_kwargs: dict[str, Any],
    ) -> Any:
        if model_kwargs:  # an encoder-decoder: the ids and mask are the decoder's, positions its cache's
            inputs = self.prepare_inputs_for_generation(
                input_ids,
                past_key_values=cache,
                decoder_attention_mask=attention_mask,
                cache_position=cache_position,
                **model_kwargs,
            )
        else:
            inputs = self.prepare_inputs_for_generation(
                input_ids,
                past_key_values=cache,
                attention_mask=attention_mask,
                position_ids=position_ids,
                cache_position=cache_position,
            )
        return self(**inputs, return_dict=True)

    def _new_cache(self, max_length: int) -> DynamicCache | EncoderDecoderCache:
        """An empty cache with room for ``max_length - 1`` positions (the last token is never run)."""
        cache = EncoderDecoderCache() if self.config.is_encoder_decoder else DynamicCache()
        cache.reserve(max_length - 1)
        return cache

    def _positions(self, position_ids: torch.Tensor, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Every step's position ids, (N, max_length), and cache positions, (max_length,), made once."""
        prompt_len = position_ids.shape[1]
        steps = torch.arange(1, max_length - prompt_len + 1, device=position_ids.device)
        positions = torch.cat([position_ids, position_ids[:, -1:] + steps], dim=1)
        return positions, torch.arange(max_length, device=position_ids.device)

    # -- greedy search and sampling -------------------------------------------------------------------
    def _decode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor,
        settings: Any,
        processors: Any,
        criteria: Any,
        eos: torch.Tensor | None,
        pad: int | None,
        streamer: Any,
        model_kwargs: dict[str, Any] | None = None,
    ) -> torch.LongTensor | GenerateDecoderOnlyOutput:
        rows, cur = input_ids.shape
        max_length = settings.max_length
        sample = bool(settings.do_sample)
        keep_scores = settings.return_dict_in_generate and settings.output_scores
        keep_logits = settings.return_dict_in_generate and settings.output_logits
        scores_out: tuple[torch.Tensor, ...] = ()
        logits_out: tuple[torch.Tensor, ...] = ()
        # As the reference: finished rows get pad tokens when an eos criterion can finish them.
        fill_finished = pad is not None and any(hasattr(c, "eos_token_id") for c in criteria)

        # Fixed buffers: the sequences, the mask and the positions are views into them at each step.
        sequences = input_ids.new_empty(rows, max_length)  # (N, max_length)
        sequences[:, :cur] = input_ids
        mask = None
        if attention_mask is not None:
            mask = attention_mask.new_ones(rows, max_length)
            mask[:, :cur] = attention_mask
        positions, cache_positions = self._positions(position_ids, max_length)
        model_kwargs = model_kwargs or {}
        cache = self._new_cache(max_length) if settings.use_cache else None
        unfinished = torch.ones(rows, dtype=torch.bool, device=input_ids.device)

        outputs = self._forward(
            input_ids,
            None if mask is None else mask[:, :cur],
            positions[:, :cur],
            cache,
            cache_positions[:cur],
            model_kwargs,
        )
        while True:
            logits = _last_logits(outputs.logits)  # (N, vocab)
            del outputs  # the prompt's logits may be large
            scores = (
                processors(sequences[:, :cur], logits, in_place=not keep_logits)
                if len(processors)
                else logits
            )
            if keep_scores:
                scores_out += (scores,)
            if keep_logits:
                logits_out += (logits,)
            if sample:
                next_tokens = torch.multinomial(F.softmax(scores, dim=-1), num_samples=1).squeeze(1)
            else:
                next_tokens = torch.argmax(scores, dim=-1)
            if fill_finished:
                next_tokens = torch.where(unfinished, next_tokens, pad)
            sequences[:, cur] = next_tokens
            cur += 1
            if streamer is not None:
                streamer.put(next_tokens.cpu())
            unfinished &= ~criteria(sequences[:, :cur], scores)
            if cur >= max_length or not bool(unfinished.any()):
                break
            if cache is not None:  # one new token over the cached past
                outputs = self._forward(
                    next_tokens[:, None],
                    None if mask is None else mask[:, :cur],
                    positions[:, cur - 1 : cur],
                    cache,
                    cache_positions[cur - 1 : cur],
                    model_kwargs,
                )
            else:  # no cache: the whole sequence again
                outputs = self._forward(
                    sequences[:, :cur],
                    None if mask is None else mask[:, :cur],
                    positions[:, :cur],
                    None,
                    cache_positions[:cur],
                    model_kwargs,
                )
        if streamer is not None:
            streamer.end()
        sequences = sequences[:, :cur].clone() if cur < max_length else sequences
        if not settings.return_dict_in_generate:
            return sequences
        return GenerateDecoderOnlyOutput(
            sequences=sequences,
            scores=scores_out if keep_scores else None,
            logits=logits_out if keep_logits else None,
            past_key_values=cache,
        )

    # -- beam search ----------------------------------------------------------------------------------
    def _beam_search(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor,
        settings: Any,
        processors: Any,
        criteria: Any,
        eos: torch.Tensor | None,
        pad: int | None,
        streamer: Any,
        model_kwargs: dict[str, Any] | None = None,
    ) -> torch.LongTensor | GenerateBeamDecoderOnlyOutput:
        """Beam search (beam sampling with ``do_sample``), with the reference's bookkeeping.

        Per prompt it keeps ``num_beams`` running hypotheses and the ``num_beams`` best finished ones. Each
        step takes the best ``keep = max(2, 1 + n_eos) * num_beams`` continuations over all running beams
        (so that enough stay unfinished when some end), continues the best unfinished ``num_beams``, and
        merges the finished ones among the first ``num_beams`` into the finished set, their scores divided
        by ``generated_length ** length_penalty``.
        """
        num_beams = settings.num_beams
        rows, cur = input_ids.shape
        batch = rows // num_beams
        prompt_len = cur
        max_length = settings.max_length
        length_penalty = settings.length_penalty
        early_stopping = settings.early_stopping
        sample = bool(settings.do_sample)
        device = input_ids.device
        keep_scores = settings.return_dict_in_generate and settings.output_scores
        keep_logits = settings.return_dict_in_generate and settings.output_logits
        scores_out: tuple[torch.Tensor, ...] = ()
        logits_out: tuple[torch.Tensor, ...] = ()

        n_eos = 0 if eos is None else eos.shape[0]
        keep = max(2, 1 + n_eos) * num_beams
        in_first_beams = torch.arange(keep, device=device) < num_beams  # (keep,)
        # The reference fills unwritten places with the pad id, or the first eos when pad is 0 or unset.
        fill = -1 if eos is None else (pad if pad else int(eos[0]))
        running = torch.full((batch, num_beams, max_length), fill, dtype=torch.long, device=device)
        running[:, :, :cur] = input_ids.view(batch, num_beams, cur)
        finished = running.clone()
        # Only the first beam of a prompt starts alive, so the first step does not pick one token n times.
        running_scores = torch.zeros(batch, num_beams, device=device)
        running_scores[:, 1:] = -1e9
        finished_scores = torch.full((batch, num_beams), -1e9, device=device)
        is_finished = torch.zeros(batch, num_beams, dtype=torch.bool, device=device)
        may_improve = torch.ones(batch, 1, dtype=torch.bool, device=device)
        hits = torch.zeros(batch, num_beams, dtype=torch.bool, device=device)
        # Which flat row each generated token came from; -1 where nothing was generated.
        running_beams = torch.full((batch, num_beams, max_length - cur), -1, dtype=torch.int32, device=device)
        finished_beams = running_beams.clone()
        row_offset = torch.arange(batch, device=device)[:, None] * num_beams  # (B, 1)

        mask = None
        if attention_mask is not None:
            mask = attention_mask.new_ones(rows, max_length)
            mask[:, :cur] = attention_mask
        positions, cache_positions = self._positions(position_ids, max_length)
        model_kwargs = model_kwargs or {}
        cache = self._new_cache(max_length) if settings.use_cache else None

        flat_running = input_ids
        own_scores = processors.headway_only()  # the processors' output is this step's own tensor
        outputs = self._forward(
            input_ids,
            None if mask is None else mask[:, :cur],
            positions[:, :cur],
            cache,
            cache_positions[:cur],
            model_kwargs,
        )
        while True:
            logits = _last_logits(outputs.logits)  # (B * beams, vocab)
            del outputs
            log_probs = F.log_softmax(logits, dim=-1)  # a new tensor: the processors may write into it
            if len(processors):
                log_probs = processors(flat_running, log_probs, in_place=True)
            if keep_logits:
                logits_out += (logits.clone(),)
            if keep_scores:
                scores_out += (log_probs.clone(),)
            vocab = log_probs.shape[-1]
            totals = log_probs.view(batch, num_beams, vocab)
            if own_scores:
                totals += running_scores[:, :, None]  # log_probs is this step's own: no third (N, V) tensor
            else:
                totals = totals + running_scores[:, :, None]
            totals = totals.reshape(batch, num_beams * vocab)

            # The best `keep` continuations over all beams of a prompt.
            if sample:
                top = torch.multinomial(F.softmax(totals, dim=-1), num_samples=keep)
                top_scores = torch.gather(totals, 1, top)
            else:
                top_scores, top = torch.topk(totals, k=keep)  # (B, keep)
            source = top // vocab  # the beam each continuation extends
            tokens = top % vocab
            cand = _gather_beams(running, source)  # (B, keep, max_length)
            cand[:, :, cur] = tokens
            cand_beams = _gather_beams(running_beams, source)  # (B, keep, max_length - prompt_len)
            cand_beams[:, :, cur - prompt_len] = source + row_offset
            hits = criteria(cand[:, :, : cur + 1].reshape(batch * keep, cur + 1), scores_out or None)
            hits = hits.view(batch, keep)

            # The unfinished best `num_beams` continue.
            alive_scores = top_scores + hits.to(torch.float32) * -1.0e9
            chosen = torch.topk(alive_scores, k=num_beams)[1]
            running = _gather_beams(cand, chosen)
            running_scores = _gather_beams(alive_scores, chosen)
            running_beams = _gather_beams(cand_beams, chosen)

            # The finished ones among the first `num_beams` join the finished set if they score better.
            just_finished = hits & in_first_beams[None, :]
            final_scores = top_scores / ((cur + 1 - prompt_len) ** length_penalty)
            set_is_full = torch.all(is_finished, dim=-1, keepdim=True) & (early_stopping is True)
            final_scores += set_is_full.to(torch.float32) * -1.0e9
            final_scores += (~may_improve).to(torch.float32) * -1.0e9
            final_scores += (~just_finished) * -1.0e9
            merged_scores = torch.cat((finished_scores, final_scores), dim=1)
            best = torch.topk(merged_scores, k=num_beams)[1]
            finished = _gather_beams(torch.cat((finished, cand), dim=1), best)
            finished_scores = _gather_beams(merged_scores, best)
            finished_beams = _gather_beams(torch.cat((finished_beams, cand_beams), dim=1), best)
            is_finished = _gather_beams(torch.cat((is_finished, just_finished), dim=1), best)

            if cache is not None:  # the cache follows the surviving beams
                beam_idx = running_beams[..., cur - prompt_len].reshape(-1)
                if isinstance(cache, EncoderDecoderCache):
                    # Beams only change places within one input, whose beams share their cross-attention
                    # keys: only the self-attention cache moves.
                    cache.self_attention_cache.reorder_cache(beam_idx)
                else:
                    cache.reorder_cache(beam_idx)
            cur += 1
            may_improve = _may_improve(
                may_improve,
                running_scores,
                finished_scores,
                is_finished,
                cur,
                max_length,
                prompt_len,
                early_stopping,
                length_penalty,
            )
            go_on = may_improve.any() & ~(is_finished.all() & (early_stopping is True)) & ~hits.all()
            if not bool(go_on):
                break
            flat_running = running[:, :, :cur].reshape(rows, cur)
            step_ids = flat_running[:, -1:] if cache is not None else flat_running
            start = cur - step_ids.shape[1]
            outputs = self._forward(
                step_ids,
                None if mask is None else mask[:, :cur],
                positions[:, start:cur],
                cache,
                cache_positions[start:cur],
                model_kwargs,
            )

        count = settings.num_return_sequences
        sequences = finished[:, :count].reshape(batch * count, max_length)
        sequence_scores = finished_scores[:, :count].reshape(-1)
        beam_indices = finished_beams[:, :count].reshape(batch * count, max_length - prompt_len)
        generated = int((beam_indices + 1).bool().sum(dim=1).max())  # the longest kept hypothesis
        sequences = sequences[:, : prompt_len + generated]
        beam_indices = beam_indices[:, :generated]
        if not settings.return_dict_in_generate:
            return sequences
        return GenerateBeamDecoderOnlyOutput(
            sequences=sequences,
            sequences_scores=sequence_scores if settings.output_scores else None,
            scores=scores_out if keep_scores else None,
            logits=logits_out if keep_logits else None,
            beam_indices=beam_indices,
            past_key_values=cache,
        )


def _last_logits(logits: torch.Tensor) -> torch.Tensor:
    """The last position's logits (N, vocab) in float32: a view when the model returned just that position
    in float32 (``logits_to_keep=1``), else a copy, so that the full logits can be freed."""
    last = logits[:, -1, :]
    if logits.shape[1] == 1 and last.dtype == torch.float32:
        return last
    return last.to(dtype=torch.float32, copy=True)


def _gather_beams(tensor: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Rows ``indices`` (B, k) of ``tensor`` (B, beams, ...) along the beam dimension -> (B, k, ...)."""
    while indices.dim() < tensor.dim():
        indices = indices.unsqueeze(-1)
    return torch.take_along_dim(tensor, indices, dim=1)


def _may_improve(
    may_improve: torch.Tensor,
    running_scores: torch.Tensor,
    finished_scores: torch.Tensor,
    is_finished: torch.Tensor,
    cur_len: int,
    max_length: int,
    prompt_len: int,
    early_stopping: bool | str,
    length_penalty: float,
) -> torch.Tensor:
    """(B, 1): whether the best running beam could still beat the worst finished one.

    The running beam's best possible final score is estimated at the current length, or, with
    ``early_stopping="never"`` and a positive length penalty (longer is better), at ``max_length``.
    """
    if early_stopping == "never" and length_penalty > 0.0:
        best_length = max_length - prompt_len
    else:
        best_length = cur_len - prompt_len
    best_running = running_scores[:, :1] / (best_length**length_penalty)
    worst_finished = torch.where(is_finished, torch.min(finished_scores, dim=1, keepdim=True)[0], -1.0e9)
    return may_improve & torch.any(best_running > worst_finished, dim=-1, keepdim=True)


def _check_settings(settings: Any) -> None:
    """ValueError for the strategies generate does not implement (GenerationConfig checks the values)."""
    if settings.num_beam_groups not in (None, 1):
        raise ValueError(f"group beam search (num_beam_groups={settings.num_beam_groups}) is not supported")
    if settings.constraints is not None or settings.force_words_ids is not None:
        raise ValueError("constrained beam search (constraints, force_words_ids) is not supported")
    if settings.penalty_alpha is not None and settings.penalty_alpha > 0 and not settings.do_sample:
        raise ValueError(f"contrastive search (penalty_alpha={settings.penalty_alpha}) is not supported")


__all__ = ["GenerationMixin"]
