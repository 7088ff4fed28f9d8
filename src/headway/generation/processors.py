"""Logits processors: what ``generate`` does to the next-token scores before it picks a token.

Each processor maps ``(input_ids (B, T), scores (B, V)) -> scores (B, V)`` with tensor operations over the
whole batch and vocabulary (no Python loop over tokens). The warpers (temperature, top-k, top-p, min-p,
typical) reshape the distribution and are used only when sampling. ``build_logits_processors`` returns
the processors a ``GenerationConfig`` asks for, in the reference's order: the order changes the numbers
(top-p after temperature is not top-p before it).
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import math
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from headway.generation.config import GenerationConfig

logger = logging.getLogger(__name__)

_NEG_INF = -math.inf
# Set while a ``LogitsProcessorList`` runs with ``in_place=True``: the scores are ``generate``'s own
# temporaries, so the built-in processors that only write -inf write it into them instead of a copy.
_IN_PLACE: contextvars.ContextVar[bool] = contextvars.ContextVar("headway_processors_in_place", default=False)


def _token_ids(ids: int | list[int] | torch.Tensor, device: Any = None) -> torch.Tensor:
    """One id, a list of ids or a tensor -> a 1-D long tensor."""
    if isinstance(ids, torch.Tensor):
        return ids.reshape(-1).to(device=device, dtype=torch.long)
    if isinstance(ids, int):
        ids = [ids]
    return torch.tensor(list(ids), dtype=torch.long, device=device)


def _forbid(scores: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``scores`` with the vocabulary entries listed in ``ids`` set to -inf (ids outside the vocabulary
    ignored): a few entries written, not a (V,) mask built and applied."""
    ids = ids.to(scores.device)
    ids = ids[(ids >= 0) & (ids < scores.shape[-1])]
    return scores.index_fill_(-1, ids, _NEG_INF) if _IN_PLACE.get() else scores.index_fill(-1, ids, _NEG_INF)


def _ban(scores: torch.Tensor, banned: torch.Tensor) -> torch.Tensor:
    """``scores`` with -inf where the boolean ``banned`` (same shape) is true."""
    return scores.masked_fill_(banned, _NEG_INF) if _IN_PLACE.get() else scores.masked_fill(banned, _NEG_INF)


def _check_min_tokens_to_keep(min_tokens_to_keep: int) -> None:
    if not isinstance(min_tokens_to_keep, int) or min_tokens_to_keep < 1:
        raise ValueError(f"min_tokens_to_keep must be a positive int, got {min_tokens_to_keep!r}")


class LogitsProcessor:
    """Base class: ``__call__(input_ids, scores) -> scores`` for one decoding step."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(input_ids, scores)")


class LogitsProcessorList(list):
    """Processors applied in order; extra keywords reach the processors whose ``__call__`` takes them."""

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.Tensor, *, in_place: bool = False, **kwargs: Any
    ) -> torch.Tensor:
        """``in_place=True`` (``generate`` with its own temporary scores, and only headway's processors in the
        list): the processors that just forbid tokens write -inf into ``scores`` rather than into a copy."""
        token = _IN_PLACE.set(in_place and self.headway_only())
        try:
            for processor in self:
                if kwargs and len(inspect.signature(processor.__call__).parameters) > 2:
                    scores = processor(input_ids, scores, **kwargs)
                else:
                    scores = processor(input_ids, scores)
        finally:
            _IN_PLACE.reset(token)
        return scores

    def headway_only(self) -> bool:
        """Whether every processor is one of this module's (none of them keeps or shares the scores it is
        given, so ``generate`` may write into its own temporaries after them)."""
        return all(type(p).__module__ == __name__ for p in self)


# -- length and special tokens ----------------------------------------------------------------------------
class MinLengthLogitsProcessor(LogitsProcessor):
    """Forbid end-of-sequence tokens while the whole sequence (prompt included) is shorter than ``min_length``."""

    def __init__(
        self, min_length: int, eos_token_id: int | list[int] | torch.Tensor, device: Any = "cpu"
    ) -> None:
        if not isinstance(min_length, int) or min_length < 0:
            raise ValueError(f"min_length must be a non-negative int, got {min_length!r}")
        self.min_length = min_length
        self.eos_token_id = _token_ids(eos_token_id, device)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[-1] >= self.min_length:
            return scores
        return _forbid(scores, self.eos_token_id)


class MinNewTokensLengthLogitsProcessor(LogitsProcessor):
    """Forbid end-of-sequence tokens until ``min_new_tokens`` tokens follow the prompt."""

    def __init__(
        self,
        prompt_length_to_skip: int,
        min_new_tokens: int,
        eos_token_id: int | list[int] | torch.Tensor,
        device: Any = "cpu",
    ) -> None:
        for name, value in (
            ("prompt_length_to_skip", prompt_length_to_skip),
            ("min_new_tokens", min_new_tokens),
        ):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        self.prompt_length_to_skip = prompt_length_to_skip
        self.min_new_tokens = min_new_tokens
        self.eos_token_id = _token_ids(eos_token_id, device)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[-1] - self.prompt_length_to_skip >= self.min_new_tokens:
            return scores
        return _forbid(scores, self.eos_token_id)


class ForcedBOSTokenLogitsProcessor(LogitsProcessor):
    """Force ``bos_token_id`` as the first generated token (when the sequence holds one token)."""

    def __init__(self, bos_token_id: int) -> None:
        self.bos_token_id = bos_token_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[-1] != 1:
            return scores
        forced = torch.full_like(scores, _NEG_INF)
        forced[:, self.bos_token_id] = 0
        return forced


class ForcedEOSTokenLogitsProcessor(LogitsProcessor):
    """Force an end-of-sequence token as the last token when ``max_length`` is reached."""

    def __init__(
        self, max_length: int, eos_token_id: int | list[int] | torch.Tensor, device: Any = "cpu"
    ) -> None:
        self.max_length = max_length
        self.eos_token_id = _token_ids(eos_token_id, device)
        if (self.eos_token_id < 0).any():
            raise ValueError(f"eos_token_id must hold non-negative ints, got {self.eos_token_id.tolist()}")

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[-1] != self.max_length - 1:
            return scores
        forced = torch.full_like(scores, _NEG_INF)
        forced[:, self.eos_token_id.to(scores.device)] = 0
        return forced


class SuppressTokensLogitsProcessor(LogitsProcessor):
    """Give ``suppress_tokens`` a score of -inf at every step."""

    def __init__(self, suppress_tokens: Any, device: Any = "cpu") -> None:
        self.suppress_tokens = _token_ids(list(suppress_tokens), device)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        return _forbid(scores, self.suppress_tokens)


class SuppressTokensAtBeginLogitsProcessor(LogitsProcessor):
    """Give ``begin_suppress_tokens`` a score of -inf at the step where the sequence is ``begin_index`` long."""

    def __init__(self, begin_suppress_tokens: Any, begin_index: int, device: Any = "cpu") -> None:
        self.begin_suppress_tokens = _token_ids(list(begin_suppress_tokens), device)
        self.begin_index = begin_index

    def set_begin_index(self, begin_index: int) -> None:
        self.begin_index = begin_index

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[-1] != self.begin_index:
            return scores
        return _forbid(scores, self.begin_suppress_tokens)


# -- penalties and bans -------------------------------------------------------------------------------------
class RepetitionPenaltyLogitsProcessor(LogitsProcessor):
    """Penalise tokens already in the sequence (CTRL, arXiv:1909.05858): a positive score is divided by
    ``penalty``, a negative one multiplied by it.

    Args:
        penalty: above 1 discourages repetition, below 1 encourages it.
        prompt_ignore_length: leading positions not to penalise: an int for every row, or a (B,) tensor
            (``generate`` passes each row's left padding, so that pad tokens are not penalised).
    """

    def __init__(self, penalty: float, prompt_ignore_length: int | torch.Tensor | None = None) -> None:
        if not isinstance(penalty, (int, float)) or isinstance(penalty, bool) or not penalty > 0:
            raise ValueError(f"penalty must be a positive float, got {penalty!r}")
        if isinstance(prompt_ignore_length, int) and prompt_ignore_length < 0:
            raise ValueError(f"prompt_ignore_length must be non-negative, got {prompt_ignore_length}")
        if isinstance(prompt_ignore_length, torch.Tensor) and prompt_ignore_length.dim() != 1:
            raise ValueError(
                f"prompt_ignore_length must be 1-D (B,), got shape {tuple(prompt_ignore_length.shape)}"
            )
        self.penalty = float(penalty)
        self.prompt_ignore_length = prompt_ignore_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        vocab_size = scores.shape[-1]
        if input_ids.dim() == 1:
            input_ids = input_ids.unsqueeze(1)
        # Ids the head cannot produce (an embedding table larger than the head) and ignored positions go to
        # a spare column past the vocabulary, dropped at the end.
        ids = input_ids.clamp(max=vocab_size)
        ignore = self.prompt_ignore_length
        if isinstance(ignore, int):
            ids = ids[:, ignore:]
        elif isinstance(ignore, torch.Tensor):
            if ignore.shape[0] != ids.shape[0]:
                raise ValueError(f"prompt_ignore_length has {ignore.shape[0]} rows, input_ids {ids.shape[0]}")
            positions = torch.arange(ids.shape[1], device=ids.device)
            ids = ids.masked_fill(positions[None, :] < ignore.to(ids.device)[:, None], vocab_size)
        seen = torch.zeros(scores.shape[0], vocab_size + 1, dtype=torch.bool, device=scores.device)
        seen.scatter_(1, ids, True)
        penalised = torch.where(scores < 0, scores * self.penalty, scores / self.penalty)
        return torch.where(seen[:, :vocab_size], penalised, scores)


class NoRepeatNGramLogitsProcessor(LogitsProcessor):
    """Forbid any token that would repeat an n-gram of size ``ngram_size`` already in the sequence."""

    def __init__(self, ngram_size: int) -> None:
        if not isinstance(ngram_size, int) or ngram_size <= 0:
            raise ValueError(f"ngram_size must be a positive int, got {ngram_size!r}")
        self.ngram_size = ngram_size

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        n, length = self.ngram_size, input_ids.shape[-1]
        if length < n:  # no n-gram in the sequence yet
            return scores
        vocab_size = scores.shape[-1]
        if n == 1:  # every seen token completes a repeated 1-gram
            banned_ids = input_ids
        else:
            # The next token completes the n-gram (last n-1 tokens, next). Every earlier window whose first
            # n-1 tokens equal those bans its own last token.
            context = input_ids[:, length - (n - 1) :]  # (B, n-1)
            windows = input_ids.unfold(1, n, 1)  # (B, length-n+1, n)
            hit = (windows[:, :, :-1] == context[:, None, :]).all(dim=-1)  # (B, length-n+1)
            banned_ids = torch.where(hit, windows[:, :, -1], vocab_size)  # misses go to the spare column
        banned = torch.zeros(scores.shape[0], vocab_size + 1, dtype=torch.bool, device=scores.device)
        banned.scatter_(1, banned_ids.clamp(max=vocab_size), True)
        return _ban(scores, banned[:, :vocab_size])


class NoBadWordsLogitsProcessor(LogitsProcessor):
    """Forbid token sequences: a one-token entry is always banned, a longer one bans its last token when the
    sequence ends with the rest. A one-token entry equal to an end-of-sequence token is dropped (banning it
    would make generation endless).

    Args:
        bad_words_ids: the banned sequences, a list of lists of token ids.
        eos_token_id: the end-of-sequence id(s).
    """

    def __init__(
        self, bad_words_ids: list[list[int]], eos_token_id: int | list[int] | torch.Tensor | None = None
    ) -> None:
        if not isinstance(bad_words_ids, list) or not bad_words_ids:
            raise ValueError(f"bad_words_ids must be a non-empty list of lists, got {bad_words_ids!r}")
        for ids in bad_words_ids:
            if not isinstance(ids, list) or not ids or any(not isinstance(i, int) or i < 0 for i in ids):
                raise ValueError(
                    f"each entry of bad_words_ids must be a non-empty list of token ids, got {ids!r}"
                )
        eos = set() if eos_token_id is None else set(_token_ids(eos_token_id).tolist())
        self.bad_words_ids = [ids for ids in bad_words_ids if not (len(ids) == 1 and ids[0] in eos)]
        self._max_id = max((max(ids) for ids in self.bad_words_ids), default=-1)
        self._single = torch.tensor([ids[0] for ids in self.bad_words_ids if len(ids) == 1], dtype=torch.long)
        by_length: dict[int, list[list[int]]] = {}
        for ids in self.bad_words_ids:
            if len(ids) > 1:
                by_length.setdefault(len(ids) - 1, []).append(ids)
        # prefix length -> (prefixes (S, L), banned last tokens (S,))
        self._multi = [
            (torch.tensor([ids[:-1] for ids in group]), torch.tensor([ids[-1] for ids in group]))
            for group in by_length.values()
        ]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        vocab_size = scores.shape[-1]
        if self._max_id >= vocab_size:
            raise ValueError(
                f"bad_words_ids holds token id {self._max_id}, past the vocabulary size {vocab_size}"
            )
        banned = torch.zeros(scores.shape[0], vocab_size, dtype=torch.bool, device=scores.device)
        banned[:, self._single.to(scores.device)] = True
        for prefixes, last in self._multi:
            prefix_len = prefixes.shape[1]
            if prefix_len > input_ids.shape[1]:
                continue
            prefixes, last = prefixes.to(input_ids.device), last.to(input_ids.device)
            tail = input_ids[:, input_ids.shape[1] - prefix_len :]  # (B, L)
            hit = (tail[:, None, :] == prefixes[None]).all(dim=-1)  # (B, S)
            hits = torch.zeros(banned.shape, device=banned.device).scatter_add_(
                1, last.expand_as(hit), hit.float()
            )
            banned |= hits > 0
        return _ban(scores, banned)


class InfNanRemoveLogitsProcessor(LogitsProcessor):
    """Replace nan by 0 and +-inf by the dtype's largest / smallest finite value."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        finfo = torch.finfo(scores.dtype)
        return torch.nan_to_num(scores, nan=0.0, posinf=finfo.max, neginf=finfo.min)


class ExponentialDecayLengthPenalty(LogitsProcessor):
    """Raise the end-of-sequence scores exponentially once ``start`` tokens have been generated.

    Args:
        exponential_decay_length_penalty: (start, decay_factor): from ``start`` new tokens on, an eos score
            gains ``|score| * (decay_factor ** steps_past_start - 1)``.
        eos_token_id: the end-of-sequence id(s).
        input_ids_seq_length: the prompt length (``start`` counts from it).
    """

    def __init__(
        self,
        exponential_decay_length_penalty: tuple[int, float],
        eos_token_id: int | list[int] | torch.Tensor,
        input_ids_seq_length: int,
    ) -> None:
        self.regulation_start = exponential_decay_length_penalty[0] + input_ids_seq_length
        self.regulation_factor = exponential_decay_length_penalty[1]
        self.eos_token_id = _token_ids(eos_token_id)
        if (self.eos_token_id < 0).any():
            raise ValueError(f"eos_token_id must hold non-negative ints, got {self.eos_token_id.tolist()}")

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        steps = input_ids.shape[-1] - self.regulation_start
        if steps <= 0:
            return scores
        eos = self.eos_token_id.to(scores.device)
        eos_scores = scores[:, eos]
        # |score| so that a negative eos score rises too; -inf (a banned eos) stays banned.
        boost = (eos_scores.abs() * (self.regulation_factor**steps - 1)).masked_fill(
            ~torch.isfinite(eos_scores), 0.0
        )
        penalties = torch.zeros_like(scores)
        penalties[:, eos] = boost
        return scores + penalties


class LogitNormalization(LogitsProcessor):
    """Log-softmax the scores (after the warpers, so that beam scores stay log-probabilities)."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        return scores.log_softmax(dim=-1)


# -- sampling warpers ---------------------------------------------------------------------------------------
class TemperatureLogitsWarper(LogitsProcessor):
    """Divide the scores by ``temperature``: below 1 sharpens the distribution, above 1 flattens it."""

    def __init__(self, temperature: float) -> None:
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not temperature > 0:
            hint = " (for greedy decoding use do_sample=False)" if temperature == 0 else ""
            raise ValueError(f"temperature must be a positive float, got {temperature!r}{hint}")
        self.temperature = float(temperature)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        return scores / self.temperature


class TopKLogitsWarper(LogitsProcessor):
    """Keep the ``top_k`` highest scores (ties with the k-th included), -inf (``filter_value``) elsewhere."""

    def __init__(self, top_k: int, filter_value: float = _NEG_INF, min_tokens_to_keep: int = 1) -> None:
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k <= 0:
            raise ValueError(f"top_k must be a positive int, got {top_k!r}")
        self.top_k = max(top_k, min_tokens_to_keep)
        self.filter_value = filter_value
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        k = min(self.top_k, scores.shape[-1])
        kth = torch.topk(scores, k, dim=-1).values[..., -1:]  # (B, 1)
        return scores.masked_fill(scores < kth, self.filter_value)


class TopPLogitsWarper(LogitsProcessor):
    """Nucleus filtering (arXiv:1904.09751): keep the most likely tokens whose probabilities add up to
    ``top_p`` (at least ``min_tokens_to_keep``)."""

    def __init__(self, top_p: float, filter_value: float = _NEG_INF, min_tokens_to_keep: int = 1) -> None:
        top_p = float(top_p)
        if not 0 <= top_p <= 1:
            raise ValueError(f"top_p must be a float in (0, 1], got {top_p!r}")
        _check_min_tokens_to_keep(min_tokens_to_keep)
        self.top_p = top_p
        self.filter_value = filter_value
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        # Ascending order: the tokens whose cumulative mass stays within 1 - top_p are the unlikely tail.
        ascending, order = torch.sort(scores, dim=-1)
        tail = ascending.softmax(dim=-1).cumsum(dim=-1) <= 1 - self.top_p
        tail[..., -self.min_tokens_to_keep :] = False
        drop = tail.scatter(1, order, tail)  # back to vocabulary order
        return scores.masked_fill(drop, self.filter_value)


class MinPLogitsWarper(LogitsProcessor):
    """Min-p filtering (arXiv:2407.01082): drop tokens less likely than ``min_p`` times the top token's
    probability (at least ``min_tokens_to_keep`` kept)."""

    def __init__(self, min_p: float, filter_value: float = _NEG_INF, min_tokens_to_keep: int = 1) -> None:
        if not 0 <= min_p <= 1:
            raise ValueError(f"min_p must be a float in [0, 1], got {min_p!r}")
        _check_min_tokens_to_keep(min_tokens_to_keep)
        self.min_p = min_p
        self.filter_value = filter_value
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        probs = scores.softmax(dim=-1)
        drop = probs < self.min_p * probs.amax(dim=-1, keepdim=True)
        keep = torch.topk(probs, min(self.min_tokens_to_keep, probs.shape[-1]), dim=-1).indices
        drop.scatter_(-1, keep, False)
        return scores.masked_fill(drop, self.filter_value)


class TypicalLogitsWarper(LogitsProcessor):
    """Locally typical sampling (arXiv:2202.00666): keep the tokens whose information content is closest to
    the distribution's entropy, up to a probability mass of ``mass``."""

    def __init__(
        self, mass: float = 0.9, filter_value: float = _NEG_INF, min_tokens_to_keep: int = 1
    ) -> None:
        mass = float(mass)
        if not 0 < mass < 1:
            raise ValueError(f"typical_p (mass) must be a float in (0, 1), got {mass!r}")
        _check_min_tokens_to_keep(min_tokens_to_keep)
        self.mass = mass
        self.filter_value = filter_value
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        log_probs = scores.log_softmax(dim=-1)
        entropy = -(log_probs * log_probs.exp()).nansum(-1, keepdim=True)  # (B, 1); nansum: 0 * -inf terms
        distance = (-log_probs - entropy).abs()
        sorted_distance, order = torch.sort(distance, dim=-1)
        cumulative = scores.gather(-1, order).softmax(dim=-1).cumsum(dim=-1)
        # The cut is the first token at which the mass reaches ``mass``; ties with its distance stay.
        cut = (cumulative < self.mass).sum(dim=1, keepdim=True).clamp_(max=scores.shape[-1] - 1)
        drop = sorted_distance > sorted_distance.gather(1, cut)
        drop[..., : self.min_tokens_to_keep] = False
        drop = drop.scatter(1, order, drop)
        return scores.masked_fill(drop, self.filter_value)


class EpsilonLogitsWarper(LogitsProcessor):
    """Epsilon sampling (arXiv:2210.15191): drop tokens whose probability is below ``epsilon`` (the
    ``min_tokens_to_keep`` most likely stay)."""

    def __init__(self, epsilon: float, filter_value: float = _NEG_INF, min_tokens_to_keep: int = 1) -> None:
        epsilon = float(epsilon)
        if not 0 < epsilon < 1:
            raise ValueError(f"epsilon_cutoff must be a float in (0, 1), got {epsilon!r}")
        _check_min_tokens_to_keep(min_tokens_to_keep)
        self.epsilon = epsilon
        self.filter_value = filter_value
        self.min_tokens_to_keep = min_tokens_to_keep

    def _threshold(self, scores: torch.Tensor) -> torch.Tensor | float:
        return self.epsilon

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        drop = scores.softmax(dim=-1) < self._threshold(scores)
        kth = torch.topk(scores, min(self.min_tokens_to_keep, scores.shape[-1]), dim=-1).values[..., -1:]
        return scores.masked_fill(drop & (scores < kth), self.filter_value)


class EtaLogitsWarper(EpsilonLogitsWarper):
    """Eta sampling (arXiv:2210.15191): the cut-off is ``min(epsilon, sqrt(epsilon) * exp(-entropy))``, lower
    for flat distributions."""

    def __init__(
        self, epsilon: float, filter_value: float = _NEG_INF, min_tokens_to_keep: int = 1, device: Any = "cpu"
    ) -> None:
        if not 0 < float(epsilon) < 1:
            raise ValueError(f"eta_cutoff must be a float in (0, 1), got {epsilon!r}")
        super().__init__(epsilon, filter_value, min_tokens_to_keep)

    def _threshold(self, scores: torch.Tensor) -> torch.Tensor:
        log_probs = scores.log_softmax(dim=-1).clamp(
            min=torch.finfo(scores.dtype).min
        )  # -inf * 0 would be nan
        entropy = -(log_probs * log_probs.exp()).sum(dim=-1, keepdim=True)  # (B, 1)
        return torch.clamp(math.sqrt(self.epsilon) * torch.exp(-entropy), max=self.epsilon)


# -- the builder ----------------------------------------------------------------------------------------
def _eos_ids(generation_config: GenerationConfig) -> torch.Tensor | None:
    """The end-of-sequence ids as a 1-D tensor (the prepared tensor when ``generate`` made one)."""
    prepared = getattr(generation_config, "_eos_token_tensor", None)
    if prepared is not None:
        return prepared.reshape(-1)
    eos = generation_config.eos_token_id
    return None if eos is None else _token_ids(eos)


def merge_with_user_list(defaults: list, custom: list | None) -> list:
    """The built processors (or criteria) with the caller's: a caller's object replaces the built one of the
    same class, in its place; the caller's others follow, in their order."""
    if not custom:
        return defaults
    merged = type(defaults)()
    for built in defaults:
        replacement = next((c for c in custom if type(c) is type(built)), None)
        if replacement is not None:
            logger.warning(
                "A %s was passed to generate() and also built from the generation config; the one passed is used.",
                type(built).__name__,
            )
        merged.append(built if replacement is None else replacement)
    merged.extend(c for c in custom if c not in merged)
    return merged


def build_logits_processors(
    generation_config: GenerationConfig,
    input_ids_seq_length: int,
    *,
    device: Any = None,
    logits_processor: LogitsProcessorList | None = None,
    attention_mask: torch.Tensor | None = None,
) -> LogitsProcessorList:
    """The processors ``generation_config`` asks for, in the reference's order.

    Args:
        generation_config: the settings (its special tokens must be final).
        input_ids_seq_length: the prompt length (where ``min_new_tokens`` and ``begin_suppress_tokens`` count from).
        device: where the processors keep their token-id tensors.
        logits_processor: the caller's processors; one of a class built here replaces it, the others come
            after the built ones and before the sampling warpers.
        attention_mask: the prompt's (B, T) mask; with a repetition penalty, each row's left padding is
            then not penalised.
    """
    config = generation_config
    eos = _eos_ids(config)
    processors = LogitsProcessorList()
    if config.repetition_penalty is not None and config.repetition_penalty != 1.0:
        padding = None if attention_mask is None else (attention_mask != 0).int().argmax(dim=1)
        processors.append(
            RepetitionPenaltyLogitsProcessor(config.repetition_penalty, prompt_ignore_length=padding)
        )
    if config.no_repeat_ngram_size is not None and config.no_repeat_ngram_size > 0:
        processors.append(NoRepeatNGramLogitsProcessor(config.no_repeat_ngram_size))
    if config.bad_words_ids is not None:
        processors.append(NoBadWordsLogitsProcessor(config.bad_words_ids, eos))
    if eos is not None and config.min_length is not None and config.min_length > 0:
        processors.append(MinLengthLogitsProcessor(config.min_length, eos, device=device))
    if eos is not None and config.min_new_tokens is not None and config.min_new_tokens > 0:
        processors.append(
            MinNewTokensLengthLogitsProcessor(input_ids_seq_length, config.min_new_tokens, eos, device=device)
        )
    if config.forced_bos_token_id is not None:
        processors.append(ForcedBOSTokenLogitsProcessor(config.forced_bos_token_id))
    if config.forced_eos_token_id is not None:
        processors.append(
            ForcedEOSTokenLogitsProcessor(config.max_length, config.forced_eos_token_id, device=device)
        )
    if config.remove_invalid_values is True:
        processors.append(InfNanRemoveLogitsProcessor())
    if config.exponential_decay_length_penalty is not None and eos is not None:
        processors.append(
            ExponentialDecayLengthPenalty(config.exponential_decay_length_penalty, eos, input_ids_seq_length)
        )
    if config.suppress_tokens is not None:
        processors.append(SuppressTokensLogitsProcessor(config.suppress_tokens, device=device))
    if config.begin_suppress_tokens is not None:
        # With a forced first token and a one-token prompt, the suppression moves one step later.
        begin = input_ids_seq_length
        if input_ids_seq_length <= 1 and config.forced_bos_token_id is not None:
            begin += 1
        processors.append(
            SuppressTokensAtBeginLogitsProcessor(config.begin_suppress_tokens, begin, device=device)
        )
    processors = merge_with_user_list(processors, logits_processor)

    if config.do_sample:
        # Beam sampling keeps one token more than there are end-of-sequence ids, so that a beam can go on.
        keep = (
            1
            if config.num_beams is None or config.num_beams <= 1
            else (2 if eos is None else eos.numel() + 1)
        )
        if config.temperature is not None and config.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(config.temperature))
        if config.top_k is not None and config.top_k != 0:
            processors.append(TopKLogitsWarper(top_k=config.top_k, min_tokens_to_keep=keep))
        if config.top_p is not None and config.top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p=config.top_p, min_tokens_to_keep=keep))
        if config.min_p is not None:
            processors.append(MinPLogitsWarper(min_p=config.min_p, min_tokens_to_keep=keep))
        if config.typical_p is not None and config.typical_p < 1.0:
            processors.append(TypicalLogitsWarper(mass=config.typical_p, min_tokens_to_keep=keep))
        if config.epsilon_cutoff is not None and 0.0 < config.epsilon_cutoff < 1.0:
            processors.append(EpsilonLogitsWarper(epsilon=config.epsilon_cutoff, min_tokens_to_keep=keep))
        if config.eta_cutoff is not None and 0.0 < config.eta_cutoff < 1.0:
            processors.append(
                EtaLogitsWarper(epsilon=config.eta_cutoff, min_tokens_to_keep=keep, device=device)
            )
    if config.renormalize_logits is True:
        processors.append(LogitNormalization())
    _warn_unsupported(config)
    return processors


def _warn_unsupported(config: GenerationConfig) -> None:
    """Settings the reference acts on that headway does not implement: said once per build, not ignored silently."""
    unsupported = {
        "sequence_bias": config.sequence_bias is not None,
        "guidance_scale": config.guidance_scale not in (None, 1),
        "top_h": config.top_h is not None and config.do_sample,
        "watermarking_config": config.watermarking_config is not None,
        "encoder_repetition_penalty": config.encoder_repetition_penalty not in (None, 1.0),
        "encoder_no_repeat_ngram_size": config.encoder_no_repeat_ngram_size not in (None, 0),
    }
    names = [name for name, used in unsupported.items() if used]
    if names:
        logger.warning("headway does not implement these generation settings; they are ignored: %s", names)


__all__ = [
    "EpsilonLogitsWarper",
    "EtaLogitsWarper",
    "ExponentialDecayLengthPenalty",
    "ForcedBOSTokenLogitsProcessor",
    "ForcedEOSTokenLogitsProcessor",
    "InfNanRemoveLogitsProcessor",
    "LogitNormalization",
    "LogitsProcessor",
    "LogitsProcessorList",
    "MinLengthLogitsProcessor",
    "MinNewTokensLengthLogitsProcessor",
    "MinPLogitsWarper",
    "NoBadWordsLogitsProcessor",
    "NoRepeatNGramLogitsProcessor",
    "RepetitionPenaltyLogitsProcessor",
    "SuppressTokensAtBeginLogitsProcessor",
    "SuppressTokensLogitsProcessor",
    "TemperatureLogitsWarper",
    "TopKLogitsWarper",
    "TopPLogitsWarper",
    "TypicalLogitsWarper",
    "build_logits_processors",
    "merge_with_user_list",
]
