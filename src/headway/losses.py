"""Losses shared by task heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from headway.configuration import PretrainedConfig

IGNORE_INDEX = -100


def sequence_classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, config: PretrainedConfig
) -> torch.Tensor:
    """Regression, single-label or multi-label loss, chosen by ``config.problem_type``.

    When ``problem_type`` is unset it is inferred as the reference does (one label: regression;
    integer labels: single-label; otherwise multi-label) and recorded on the config.
    """
    num_labels = logits.shape[-1]
    if config.problem_type is None:
        if num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "regression":
        if num_labels == 1:
            return F.mse_loss(logits.squeeze(), labels.squeeze().to(logits.dtype))
        return F.mse_loss(logits, labels.to(logits.dtype))
    if config.problem_type == "single_label_classification":
        return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1))
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def token_classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every token; label -100 is ignored."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)


def span_loss(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    start_positions: torch.Tensor,
    end_positions: torch.Tensor,
) -> torch.Tensor:
    """Mean of start and end cross-entropy; positions outside the sequence are ignored."""
    ignored = start_logits.shape[1]
    start_positions = start_positions.reshape(-1).clamp(0, ignored)
    end_positions = end_positions.reshape(-1).clamp(0, ignored)
    start = F.cross_entropy(start_logits, start_positions, ignore_index=ignored)
    end = F.cross_entropy(end_logits, end_positions, ignore_index=ignored)
    return (start + end) / 2


def causal_lm_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_items_in_batch: int | torch.Tensor | None = None,
    shift_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of predicting token t + 1 at position t, in float32; label -100 is ignored.

    With ``num_items_in_batch`` (the Trainer's count of labelled tokens over gradient-accumulation steps),
    the summed loss is divided by it instead of averaged. ``shift_labels`` gives the targets already shifted.
    """
    if shift_labels is None:
        shift_labels = F.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:]  # (B, T): the next token's label
    logits = logits.float().reshape(-1, logits.shape[-1])  # (B * T, vocab)
    shift_labels = shift_labels.reshape(-1).to(logits.device)
    if num_items_in_batch is None:
        return F.cross_entropy(logits, shift_labels, ignore_index=IGNORE_INDEX)
    total = F.cross_entropy(logits, shift_labels, ignore_index=IGNORE_INDEX, reduction="sum")
    if isinstance(num_items_in_batch, torch.Tensor):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch
