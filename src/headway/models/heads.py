"""Task heads written once: sequence classification, token classification, question answering, multiple choice.

A family declares a head in a line or two, by subclassing its own PreTrainedModel and one of these::

    class BertForSequenceClassification(BertPreTrainedModel, SequenceClassification):
        base_model_class = BertModel  # built as self.bert (base_model_prefix: the Hub weight prefix)

What may vary is a class attribute or a small method, never the forward:

- ``base_model_class``: the family's bare model, built as ``self.<base_model_prefix>`` (with its pooler
  only when the head pools through it);
- ``pooling`` (sentence heads): where the sentence vector comes from: ``"pooler"`` (the bare model's
  ``pooler_output``), ``"first"`` (the first token), ``"last"`` (the last non-padding token, for
  decoders), ``"mean"`` (the mean over non-padding tokens) or ``"eos"`` (the last end-of-sequence token,
  for encoder-decoders, whose bare model gives the decoder's hidden states);
- ``init_head(config)``: the head's modules under their Hub names (default: ``dropout`` and
  ``classifier``, or ``qa_outputs`` for question answering);
- ``score(x)``: those modules applied to the sentence vector (B, hidden) or the tokens (B, T, hidden);
- ``loss(logits, labels)`` (sequence classification): where the reference's loss differs from the shared
  one;
- ``input_order``: the positional order of ``forward``'s inputs where the reference's differs from the
  bare model's inputs followed by the labels.

Each concrete head gets a ``forward`` whose signature (seen by ``inspect.signature``, the Trainer's
column pruning and editors) is that positional order; it binds its arguments by name and runs the one
shared implementation (``_run``) of its task.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from headway.configuration import PretrainedConfig
from headway.losses import sequence_classification_loss, span_loss, token_classification_loss
from headway.modeling import PreTrainedModel
from headway.models.seq2seq import seq2seq_output
from headway.nn.layers import Dropout
from headway.nn.linear import Linear
from headway.outputs import (
    BaseModelOutputWithPast,
    ModelOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    Seq2SeqModelOutput,
    Seq2SeqQuestionAnsweringModelOutput,
    Seq2SeqSequenceClassifierOutput,
    SequenceClassifierOutput,
    SequenceClassifierOutputWithPast,
    TokenClassifierOutput,
)

Tensor = torch.Tensor
POOLINGS = ("pooler", "first", "last", "mean", "eos")


def classifier_dropout(config: PretrainedConfig) -> float:
    """The head's dropout: ``classifier_dropout`` when a config sets it, else ``hidden_dropout_prob``."""
    value = getattr(config, "classifier_dropout", None)
    return value if value is not None else config.hidden_dropout_prob


class ClassificationHead(nn.Module):
    """Sentence classification from one vector per sequence (B, hidden): dropout, dense, tanh, dropout,
    out_proj. RoBERTa's (on ``<s>``), BART's and T5's (on the last end-of-sequence token)."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dense = Linear(hidden_size, hidden_size)
        self.dropout = Dropout(dropout)
        self.out_proj = Linear(hidden_size, num_labels)

    def forward(self, features: Tensor) -> Tensor:
        return self.out_proj(self.dropout(torch.tanh(self.dense(self.dropout(features)))))


def _positional_inputs(forward: Any) -> tuple[str, ...]:
    """The names a ``forward`` takes by position (after ``self``, before ``*`` or ``**``)."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = list(inspect.signature(forward).parameters.values())[1:]
    return tuple(p.name for p in params if p.kind in kinds)


def _bound_forward(cls: type[TaskHead]) -> Any:
    """A ``forward`` for ``cls`` taking its inputs in ``cls``'s positional order, then running ``_run``."""
    order = cls.input_order or (*_positional_inputs(cls.base_model_class.forward), *cls.label_names)

    def forward(self: TaskHead, *args: Tensor | None, **kwargs: Any) -> ModelOutput:
        if len(args) > len(order):
            raise TypeError(
                f"{type(self).__name__}.forward() takes at most {len(order)} positional inputs "
                f"({', '.join(order)}), got {len(args)}"
            )
        for name, value in zip(order, args):
            if name in kwargs:
                raise TypeError(f"{type(self).__name__}.forward() got multiple values for argument {name!r}")
            kwargs[name] = value
        return self._run(**kwargs)

    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    inputs = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                annotation="Tensor | None") for name in order]
    rest = inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)
    output = inspect.signature(cls._run).return_annotation
    forward.__signature__ = inspect.Signature([self_param, *inputs, rest], return_annotation=output)
    forward.__doc__ = cls._run.__doc__
    forward.__qualname__ = f"{cls.__qualname__}.forward"
    forward.__module__ = cls.__module__
    forward.task_forward = cls._run  # what it runs: the one shared implementation (tests check it)
    return forward


class TaskHead(PreTrainedModel):
    """Base of the shared heads: builds the bare model and the head's modules; one forward per task."""

    base_model_class: ClassVar[type[PreTrainedModel]]
    input_order: ClassVar[tuple[str, ...] | None] = None
    label_names: ClassVar[tuple[str, ...]] = ("labels",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "base_model_class" in cls.__dict__ or "input_order" in cls.__dict__:  # a family's concrete head
            cls.forward = _bound_forward(cls)

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__(config)
        base_kwargs = {}
        if "add_pooling_layer" in inspect.signature(self.base_model_class.__init__).parameters:
            base_kwargs["add_pooling_layer"] = self._needs_pooler()
        setattr(self, self.base_model_prefix, self.base_model_class(config, **base_kwargs))
        self.init_head(config)
        self.post_init()

    def _needs_pooler(self) -> bool:
        """Whether the bare model is built with its pooler: only sentence heads pooling through it."""
        return False

    def init_head(self, config: PretrainedConfig) -> None:
        """The head's modules under their Hub names (default: ``dropout`` and ``classifier``)."""
        self.dropout = Dropout(classifier_dropout(config))
        self.classifier = Linear(config.hidden_size, self.num_outputs(config))

    def num_outputs(self, config: PretrainedConfig) -> int:
        return config.num_labels

    def score(self, features: Tensor) -> Tensor:
        """The head's modules over the pooled vector (B, hidden) or the tokens (B, T, hidden)."""
        return self.classifier(self.dropout(features))

    def _run(self, **inputs: Any) -> ModelOutput:  # each task writes its own
        raise NotImplementedError


class _SentenceHead(TaskHead):
    """Heads that score one vector per sequence, taken by ``pooling``."""

    pooling: ClassVar[str] = "pooler"

    def _needs_pooler(self) -> bool:
        return self.pooling == "pooler"

    def pool(self, out: ModelOutput, attention_mask: Tensor | None, input_ids: Tensor | None) -> Tensor:
        """The sentence vector (B, hidden) the head scores."""
        pooling = self.pooling
        if pooling == "pooler":
            return out.pooler_output
        hidden = out.last_hidden_state  # (B, T, hidden)
        if pooling == "first":
            return hidden[:, 0]
        if pooling == "mean":
            if attention_mask is None:
                return hidden.mean(dim=1)
            keep = attention_mask.to(hidden.dtype)[..., None]  # (B, T, 1)
            return (hidden * keep).sum(dim=1) / keep.sum(dim=1)
        if pooling == "last":
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), self._last_token(input_ids, hidden)]
        if pooling == "eos":
            last = self._last_eos(input_ids).to(hidden.device)  # (B,)
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        raise ValueError(f"Unknown pooling {pooling!r} in {type(self).__name__}; expected one of {POOLINGS}")

    def _last_token(self, input_ids: Tensor | None, hidden: Tensor) -> Tensor | int:
        """Index of each row's last non-padding token (decoders read the sentence there)."""
        pad = self.config.pad_token_id
        if pad is None:
            if hidden.shape[0] != 1:
                raise ValueError(
                    f"{type(self).__name__} cannot find the last token of each row of a batch of "
                    f"{hidden.shape[0]} without a padding token: set config.pad_token_id"
                )
            return -1
        if input_ids is None:  # embeddings cannot tell padding: the last position
            return -1
        positions = torch.arange(input_ids.shape[-1], device=input_ids.device)
        return (positions * input_ids.ne(pad)).argmax(-1)  # (B,)

    def _last_eos(self, input_ids: Tensor | None) -> Tensor:
        """Index (B,) of each row's last ``config.eos_token_id`` (how facebook/bart-large-mnli classifies);
        every row must hold the same number of them, at least one."""
        if input_ids is None:
            raise ValueError(
                f"{type(self).__name__} finds each row's end-of-sequence token in input_ids; inputs_embeds "
                "alone cannot be classified"
            )
        eos = self.config.eos_token_id
        eos = eos[0] if isinstance(eos, list) and eos else eos
        if eos is None:
            raise ValueError(f"{type(self).__name__} pools at config.eos_token_id, which is None: set it")
        is_eos = input_ids.eq(eos)  # (B, T)
        counts = is_eos.sum(dim=1)
        if bool((counts != counts[0]).any()):
            raise ValueError(
                f"All examples must have the same number of <eos> tokens (eos_token_id {eos}); the rows hold "
                f"{counts.tolist()}"
            )
        if int(counts[0]) == 0:
            raise ValueError(f"Each example must contain at least one <eos> token (eos_token_id {eos})")
        positions = torch.arange(is_eos.shape[1], device=is_eos.device)
        return (positions * is_eos).argmax(dim=1)  # the last eos of each row


class _DroppedLinear(Linear):
    """``Linear(dropout(x))`` as one module: the dropout holds no weights, so the state dict is the Linear's."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool, dropout: float) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(self.dropout(x))


class ScoreHead:
    """Mixin, listed first, for decoder heads whose projection the reference names ``score`` (Llama,
    Mistral, Qwen2/3, GPT-2), which is also the name of :class:`TaskHead`'s hook.

    Here ``score`` is the module itself (a property over it), so the loader finds ``score.weight`` and
    calling ``self.score(x)`` applies it. Sentence heads: ``Linear(hidden, num_labels, bias=False)``;
    token heads: dropout (``classifier_dropout``, else ``hidden_dropout``, else 0.1, as the reference's
    generic head), then a Linear with bias.
    """

    score = property(lambda self: self._modules["score"])

    def init_head(self, config: PretrainedConfig) -> None:
        if isinstance(self, TokenClassification):
            p = getattr(config, "classifier_dropout", None)
            p = getattr(config, "hidden_dropout", None) if p is None else p
            self.score = _DroppedLinear(config.hidden_size, config.num_labels, bias=True,
                                        dropout=0.1 if p is None else p)
        else:
            self.score = Linear(config.hidden_size, self.num_outputs(config), bias=False)


class SequenceClassification(_SentenceHead):
    """One label (or score) per sequence: single-label, multi-label or regression by ``problem_type``."""

    def _run(self, *, labels: Tensor | None = None, **inputs: Any) -> SequenceClassifierOutput:
        """Logits (B, num_labels) and, with ``labels``, the loss ``config.problem_type`` names."""
        out = self.base_model(**inputs)
        logits = self.score(self.pool(out, inputs.get("attention_mask"), inputs.get("input_ids")))
        loss = self.loss(logits, labels) if labels is not None else None
        if isinstance(out, BaseModelOutputWithPast):  # a decoder: its cache comes back too, as in the reference
            return SequenceClassifierOutputWithPast(loss, logits, out.past_key_values, out.hidden_states, out.attentions)
        if isinstance(out, Seq2SeqModelOutput):  # an encoder-decoder: decoder, cross and encoder fields too
            return seq2seq_output(Seq2SeqSequenceClassifierOutput, out, loss=loss, logits=logits)
        return SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions)

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Regression, single-label or multi-label loss by ``config.problem_type`` (inferred when unset);
        a family whose reference computes it otherwise (DeBERTa) overrides this."""
        return sequence_classification_loss(logits, labels, self.config)


class MultipleChoice(_SentenceHead):
    """One score per choice: inputs (B, choices, T) are scored as B * choices sequences."""

    def num_outputs(self, config: PretrainedConfig) -> int:
        return 1

    def _run(self, *, labels: Tensor | None = None, **inputs: Any) -> MultipleChoiceModelOutput:
        """Logits (B, choices) and, with ``labels`` (the right choice per row), the cross-entropy loss."""
        _check_choice_shapes(type(self).__name__, inputs)
        first = inputs.get("input_ids")
        num_choices = (first if first is not None else inputs["inputs_embeds"]).shape[1]
        flat = {k: v.flatten(0, 1) if isinstance(v, Tensor) else v for k, v in inputs.items()}  # (B * choices, T...)
        out = self.base_model(**flat)
        scores = self.score(self.pool(out, flat.get("attention_mask"), flat.get("input_ids")))  # (B * choices, 1)
        logits = scores.view(-1, num_choices)  # (B, choices)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return MultipleChoiceModelOutput(loss, logits, out.hidden_states, out.attentions)


def _check_choice_shapes(head: str, inputs: dict[str, Any]) -> None:
    """Multiple-choice ids are (B, choices, T) and embeddings (B, choices, T, hidden). A (B, T) batch would
    otherwise be flattened into one long sequence and fail in the bare model, with a message about a shape
    the caller never passed. (The other inputs are flattened the same way and checked by the bare model.)"""
    main = "input_ids" if inputs.get("input_ids") is not None else "inputs_embeds"
    value = inputs.get(main)
    layout = "(batch, num_choices, seq_len" + (")" if main == "input_ids" else ", hidden_size)")
    if not isinstance(value, Tensor) or value.dim() != layout.count(",") + 1:
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(
            f"{head} takes {main} of shape {layout}, one row of choices per example; got {got}. For one "
            f"example whose choices are the rows of a 2-D batch, pass {main}[None]"
        )


class TokenClassification(TaskHead):
    """One label per token (named entities, parts of speech); label -100 is ignored."""

    def _run(self, *, labels: Tensor | None = None, **inputs: Any) -> TokenClassifierOutput:
        """Logits (B, T, num_labels) and, with ``labels``, the token cross-entropy."""
        out = self.base_model(**inputs)
        logits = self.score(out.last_hidden_state)  # (B, T, num_labels)
        loss = token_classification_loss(logits, labels) if labels is not None else None
        return TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class QuestionAnswering(TaskHead):
    """Extractive question answering: a start and an end score for every token."""

    label_names: ClassVar[tuple[str, ...]] = ("start_positions", "end_positions")

    def init_head(self, config: PretrainedConfig) -> None:
        self.qa_outputs = Linear(config.hidden_size, config.num_labels)

    def score(self, features: Tensor) -> Tensor:
        return self.qa_outputs(features)

    def _run(self, *, start_positions: Tensor | None = None, end_positions: Tensor | None = None,
             **inputs: Any) -> QuestionAnsweringModelOutput:
        """Start and end logits (B, T) and, with both positions given, the mean of their cross-entropies."""
        out = self.base_model(**inputs)
        logits = self.score(out.last_hidden_state)  # (B, T, 2)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))  # (B, T) each
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start_logits, end_logits, start_positions, end_positions)
        if isinstance(out, Seq2SeqModelOutput):
            return seq2seq_output(
                Seq2SeqQuestionAnsweringModelOutput, out, loss=loss, start_logits=start_logits, end_logits=end_logits
            )
        return QuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)


def keep_last(hidden: Tensor, logits_to_keep: int | Tensor) -> Tensor:
    """The positions to project to the vocabulary: the last ``k`` (0: all), or those a tensor indexes."""
    if isinstance(logits_to_keep, int):
        return hidden[:, -logits_to_keep:] if logits_to_keep > 0 else hidden  # (B, k, hidden)
    return hidden[:, logits_to_keep]


__all__ = [
    "MultipleChoice",
    "QuestionAnswering",
    "ScoreHead",
    "SequenceClassification",
    "TaskHead",
    "TokenClassification",
    "classifier_dropout",
    "keep_last",
]

