"""fill-mask: the most likely tokens for each mask token in a text.

Per text: a list of ``{"score", "token", "token_str", "sequence"}`` (``top_k`` of them, default 5), or,
when the text has several masks, one such list per mask (scores of each mask taken alone, as the
reference does).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from headway.pipelines.base import Feature, Pipeline, check_text

logger = logging.getLogger(__name__)


class FillMaskPipeline(Pipeline):
    """Masked-token prediction with a masked-LM model.

    Parameters (at construction or per call):
        top_k: Predictions per mask (default 5; capped by the number of targets).
        targets: A token or list of tokens to score instead of the whole vocabulary; a target that is
            not one token is replaced by its first token (with a warning).
        tokenizer_kwargs: Tokenizer options (``truncation``, ``max_length``).
    """

    default_task = "fill-mask"
    model_kind = "ForMaskedLM"

    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        targets: str | list[str] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        if kwargs:
            raise TypeError(f"{self.task} got unexpected keyword arguments {sorted(kwargs)}")
        if self.tokenizer.mask_token_id is None:
            raise ValueError(f"The tokenizer of this {self.task} pipeline has no mask_token, so it cannot fill masks")
        pre = {"tokenizer_kwargs": dict(tokenizer_kwargs)} if tokenizer_kwargs else {}
        post: dict[str, Any] = {}
        if targets is not None:
            post["target_ids"] = self.get_target_ids(targets)
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"top_k must be a positive int, got {top_k!r}")
            post["top_k"] = top_k
        return pre, {}, post

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Fill the masks of one text or many; a list of one text gives that text's result (reference)."""
        outputs = super().__call__(inputs, *args, **kwargs)
        if isinstance(inputs, list) and len(inputs) == 1:
            return outputs[0]
        return outputs

    def _check_input(self, item: Any, index: int | None = None) -> str:
        text = check_text(item, self._what(index))
        if self.tokenizer.mask_token not in text:
            raise ValueError(
                f"{self._what(index)} has no mask token {self.tokenizer.mask_token!r}: {text!r}. Write "
                f"{self.tokenizer.mask_token} where the word to predict goes."
            )
        return text

    def get_target_ids(self, targets: str | list[str]) -> list[int]:
        """Vocabulary ids of ``targets`` (deduplicated, in the reference's order)."""
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, (list, tuple)) or not all(isinstance(t, str) for t in targets):
            raise TypeError(f"targets must be a str or a list of str, got {targets!r}")
        vocab = self.tokenizer.get_vocab()
        ids = []
        for target in targets:
            index = vocab.get(target)
            if index is None:
                pieces = self.tokenizer(
                    target, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False,
                    max_length=1, truncation=True,
                )["input_ids"]
                if not pieces:
                    logger.warning("The target %r is not in the vocabulary and gives no token; it is ignored.", target)
                    continue
                index = pieces[0]
                logger.warning(
                    "The target %r is not one token of the vocabulary; it is replaced by %r.",
                    target, self.tokenizer.convert_ids_to_tokens(index),
                )
            ids.append(index)
        ids = list(set(ids))  # the reference's order, so ties break the same way
        if not ids:
            raise ValueError(f"None of the targets {targets!r} gives a token; pass at least one usable target.")
        return ids

    def preprocess(self, inputs: list[str], tokenizer_kwargs: dict[str, Any] | None = None) -> list[list[Feature]]:
        kwargs = dict(tokenizer_kwargs or {})
        rows = self.tokenize(
            inputs, truncation=kwargs.pop("truncation", True), max_length=kwargs.pop("max_length", None), **kwargs
        )
        mask_id = self.tokenizer.mask_token_id
        for index, feats in enumerate(rows):
            if mask_id not in feats[0].input_ids:
                raise ValueError(
                    f"{self._window_name(index)}: its mask token {self.tokenizer.mask_token!r} was cut off by truncation "
                    f"(the model takes {self.max_length} tokens); put the mask earlier or shorten the text."
                )
        return rows

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = self.model(**model_inputs).logits  # (B, T, vocab)
        masked = model_inputs["input_ids"] == self.tokenizer.mask_token_id  # (B, T)
        # Only the rows at mask positions leave the model: (masks in the batch, vocab)
        return {"mask_logits": logits[masked], "mask_rows": masked.nonzero()[:, 0]}

    def postprocess(
        self,
        outputs: dict[str, torch.Tensor],
        features: list[Feature],
        top_k: int = 5,
        target_ids: list[int] | None = None,
    ) -> list[Any]:
        probs = outputs["mask_logits"].float().softmax(-1)  # (masks, vocab), every mask of the batch at once
        if target_ids is not None:
            probs = probs[:, target_ids]  # (masks, targets)
            top_k = min(top_k, len(target_ids))
        values, predictions = probs.topk(top_k)
        values, predictions = values.tolist(), predictions.tolist()
        mask_rows = outputs["mask_rows"].tolist()
        results = []
        for row, feature in enumerate(features):
            masks = [m for m, r in enumerate(mask_rows) if r == row]
            positions = [i for i, token in enumerate(feature.input_ids) if token == self.tokenizer.mask_token_id]
            single = len(positions) == 1
            per_mask = []
            for m, position in zip(masks, positions):
                candidates = []
                for score, p in zip(values[m], predictions[m]):
                    token = target_ids[p] if target_ids is not None else p
                    tokens = list(feature.input_ids)
                    tokens[position] = token
                    tokens = [t for t in tokens if t != self.tokenizer.pad_token_id]
                    # One mask: skip special tokens for a readable text; several: keep the other masks.
                    sequence = self.tokenizer.decode(tokens, skip_special_tokens=single)
                    candidates.append(
                        {"score": score, "token": token, "token_str": self.tokenizer.decode([token]), "sequence": sequence}
                    )
                per_mask.append(candidates)
            results.append(per_mask[0] if single else per_mask)
        return results
