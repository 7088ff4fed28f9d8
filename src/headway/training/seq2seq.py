"""Seq2SeqTrainer and Seq2SeqTrainingArguments: the Trainer for encoder-decoder models, scored on generated text.

Training is the base :class:`~headway.training.trainer.Trainer`'s, unchanged. Evaluation and prediction
differ only with ``predict_with_generate=True``: each batch then also goes through ``model.generate``, and
the generated ids (not the logits) are the predictions that ``compute_metrics`` receives, so that scores
such as ROUGE, BLEU or exact match can be computed from decoded text. As in the reference:

- the generation settings are, by priority, the keywords of ``evaluate`` / ``predict`` (``max_length=``,
  ``num_beams=``, any ``generate`` keyword), then ``generation_max_length`` / ``generation_num_beams`` of the
  arguments, then the model's ``generation_config`` (replaced by ``args.generation_config`` when given);
- each batch's generated ids (and labels) shorter than the model's ``generation_config.max_length`` (20
  unless set) are padded to it with the tokenizer's pad id (its eos id when it has no pad token), or to
  ``max_new_tokens + 1`` when the generation config sets ``max_new_tokens``; batches of different widths
  are then joined by the evaluation loop, which pads with -100 (map -100 to the pad id before decoding);
- ``evaluate()`` generates only when there is a ``compute_metrics`` (without it only the loss is wanted),
  ``predict()`` always; the loss is the model's on the batch with its labels.

One difference: the loss is averaged over examples, as the Trainer does. The reference's Seq2SeqTrainer
counts a last, partial batch's loss as many times as a full batch holds examples (its gather keeps the
repeats), so its ``eval_loss`` differs from headway's when the set is not a multiple of the batch size.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from headway.generation.config import GenerationConfig
from headway.training import distributed as D
from headway.training.arguments import TrainingArguments
from headway.training.trainer import Trainer
from headway.training.utils import PredictionOutput

logger = logging.getLogger(__name__)

__all__ = ["Seq2SeqTrainer", "Seq2SeqTrainingArguments"]

# What ``generate`` of an encoder-decoder reads from a batch; the other keys (labels...) stay out of it.
_GENERATE_INPUTS = (
    "input_ids",
    "attention_mask",
    "decoder_input_ids",
    "decoder_attention_mask",
    "encoder_outputs",
)


@dataclass
class Seq2SeqTrainingArguments(TrainingArguments):
    """:class:`~headway.training.arguments.TrainingArguments` plus the generation settings of evaluation.

    Args:
        predict_with_generate: score evaluation and prediction on ``generate()``'s ids (see the module
            docstring); False keeps the Trainer's loss / logits evaluation.
        generation_max_length: ``max_length`` of the evaluation ``generate`` calls (None: the model's
            generation config); not used when the call passes ``max_length`` or ``max_new_tokens``.
        generation_num_beams: ``num_beams`` of the evaluation ``generate`` calls (None: the model's).
        generation_config: a ``GenerationConfig``, or a folder / ``generation_config.json`` file / Hub id to
            read one from; it replaces the model's generation config when the trainer is built.
        sortish_sampler: accepted for compatibility and ignored, as in transformers 5 (it once sorted a
            legacy dataset class by length with some randomness); ``group_by_length=True`` (or
            ``train_sampling_strategy="group_by_length"``) batches examples of similar length.
    """

    sortish_sampler: bool = False
    predict_with_generate: bool = False
    generation_max_length: int | None = None
    generation_num_beams: int | None = None
    generation_config: str | Path | GenerationConfig | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("generation_max_length", "generation_num_beams"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")
        config = self.generation_config
        if config is not None and not isinstance(config, (str, Path, GenerationConfig)):
            raise TypeError(
                "generation_config must be a GenerationConfig, a path or a Hub id, got "
                f"{type(config).__name__}"
            )
        if self.sortish_sampler:
            logger.warning(
                "sortish_sampler=True has no effect (as in transformers 5); use group_by_length=True "
                "to batch examples of similar length"
            )

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict, a ``GenerationConfig`` as its own dict (so the arguments save as JSON)."""
        out = super().to_dict()
        for key, value in out.items():
            if isinstance(value, GenerationConfig):
                out[key] = value.to_dict()
        return out


class Seq2SeqTrainer(Trainer):
    """The :class:`~headway.training.trainer.Trainer` with generation in evaluation and prediction.

    Takes the Trainer's arguments. With ``Seq2SeqTrainingArguments(predict_with_generate=True)``,
    ``evaluate`` / ``predict`` run ``model.generate`` on each batch and give ``compute_metrics`` an
    ``EvalPrediction(predictions=generated ids, label_ids=labels)``; see the module docstring for the
    settings used and how the ids are padded. Plain ``TrainingArguments`` behave as with the Trainer.

    Raises:
        ValueError: ``args.generation_config`` cannot be read or holds settings that have no effect.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = getattr(self.args, "generation_config", None)
        if config is not None:  # it outranks the model's own generation config
            self.model.generation_config = self.load_generation_config(config)
        self._gen_kwargs: dict[str, Any] = {}

    @staticmethod
    def load_generation_config(gen_config_arg: str | Path | GenerationConfig) -> GenerationConfig:
        """A copy of a ``GenerationConfig``, or one read from a folder, a ``.json`` file or a Hub id.

        Checked strictly (a flag without effect is an error): a mistake shows before training, not when
        the trained model's generation config is saved.
        """
        if isinstance(gen_config_arg, GenerationConfig):
            config = copy.deepcopy(gen_config_arg)
        else:
            path = Path(gen_config_arg)
            if path.is_file():
                config = GenerationConfig.from_pretrained(path.parent, path.name)
            else:
                config = GenerationConfig.from_pretrained(path if path.is_dir() else str(gen_config_arg))
        try:
            config.validate(strict=True)
        except ValueError as error:
            raise ValueError(f"args.generation_config cannot be used: {error}") from error
        return config

    # -- evaluate / predict with generate keywords --------------------------------------------------------------
    def _generation_kwargs(self, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's ``generate`` keywords, completed by the arguments' ``generation_*`` settings."""
        gen_kwargs = dict(gen_kwargs)
        max_length = getattr(self.args, "generation_max_length", None)
        if gen_kwargs.get("max_length") is None and gen_kwargs.get("max_new_tokens") is None and max_length:
            gen_kwargs["max_length"] = max_length
        num_beams = getattr(self.args, "generation_num_beams", None)
        if gen_kwargs.get("num_beams") is None and num_beams is not None:
            gen_kwargs["num_beams"] = num_beams
        return gen_kwargs

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
        **gen_kwargs: Any,
    ) -> dict[str, float]:
        """The Trainer's ``evaluate``; with ``predict_with_generate``, ``gen_kwargs`` (``max_length=``,
        ``num_beams=``...) are passed to ``generate`` for each batch.

        A dict of datasets is evaluated one by one with the same ``gen_kwargs``.
        """
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if isinstance(dataset, dict):
            metrics: dict[str, float] = {}
            for name, data in dataset.items():
                metrics.update(self.evaluate(data, ignore_keys, f"{metric_key_prefix}_{name}", **gen_kwargs))
            return metrics
        self._gen_kwargs = self._generation_kwargs(gen_kwargs)
        return super().evaluate(dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    def predict(
        self,
        test_dataset: Any,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "test",
        **gen_kwargs: Any,
    ) -> PredictionOutput:
        """The Trainer's ``predict``; with ``predict_with_generate``, the predictions are generated ids
        (``gen_kwargs`` passed to ``generate``)."""
        self._gen_kwargs = self._generation_kwargs(gen_kwargs)
        return super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    # -- one batch ---------------------------------------------------------------------------------------------
    def prediction_step(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
        **gen_kwargs: Any,
    ) -> tuple[Any, Any, Any]:
        """(loss, generated ids, labels) of one batch; the Trainer's (loss, logits, labels) without
        ``predict_with_generate`` or when only the loss is wanted."""
        if not getattr(self.args, "predict_with_generate", False) or prediction_loss_only:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)
        if D.world_size() > 1 and D.is_fsdp(self.model_wrapped):
            raise ValueError(
                "predict_with_generate=True is not supported with fsdp across processes: the ranks "
                "would generate different numbers of tokens while their forwards wait on each other"
            )
        has_labels = "labels" in inputs
        inputs = self._prepare_inputs(inputs)
        gen_kwargs = dict(gen_kwargs) if gen_kwargs else dict(self._gen_kwargs)
        for name in ("num_beams", "max_length"):
            if gen_kwargs.get(name, 0) is None:
                del gen_kwargs[name]
        if not gen_kwargs.get("synced_gpus", True):  # processes that each generate alone: nothing to sync
            del gen_kwargs["synced_gpus"]

        generation_inputs = {k: v for k, v in inputs.items() if k in _GENERATE_INPUTS}
        decoder_ids = inputs.get("decoder_input_ids")
        if has_labels and decoder_ids is not None and inputs["labels"].shape == decoder_ids.shape:
            # decoder inputs made from the labels (the collator's): generation must start afresh, not from them
            generation_inputs.pop("decoder_input_ids")
            generation_inputs.pop("decoder_attention_mask", None)
        generated = self._pad_to_generation_length(self.model.generate(**generation_inputs, **gen_kwargs))

        loss = None
        if has_labels:
            with torch.no_grad(), self.compute_loss_context_manager():
                outputs = model(**inputs)
            if isinstance(outputs, dict):
                loss = outputs["loss"]
            else:
                loss = outputs.loss if hasattr(outputs, "loss") else outputs[0]
            loss = loss.detach().mean()
        if self.args.prediction_loss_only:
            return loss, None, None
        labels = self._pad_to_generation_length(inputs["labels"]) if has_labels else None
        return loss, generated, labels

    def _pad_to_generation_length(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids`` (B, T) padded on the right to the model generation config's ``max_length`` when shorter,
        else to ``max_new_tokens + 1`` (the decoder start token counts) when that is set and longer."""
        config = self.model.generation_config
        if ids.shape[-1] < config.max_length:
            return self._pad_tensors_to_max_len(ids, config.max_length)
        if config.max_new_tokens is not None and ids.shape[-1] < config.max_new_tokens + 1:
            return self._pad_tensors_to_max_len(ids, config.max_new_tokens + 1)
        return ids

    def _pad_tensors_to_max_len(self, tensor: torch.Tensor, max_length: int) -> torch.Tensor:
        """``tensor`` (B, T) right-padded to (B, max_length) with the tokenizer's pad id (else its eos id,
        else the model config's pad id)."""
        tokenizer = self.processing_class
        if tokenizer is not None and hasattr(tokenizer, "pad_token_id"):
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        else:
            pad = getattr(getattr(self.model, "config", None), "pad_token_id", None)
        if pad is None:
            raise ValueError(
                "Generated ids need padding but there is no pad id: the tokenizer has neither a pad nor "
                "an eos token and model.config.pad_token_id is None"
            )
        padded = tensor.new_full((tensor.shape[0], max_length), pad)
        padded[:, : tensor.shape[-1]] = tensor
        return padded
