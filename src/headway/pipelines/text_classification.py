"""text-classification (alias sentiment-analysis): a label and a score per text or text pair.

Returns what the reference returns: ``[{"label", "score"}]`` for one text without ``top_k``, one dict
per input for a list, and (with ``top_k``) a list of the ``top_k`` best labels per input, ``top_k=None``
giving every label sorted by score.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from headway.pipelines.base import Feature, Pipeline, check_text, describe

logger = logging.getLogger(__name__)

FUNCTIONS = ("softmax", "sigmoid", "none")
_UNSET: Any = object()  # top_k not given (None is a value: "every label")


class TextClassificationPipeline(Pipeline):
    """Classify texts (or ``{"text", "text_pair"}`` pairs) with a sequence-classification model.

    Parameters (at construction or per call):
        top_k: How many labels per input: 1 gives ``[{"label", "score"}]``, None every label sorted.
        function_to_apply: "softmax", "sigmoid" or "none"; by default chosen from the config's
            ``problem_type`` and ``num_labels`` (regression: none, one label or multi-label: sigmoid,
            otherwise softmax).
        return_all_scores: v4 spelling, deprecated: True is every label in label order, False the best one.
        **tokenizer_kwargs: Passed to the tokenizer (``truncation``, ``max_length``).
    """

    default_task = "text-classification"
    model_kind = "ForSequenceClassification"

    def _sanitize_parameters(
        self,
        top_k: int | None = _UNSET,
        function_to_apply: str | None = None,
        return_all_scores: bool | None = None,
        **tokenizer_kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        post: dict[str, Any] = {}
        if top_k is not _UNSET:
            if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
                raise ValueError(f"top_k must be a positive int or None (every label), got {top_k!r}")
            post["top_k"], post["legacy"] = top_k, False
        elif return_all_scores is not None:
            logger.warning(
                "return_all_scores is deprecated: use top_k=None instead of return_all_scores=True and top_k=1 "
                "instead of return_all_scores=False."
            )
            post["top_k"] = None if return_all_scores else 1
        if function_to_apply is not None:
            name = getattr(function_to_apply, "value", function_to_apply)
            if not isinstance(name, str) or name.lower() not in FUNCTIONS:
                raise ValueError(f"function_to_apply must be one of {list(FUNCTIONS)}, got {function_to_apply!r}")
            post["function_to_apply"] = name.lower()
        unknown = set(tokenizer_kwargs) - {"truncation", "max_length", "padding", "add_special_tokens"}
        if unknown:
            raise TypeError(f"{self.task} got unexpected keyword arguments {sorted(unknown)}")
        tokenizer_kwargs.pop("padding", None)  # rows are padded per batch
        return tokenizer_kwargs, {}, post

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Classify one input (str or pair dict) or many; see the class docstring for the nesting."""
        result = super().__call__(inputs, *args, **kwargs)
        if isinstance(inputs, str) and "top_k" not in kwargs:
            return [result]  # the reference wraps a single text's result in a list
        return result

    def _check_input(self, item: Any, index: int | None = None) -> Any:
        what = self._what(index)
        if isinstance(item, dict):
            if set(item) - {"text", "text_pair"} or "text" not in item:
                raise ValueError(
                    f"{what} is a dict with keys {sorted(item)}; a text pair is {{'text': ..., 'text_pair': ...}}"
                )
            text = check_text(item["text"], f"{what}['text']")
            if item.get("text_pair") is None:
                return text
            return {"text": text, "text_pair": check_text(item["text_pair"], f"{what}['text_pair']")}
        if isinstance(item, (list, tuple)) and len(item) == 1 and isinstance(item[0], (list, tuple)):
            item = item[0]  # the old [[text, text_pair]] spelling
        if isinstance(item, (list, tuple)):
            if len(item) == 2 and all(isinstance(t, str) for t in item):
                return {"text": check_text(item[0], what), "text_pair": check_text(item[1], what)}
            raise ValueError(
                f"{what} is {describe(item)}; to classify a text pair pass {{'text': ..., 'text_pair': ...}}"
            )
        return check_text(item, what)

    def preprocess(
        self, inputs: list[Any], truncation: bool | str = True, max_length: int | None = None, **tokenizer_kwargs: Any
    ) -> list[list[Feature]]:
        singles = [i for i, item in enumerate(inputs) if isinstance(item, str)]
        pairs = [i for i, item in enumerate(inputs) if isinstance(item, dict)]
        features: list[list[Feature]] = [[] for _ in inputs]
        for group, texts, seconds in (
            (singles, [inputs[i] for i in singles], None),
            (pairs, [inputs[i]["text"] for i in pairs], [inputs[i]["text_pair"] for i in pairs]),
        ):
            if group:  # one tokenizer call for the single texts, one for the pairs
                rows = self.tokenize(
                    texts, seconds, truncation=truncation, max_length=max_length, owners=group, **tokenizer_kwargs
                )
                for i, row in zip(group, rows):
                    features[i] = row
        return features

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.model(**model_inputs).logits}  # (B, num_labels)

    def postprocess(
        self,
        outputs: dict[str, torch.Tensor],
        features: list[Feature],
        top_k: int | None = 1,
        function_to_apply: str | None = None,
        legacy: bool = True,
    ) -> list[Any]:
        logits = outputs["logits"].float()  # (B, num_labels)
        function = function_to_apply or self._default_function()
        if function == "softmax":
            scores = logits.softmax(-1)
        elif function == "sigmoid":
            scores = logits.sigmoid()
        else:
            scores = logits
        id2label = self.model.config.id2label
        results = []
        for row in scores.tolist():  # one conversion for the whole batch
            if top_k == 1 and legacy:
                best = max(range(len(row)), key=row.__getitem__)
                results.append({"label": id2label[best], "score": row[best]})
                continue
            labelled = [{"label": id2label[i], "score": score} for i, score in enumerate(row)]
            if not legacy:
                labelled.sort(key=lambda x: x["score"], reverse=True)
                labelled = labelled if top_k is None else labelled[:top_k]
            results.append(labelled)
        return results

    def _default_function(self) -> str:
        """The reference's choice when function_to_apply is not given."""
        config = self.model.config
        if config.problem_type == "regression":
            return "none"
        if config.problem_type == "multi_label_classification" or config.num_labels == 1:
            return "sigmoid"
        if config.problem_type == "single_label_classification" or config.num_labels > 1:
            return "softmax"
        return getattr(config, "function_to_apply", None) or "none"
