"""token-classification (alias ner): a label per token, or entities grouped from them.

Follows the reference's algorithm step by step (``gather_pre_entities`` -> ``aggregate`` ->
``group_entities``), so words, offsets and labels come out identical; scores are Python floats.
A text longer than the model allows is truncated with a warning, or, with ``stride``, read in
overlapping windows whose entities are merged.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from headway.pipelines.base import Feature, Pipeline

logger = logging.getLogger(__name__)

AGGREGATION_STRATEGIES = ("none", "simple", "first", "average", "max")


class TokenClassificationPipeline(Pipeline):
    """Named-entity recognition (and any token tagging) with a token-classification model.

    Parameters (at construction or per call):
        aggregation_strategy: "none" (one result per token, with its ``index``), "simple" (adjacent
            tokens with the same entity grouped, B-/I- aware), or "first" / "average" / "max" (a word's
            tokens forced to one label: the first token's, the averaged scores', or the best token's).
        ignore_labels: Labels left out of the results (default ``["O"]``).
        stride: Read texts longer than the model allows in windows overlapping by ``stride`` tokens
            (needs an aggregation strategy other than "none").
    """

    default_task = "token-classification"
    model_kind = "ForTokenClassification"

    def _sanitize_parameters(
        self,
        ignore_labels: list[str] | None = None,
        aggregation_strategy: str | None = None,
        stride: int | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        if kwargs:
            raise TypeError(f"{self.task} got unexpected keyword arguments {sorted(kwargs)}")
        pre: dict[str, Any] = {}
        post: dict[str, Any] = {}
        if aggregation_strategy is not None:
            name = getattr(aggregation_strategy, "value", aggregation_strategy)
            if not isinstance(name, str) or name.lower() not in AGGREGATION_STRATEGIES:
                raise ValueError(
                    f"aggregation_strategy must be one of {list(AGGREGATION_STRATEGIES)}, got {aggregation_strategy!r}"
                )
            post["aggregation_strategy"] = name.lower()
        if ignore_labels is not None:
            if isinstance(ignore_labels, str) or not all(isinstance(x, str) for x in ignore_labels):
                raise TypeError(f"ignore_labels must be a list of label names, got {ignore_labels!r}")
            post["ignore_labels"] = list(ignore_labels)
        if stride is not None:
            room = self.max_length - self.tokenizer.num_special_tokens_to_add(pair=False)
            if isinstance(stride, bool) or not isinstance(stride, int) or not 0 <= stride < room:
                raise ValueError(
                    f"stride must be an int from 0 to {room - 1} (the {self.max_length} tokens a window holds, less "
                    f"special tokens), got {stride!r}"
                )
            if post.get("aggregation_strategy", "none") == "none" and aggregation_strategy is not None:
                raise ValueError(
                    '`stride` was provided to process all the text but `aggregation_strategy="none"`, please '
                    "select another one instead."
                )
            pre["stride"] = stride
        return pre, {}, post

    def _call_parameters(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        params = super()._call_parameters(kwargs)
        if "stride" in params[0] and params[2].get("aggregation_strategy", "none") == "none":
            raise ValueError(
                '`stride` was provided to process all the text but `aggregation_strategy="none"`, please select '
                "another one instead."
            )
        return params

    def preprocess(self, inputs: list[str], stride: int | None = None) -> list[list[Feature]]:
        hint = "" if stride is not None else " Pass stride=<overlap in tokens> to read the whole text in windows."
        rows = self.tokenize(inputs, stride=stride, offsets=True, hint=hint)
        for text, feats in zip(inputs, rows):
            for feature in feats:
                feature.meta["sentence"] = text
        return rows

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.model(**model_inputs).logits}  # (B, T, num_labels)

    def postprocess(
        self,
        outputs: dict[str, torch.Tensor],
        features: list[Feature],
        aggregation_strategy: str = "none",
        ignore_labels: list[str] | None = None,
    ) -> list[list[dict[str, Any]]]:
        ignore = ["O"] if ignore_labels is None else ignore_labels
        scores = outputs["logits"].float().softmax(-1).numpy()  # (B, T, num_labels), the whole batch at once
        results = []
        for row, feature in zip(scores, features):
            pre_entities = self.gather_pre_entities(feature, row[: len(feature)], aggregation_strategy)
            entities = self.aggregate(pre_entities, aggregation_strategy)
            results.append([
                e for e in entities if e.get("entity") not in ignore and e.get("entity_group") not in ignore
            ])
        return results

    def _combine(self, rows: list[list[dict[str, Any]]], **params: Any) -> list[dict[str, Any]]:
        entities = [entity for row in rows for entity in row]
        return self.aggregate_overlapping_entities(entities) if len(rows) > 1 else entities

    # -- the reference's algorithm ------------------------------------------------------------------------
    def gather_pre_entities(self, feature: Feature, scores: np.ndarray, aggregation_strategy: str) -> list[dict]:
        """One dict per non-special token: word, scores, character span, index, whether it continues a word."""
        sentence = feature.meta["sentence"]
        encoding = feature.encoding
        words = self.tokenizer.convert_ids_to_tokens(feature.input_ids)
        word_aware = getattr(self.tokenizer.backend_tokenizer.model, "continuing_subword_prefix", None)
        if not word_aware and aggregation_strategy in ("first", "average", "max"):
            self._warn_once("Tokenizer does not support real words, using fallback heuristic")
        unk = self.tokenizer.unk_token_id
        pre_entities = []
        for idx, (token_scores, special) in enumerate(zip(scores, encoding.special_tokens_mask)):
            if special:
                continue
            word = words[idx]
            start, end = encoding.offsets[idx]
            word_ref = sentence[start:end]
            if word_aware:
                is_subword = len(word) != len(word_ref)  # "##ing" is longer than "ing"
            else:
                is_subword = start > 0 and " " not in sentence[start - 1 : start + 1]
            if feature.input_ids[idx] == unk:
                word, is_subword = word_ref, False
            pre_entities.append(
                {"word": word, "scores": token_scores, "start": start, "end": end, "index": idx, "is_subword": is_subword}
            )
        return pre_entities

    def aggregate(self, pre_entities: list[dict], aggregation_strategy: str) -> list[dict]:
        id2label = self.model.config.id2label
        if aggregation_strategy in ("none", "simple"):
            entities = []
            for pre in pre_entities:
                best = int(pre["scores"].argmax())
                entities.append({
                    "entity": id2label[best],
                    "score": float(pre["scores"][best]),
                    "index": pre["index"],
                    "word": pre["word"],
                    "start": pre["start"],
                    "end": pre["end"],
                })
        else:
            entities = self.aggregate_words(pre_entities, aggregation_strategy)
        if aggregation_strategy == "none":
            return entities
        return self.group_entities(entities)

    def aggregate_word(self, entities: list[dict], aggregation_strategy: str) -> dict:
        """One entity for the tokens of one word, labelled by the strategy."""
        word = self.tokenizer.convert_tokens_to_string([entity["word"] for entity in entities])
        if aggregation_strategy == "first":
            scores = entities[0]["scores"]
        elif aggregation_strategy == "max":
            scores = max(entities, key=lambda entity: entity["scores"].max())["scores"]
        else:  # average
            scores = np.nanmean(np.stack([entity["scores"] for entity in entities]), axis=0)
        best = int(scores.argmax())
        return {
            "entity": self.model.config.id2label[best],
            "score": float(scores[best]),
            "word": word,
            "start": entities[0]["start"],
            "end": entities[-1]["end"],
        }

    def aggregate_words(self, entities: list[dict], aggregation_strategy: str) -> list[dict]:
        """Group tokens into words (a word is a token plus the sub-word tokens after it)."""
        word_entities, group = [], None
        for entity in entities:
            if group is None:
                group = [entity]
            elif entity["is_subword"]:
                group.append(entity)
            else:
                word_entities.append(self.aggregate_word(group, aggregation_strategy))
                group = [entity]
        if group is not None:
            word_entities.append(self.aggregate_word(group, aggregation_strategy))
        return word_entities

    def group_sub_entities(self, entities: list[dict]) -> dict:
        """One ``entity_group`` from adjacent entities of the same type."""
        return {
            "entity_group": entities[0]["entity"].split("-", 1)[-1],
            "score": float(np.nanmean([np.float32(entity["score"]) for entity in entities])),
            "word": self.tokenizer.convert_tokens_to_string([entity["word"] for entity in entities]),
            "start": entities[0]["start"],
            "end": entities[-1]["end"],
        }

    @staticmethod
    def get_tag(entity_name: str) -> tuple[str, str]:
        """("B" or "I", type) of a label; labels without a B-/I- prefix count as I (continuation)."""
        if entity_name.startswith(("B-", "I-")):
            return entity_name[0], entity_name[2:]
        return "I", entity_name

    def group_entities(self, entities: list[dict]) -> list[dict]:
        """Group adjacent entities of one type; a B- label starts a new group."""
        groups, current = [], []
        for entity in entities:
            if current:
                bi, tag = self.get_tag(entity["entity"])
                _, last_tag = self.get_tag(current[-1]["entity"])
                if tag == last_tag and bi != "B":
                    current.append(entity)
                    continue
                groups.append(self.group_sub_entities(current))
            current = [entity]
        if current:
            groups.append(self.group_sub_entities(current))
        return groups

    @staticmethod
    def aggregate_overlapping_entities(entities: list[dict]) -> list[dict]:
        """Entities found in overlapping windows: of two that overlap keep the longer (then the surer)."""
        if not entities:
            return entities
        entities = sorted(entities, key=lambda x: x["start"])
        kept, previous = [], entities[0]
        for entity in entities:
            if previous["start"] <= entity["start"] < previous["end"]:
                length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
                if length > previous_length or (length == previous_length and entity["score"] > previous["score"]):
                    previous = entity
            else:
                kept.append(previous)
                previous = entity
        kept.append(previous)
        return kept

    def _warn_once(self, message: str) -> None:
        if not getattr(self, "_warned_heuristic", False):
            self._warned_heuristic = True
            logger.warning(message)
