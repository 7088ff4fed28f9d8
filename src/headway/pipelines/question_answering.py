"""question-answering: extract the answer to a question from a context, as transformers 4.57 did.

The reference library dropped this task in version 5; this follows 4.57's pipeline, the last that had it
(its outputs are recorded in tests/fixtures/qa_golden.json). A context longer than ``max_seq_len`` is read
in windows overlapping by ``doc_stride`` tokens; each window proposes spans, and the best spans across
windows win. Answers are ``{"score", "start", "end", "answer"}`` with character offsets into the context.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from headway.pipelines.base import Feature, Pipeline, check_text

logger = logging.getLogger(__name__)


def decode_spans(
    start: np.ndarray, end: np.ndarray, topk: int, max_answer_len: int, undesired_tokens: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``topk`` best (start, end) token spans of at most ``max_answer_len`` tokens, with their scores.

    Args:
        start: Start probabilities, (1, T).
        end: End probabilities, (1, T).
        topk: How many spans to propose.
        max_answer_len: Longest span, in tokens.
        undesired_tokens: 1 where a token may be part of an answer, (1, T).
    """
    outer = np.matmul(np.expand_dims(start, -1), np.expand_dims(end, 1))  # (1, T, T): P(start=i) * P(end=j)
    candidates = np.tril(np.triu(outer), max_answer_len - 1)  # keep end >= start, length <= max_answer_len
    scores_flat = candidates.flatten()
    if topk == 1:
        idx_sort = [np.argmax(scores_flat)]
    elif len(scores_flat) < topk:
        idx_sort = np.argsort(-scores_flat)
    else:
        idx = np.argpartition(-scores_flat, topk)[0:topk]
        idx_sort = idx[np.argsort(-scores_flat[idx])]
    starts, ends = np.unravel_index(idx_sort, candidates.shape)[1:]
    # As 4.57: ``nonzero()`` of the 2-D mask is a (rows, columns) pair, so index 0 always passes this test.
    desired = np.isin(starts, undesired_tokens.nonzero()) & np.isin(ends, undesired_tokens.nonzero())
    starts, ends = starts[desired], ends[desired]
    return starts, ends, candidates[0, starts, ends]


def select_starts_ends(
    start: np.ndarray,
    end: np.ndarray,
    p_mask: np.ndarray,
    top_k: int,
    handle_impossible_answer: bool,
    max_answer_len: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Normalise one window's logits to probabilities and propose spans.

    Args:
        start: Start logits, (1, T).
        end: End logits, (1, T).
        p_mask: 1 for tokens that cannot be in an answer (the question, special tokens), (1, T).

    Returns:
        Start and end token indices, span scores, and the window's no-answer score (the CLS span).
    """
    undesired_tokens = np.abs(p_mask - 1)  # 1 where an answer may be
    masked = undesired_tokens == 0
    start = np.where(masked, -10000.0, start)
    end = np.where(masked, -10000.0, end)
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    null_score = (start[0, 0] * end[0, 0]).item() if handle_impossible_answer else 1000000.0
    start[0, 0] = end[0, 0] = 0.0
    starts, ends, scores = decode_spans(start, end, top_k, max_answer_len, undesired_tokens)
    return starts, ends, scores, null_score


class QuestionAnsweringPipeline(Pipeline):
    """Extractive question answering with a question-answering model (transformers 4.57 behaviour).

    Call it as ``qa(question=..., context=...)`` (strings, or lists of equal length, or many questions on
    one context), ``qa({"question": ..., "context": ...})``, ``qa(question, context)``, a list of such dicts
    or a generator of them.

    Parameters (at construction or per call):
        top_k: Answers per question (default 1); more than one gives a list.
        doc_stride: Tokens shared by consecutive windows of a long context (default min(max_seq_len // 2, 128)).
        max_answer_len: Longest answer in tokens (default 15).
        max_seq_len: Tokens per window, question included (default min(model maximum, 384)).
        max_question_len: Questions longer than this many tokens are truncated, with a warning (default 64).
        handle_impossible_answer: Also propose the empty answer ``{"answer": "", "start": 0, "end": 0}``.
        align_to_words: Stretch answers to whole words (default True).
    """

    default_task = "question-answering"
    model_kind = "ForQuestionAnswering"

    def _sanitize_parameters(
        self,
        padding: Any = None,
        topk: int | None = None,
        top_k: int | None = None,
        doc_stride: int | None = None,
        max_answer_len: int | None = None,
        max_seq_len: int | None = None,
        max_question_len: int | None = None,
        handle_impossible_answer: bool | None = None,
        align_to_words: bool | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        kwargs.pop("question", None), kwargs.pop("context", None)  # read by __call__
        if kwargs:
            raise TypeError(f"{self.task} got unexpected keyword arguments {sorted(kwargs)}")
        pre: dict[str, Any] = {}
        for name, value in (("doc_stride", doc_stride), ("max_seq_len", max_seq_len), ("max_question_len", max_question_len)):
            if value is not None:
                pre[name] = _positive(name, value, zero=name == "doc_stride")
        post: dict[str, Any] = {}
        if topk is not None and top_k is None:
            logger.warning("topk parameter is deprecated, use top_k instead")
            top_k = topk
        if top_k is not None:
            post["top_k"] = _positive("top_k", top_k)
        if max_answer_len is not None:
            post["max_answer_len"] = _positive("max_answer_len", max_answer_len)
        if handle_impossible_answer is not None:
            post["handle_impossible_answer"] = bool(handle_impossible_answer)
        if align_to_words is not None:
            post["align_to_words"] = bool(align_to_words)
        return pre, {}, post

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Answer one question (a dict result, or a list with ``top_k > 1``) or many (a list of those)."""
        question, context = kwargs.pop("question", None), kwargs.pop("context", None)
        if len(args) == 2 and all(isinstance(a, str) for a in args):
            question, context = args
            args = ()
        if args:
            if len(args) > 1:
                raise TypeError(f"{self.task} takes one positional input (or a question and a context), got {args!r}")
            if question is not None or context is not None:
                raise TypeError(f"{self.task}: pass the inputs either positionally or as question=/context=")
            inputs = args[0]
        elif question is not None or context is not None:
            inputs = _pair_up(question, context)
        else:
            raise ValueError(f"{self.task} needs a question and a context: qa(question='...', context='...')")
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            inputs = inputs[0]  # as 4.57: one example gives a bare result
        return super().__call__(inputs, **kwargs)

    def _check_input(self, item: Any, index: int | None = None) -> dict[str, str]:
        what = self._what(index)
        if not isinstance(item, dict):
            raise TypeError(f"{what} must be a dict {{'question': ..., 'context': ...}}, got {type(item).__name__}")
        missing = {"question", "context"} - set(item)
        if missing:
            raise ValueError(f"{what} is a dict without {sorted(missing)}; expected keys 'question' and 'context'")
        return {
            "question": check_text(item["question"], f"{what} question"),
            "context": check_text(item["context"], f"{what} context"),
        }

    def preprocess(
        self,
        inputs: list[dict[str, str]],
        doc_stride: int | None = None,
        max_seq_len: int | None = None,
        max_question_len: int = 64,
    ) -> list[list[Feature]]:
        max_seq_len = max_seq_len or min(self.max_length, 384)
        if max_seq_len > self.max_length:
            raise ValueError(f"max_seq_len ({max_seq_len}) is more than the {self.max_length} tokens this model takes")
        doc_stride = min(max_seq_len // 2, 128) if doc_stride is None else doc_stride
        if doc_stride > max_seq_len:
            raise ValueError(f"`doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})")
        contexts = [item["context"] for item in inputs]
        questions, lengths = self._clip_questions([item["question"] for item in inputs], contexts, max_question_len)
        specials = self.tokenizer.num_special_tokens_to_add(pair=True)
        split = False  # does any context need several windows?
        for index, (question_len, context_len) in enumerate(lengths):
            room = max_seq_len - question_len - specials  # context tokens one window holds
            split |= context_len > room
            if context_len > room and doc_stride >= room:  # windows needed, but they could not advance
                raise ValueError(
                    f"{self._window_name(index)}: the question takes {question_len} tokens, which leaves "
                    f"{max(room, 0)} of max_seq_len={max_seq_len} for the context, but doc_stride={doc_stride} must "
                    "be smaller than that. Raise max_seq_len, or lower doc_stride or max_question_len."
                )
        question_first = self.tokenizer.padding_side == "right"
        rows = self.tokenize(
            questions if question_first else contexts,
            contexts if question_first else questions,
            truncation="only_second" if question_first else "only_first",
            max_length=max_seq_len,
            stride=doc_stride if split else 0,  # the tokenizer checks stride even when nothing is split
            offsets=True,
            return_token_type_ids=True,
        )
        cls_id = self.tokenizer.cls_token_id
        for item, feats in zip(inputs, rows):
            for feature in feats:
                # p_mask: 1 for tokens that cannot be in an answer; the CLS token stays open (the "no answer").
                p_mask = [int(seq != 1) if question_first else 0 for seq in feature.encoding.sequence_ids]
                for i, token in enumerate(feature.input_ids):
                    if token == cls_id:
                        p_mask[i] = 0
                feature.meta.update(context=item["context"], p_mask=np.array([p_mask]))  # (1, T)
        return rows

    def _clip_questions(
        self, questions: list[str], contexts: list[str], max_question_len: int
    ) -> tuple[list[str], list[tuple[int, int]]]:
        """Questions cut at ``max_question_len`` tokens (4.57's fast path ignored it), and the token counts
        of each (question, context), from one tokenizer call."""
        encoded = self.tokenizer(
            questions + contexts, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )["offset_mapping"]
        clipped, lengths = [], []
        for question, offsets, context_offsets in zip(questions, encoded, encoded[len(questions) :]):
            if len(offsets) > max_question_len:
                logger.warning(
                    "A question is %d tokens long, more than max_question_len=%d: it was truncated.",
                    len(offsets), max_question_len,
                )
                question, offsets = question[: offsets[max_question_len - 1][1]], offsets[:max_question_len]
            clipped.append(question)
            lengths.append((len(offsets), len(context_offsets)))
        return clipped, lengths

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = self.model(**model_inputs)
        return {"start": out.start_logits, "end": out.end_logits}  # (B, T) each

    def postprocess(
        self,
        outputs: dict[str, torch.Tensor],
        features: list[Feature],
        top_k: int = 1,
        handle_impossible_answer: bool = False,
        max_answer_len: int = 15,
        align_to_words: bool = True,
    ) -> list[Any]:
        starts_all, ends_all = outputs["start"].float().numpy(), outputs["end"].float().numpy()  # (B, T)
        pre_topk = top_k * 2 + 10 if align_to_words else top_k  # aligning to words may merge candidates
        results = []
        for row, feature in enumerate(features):
            n = len(feature)
            starts, ends, scores, null_score = select_starts_ends(
                starts_all[row : row + 1, :n], ends_all[row : row + 1, :n], feature.meta["p_mask"],
                pre_topk, handle_impossible_answer, max_answer_len,
            )
            sequence_index = 1 if self.tokenizer.padding_side == "right" else 0
            spans = [
                (float(score), *self._char_span(feature.encoding, int(s), int(e), sequence_index, align_to_words))
                for s, e, score in zip(starts, ends, scores)
            ]
            results.append((spans, null_score, feature.meta["context"]))
        return results

    @staticmethod
    def _char_span(encoding: Any, s: int, e: int, sequence_index: int, align_to_words: bool) -> tuple[int, int]:
        """Character span of tokens s..e in the context, stretched to whole words when asked."""
        if align_to_words:
            # A token without a word (the CLS "no answer" token) falls back to token offsets, as 4.57.
            words = encoding.token_to_word(s), encoding.token_to_word(e)
            if None not in words:
                first = encoding.word_to_chars(words[0], sequence_index=sequence_index)
                last = encoding.word_to_chars(words[1], sequence_index=sequence_index)
                if first is not None and last is not None:
                    return first[0], last[1]
        return encoding.offsets[s][0], encoding.offsets[e][1]

    def _combine(
        self, rows: list[Any], top_k: int = 1, handle_impossible_answer: bool = False, **params: Any
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Best answers across the windows of one context; the same text found twice adds its scores."""
        answers: list[dict[str, Any]] = []
        min_null_score = 1000000.0
        for spans, null_score, context in rows:
            min_null_score = min(min_null_score, null_score)
            for score, start, end in spans:
                text = context[start:end]
                same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
                if same is not None:
                    same["score"] += score
                else:
                    answers.append({"score": score, "start": start, "end": end, "answer": text})
        if handle_impossible_answer:
            answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda a: a["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers


def _positive(name: str, value: Any, zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
        raise ValueError(f"{name} must be a {'non-negative' if zero else 'positive'} int, got {value!r}")
    return value


def _pair_up(question: Any, context: Any) -> Any:
    """question=/context= keywords as example dicts (a question list may share one context)."""
    if question is None or context is None:
        missing = "question" if question is None else "context"
        raise TypeError(f"question-answering needs both question= and context=; {missing} is None")
    if isinstance(question, str) and isinstance(context, str):
        return {"question": question, "context": context}
    if isinstance(question, list) and isinstance(context, str):
        return [{"question": q, "context": context} for q in question]
    if isinstance(question, list) and isinstance(context, list):
        if len(question) != len(context):
            raise ValueError(f"Got {len(question)} questions but {len(context)} contexts; they must pair up")
        return [{"question": q, "context": c} for q, c in zip(question, context)]
    raise TypeError(
        f"question and context must be str or lists of str, got {type(question).__name__} and {type(context).__name__}"
    )
