"""zero-shot-classification: rank labels chosen at call time with a natural-language-inference model.

Each (text, label) becomes a premise/hypothesis pair ("This example is {label}."); the entailment
logit of the model's head scores the label. Returns ``{"sequence", "labels", "scores"}`` per text with
labels sorted by score, as the reference.
"""

from __future__ import annotations

import logging
import re
import string
from typing import Any

import numpy as np
import torch

from headway.pipelines.base import Feature, Pipeline

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "This example is {}."
MAX_TEMPLATE_WIDTH = 10_000  # widest format spec a hypothesis_template may ask for ("{:>20}")


class ZeroShotClassificationPipeline(Pipeline):
    """NLI-based zero-shot classification with a sequence-classification model.

    Parameters (at construction or per call; ``candidate_labels`` may also be the second positional argument):
        candidate_labels: A list of labels, or one string of comma-separated labels.
        hypothesis_template: The hypothesis with ``{}`` where the label goes (default "This example is {}.").
        multi_label: False (default): scores are a softmax of the entailment logits over the labels, so they
            sum to 1. True: each label is scored alone, entailment against contradiction.
    """

    default_task = "zero-shot-classification"
    model_kind = "ForSequenceClassification"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.entailment_id == -1:
            logger.warning(
                "Failed to determine 'entailment' label id from the label2id mapping in the model config. Setting to "
                "-1. Define a descriptive label2id mapping in the model config to ensure correct outputs."
            )

    @property
    def entailment_id(self) -> int:
        """Id of the first label whose name starts with "entail" (any case), or -1."""
        for label, index in self.model.config.label2id.items():
            if label.lower().startswith("entail"):
                return index
        return -1

    def _sanitize_parameters(
        self,
        candidate_labels: str | list[str] | None = None,
        hypothesis_template: str | None = None,
        multi_label: bool | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        if kwargs:
            raise TypeError(f"{self.task} got unexpected keyword arguments {sorted(kwargs)}")
        pre: dict[str, Any] = {}
        if candidate_labels is not None:
            pre["candidate_labels"] = _parse_labels(candidate_labels)
        if hypothesis_template is not None:
            pre["hypothesis_template"] = _check_template(hypothesis_template)
        post = {"multi_label": bool(multi_label)} if multi_label is not None else {}
        return pre, {}, post

    def __call__(self, sequences: Any, *args: Any, **kwargs: Any) -> Any:
        """Classify one text or many; ``candidate_labels`` is a keyword or the second argument."""
        if len(args) == 1 and "candidate_labels" not in kwargs:
            kwargs["candidate_labels"] = args[0]
        elif args:
            raise ValueError(f"Unable to understand extra arguments {args}")
        if "candidate_labels" not in kwargs and "candidate_labels" not in self._defaults[0]:
            raise ValueError(
                f"{self.task} needs candidate_labels, e.g. pipe(text, candidate_labels=['sport', 'politics'])"
            )
        return super().__call__(sequences, **kwargs)

    def preprocess(
        self,
        inputs: list[str],
        candidate_labels: list[str] | None = None,
        hypothesis_template: str = DEFAULT_TEMPLATE,
    ) -> list[list[Feature]]:
        labels = candidate_labels or []
        premises = [text for text in inputs for _ in labels]
        hypotheses = [hypothesis_template.format(label) for _ in inputs for label in labels]
        owners = [i for i in range(len(inputs)) for _ in labels]
        # Only the premise is truncated, so the hypothesis stays whole (the reference's only_first).
        try:
            flat = self.tokenize(premises, hypotheses, truncation="only_first", owners=owners)
        except ValueError as err:
            if "too short" not in str(err):
                raise
            # The reference retries without truncation, which then fails inside the model: say why here.
            longest = max((hypothesis_template.format(label) for label in labels), key=len)
            raise ValueError(
                f"The hypothesis {longest!r} leaves no room for the text in the {self.max_length} tokens this model "
                "takes; shorten the candidate labels or the hypothesis_template."
            ) from None
        features = []
        for i, text in enumerate(inputs):
            rows = [feats[0] for feats in flat[i * len(labels) : (i + 1) * len(labels)]]
            for label, feature in zip(labels, rows):
                feature.meta.update(candidate_label=label, sequence=text)
            features.append(rows)
        return features

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.model(**model_inputs).logits}  # (B, num_labels)

    def postprocess(
        self, outputs: dict[str, torch.Tensor], features: list[Feature], **params: Any
    ) -> list[Any]:
        logits = outputs["logits"].float().numpy()  # one conversion for the batch
        return [(feature.meta, row) for feature, row in zip(features, logits)]

    def _combine(self, rows: list[Any], multi_label: bool = False) -> dict[str, Any]:
        """Score the candidate labels of one text from their pairs' logits (the reference's numpy math)."""
        labels = [meta["candidate_label"] for meta, _ in rows]
        logits = np.stack([row for _, row in rows])[None]  # (1 text, labels, num_nli_classes)
        if multi_label or len(labels) == 1:
            entailment = self.entailment_id
            contradiction = -1 if entailment == 0 else 0
            pair = logits[..., [contradiction, entailment]]
            scores = (np.exp(pair) / np.exp(pair).sum(-1, keepdims=True))[..., 1]
        else:
            entail = logits[..., self.entailment_id]
            scores = np.exp(entail) / np.exp(entail).sum(-1, keepdims=True)
        order = list(reversed(scores[0].argsort()))
        return {
            "sequence": rows[0][0]["sequence"],
            "labels": [labels[i] for i in order],
            "scores": scores[0, order].tolist(),
        }


def _check_template(template: Any) -> str:
    """``template`` if it is a str that ``template.format(label)`` fills with the label, and only with it."""
    if not isinstance(template, str):
        raise TypeError(
            f"hypothesis_template must be a str with {{}} where the label goes, got {template!r:.80}"
        )
    try:
        for _, _, spec, _ in string.Formatter().parse(template):  # a width of 10**12 would fill the memory
            if spec and max(map(int, re.findall(r"\d+", spec)), default=0) > MAX_TEMPLATE_WIDTH:
                raise ValueError(f"format spec {spec!r} is wider than {MAX_TEMPLATE_WIDTH} characters")
        # Two distinct labels must give two distinct hypotheses: the label has to appear in the text.
        filled = {template.format(label) for label in ("\x00a", "\x00b")}
    except (IndexError, KeyError, ValueError, AttributeError, TypeError) as err:
        raise ValueError(
            f"hypothesis_template {template!r:.80} cannot be formatted with one label ({type(err).__name__}: "
            f"{err}); write {{}} once where the label goes, and double any other brace ({{{{ or }}}})"
        ) from None
    if len(filled) != 2:
        raise ValueError(
            f'The provided hypothesis_template "{template}" was not able to be formatted with the target labels. '
            "Make sure the passed template includes formatting syntax such as {} where the label should go."
        )
    return template


def _parse_labels(labels: Any) -> list[str]:
    """A list of labels, or one comma-separated string, as a non-empty list of non-empty strings."""
    if isinstance(labels, str):
        labels = [label.strip() for label in labels.split(",") if label.strip()]
    if not isinstance(labels, (list, tuple)) or not all(isinstance(label, str) for label in labels):
        raise TypeError(f"candidate_labels must be a list of str or a comma-separated str, got {labels!r}")
    if not labels or not all(label.strip() for label in labels):
        raise ValueError(f"candidate_labels must hold at least one non-empty label, got {labels!r}")
    return list(labels)
