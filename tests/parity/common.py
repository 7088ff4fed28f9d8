"""Shared parity checks: a tiny random model built and saved by the reference, loaded by headway."""

from __future__ import annotations

from pathlib import Path

import torch

ATOL = 1e-5


def padded_batch(vocab_size: int, *, batch: int = 3, seq_len: int = 12, pairs: bool = True, seed: int = 0,
                 pad_token_id: int = 1) -> dict[str, torch.Tensor]:
    """input_ids / attention_mask (/ token_type_ids) for a right-padded batch of different lengths.

    Real tokens are drawn from ``[5, vocab_size)``, so they never equal a small padding id.
    """
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (batch, seq_len), generator=g)
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    for row in range(1, batch):
        mask[row, seq_len - 3 * row:] = 0
    ids = ids.masked_fill(mask == 0, pad_token_id)
    out = {"input_ids": ids, "attention_mask": mask}
    if pairs:
        tt = torch.zeros_like(ids)
        tt[:, seq_len // 2:] = 1
        out["token_type_ids"] = tt * mask
    return out


def labels_for(head: str, batch: dict[str, torch.Tensor], num_labels: int, vocab_size: int, seed: int = 1
               ) -> dict[str, torch.Tensor]:
    """Labels that make each head compute its loss."""
    g = torch.Generator().manual_seed(seed)
    ids = batch["input_ids"]
    B, T = ids.shape[0], ids.shape[-1]
    if head == "SequenceClassification":
        return {"labels": torch.randint(0, num_labels, (B,), generator=g)}
    if head == "TokenClassification":
        labels = torch.randint(0, num_labels, ids.shape, generator=g)
        return {"labels": labels.masked_fill(batch["attention_mask"] == 0, -100)}
    if head == "QuestionAnswering":
        return {"start_positions": torch.randint(0, T, (B,), generator=g),
                "end_positions": torch.randint(0, T, (B,), generator=g)}
    if head == "MaskedLM":
        labels = torch.randint(0, vocab_size, ids.shape, generator=g)
        return {"labels": labels.masked_fill(torch.rand(ids.shape, generator=g) < 0.7, -100)}
    if head == "PreTraining":
        labels = torch.randint(0, vocab_size, ids.shape, generator=g).masked_fill(batch["attention_mask"] == 0, -100)
        return {"labels": labels, "next_sentence_label": torch.randint(0, 2, (B,), generator=g)}
    if head == "MultipleChoice":
        return {"labels": torch.randint(0, ids.shape[1], (B,), generator=g)}
    return {}


def as_multiple_choice(batch: dict[str, torch.Tensor], choices: int = 2) -> dict[str, torch.Tensor]:
    """(B, T) inputs -> (B, choices, T), each choice a rolled copy."""
    return {k: torch.stack([v.roll(i, dims=0) for i in range(choices)], dim=1).contiguous() for k, v in batch.items()}


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, atol: float = ATOL, msg: str = "") -> None:
    """``torch.testing.assert_close(actual, expected, atol=atol, rtol=0)``, decided in one reduction when close.

    torch.testing spends ~0.5 ms of Python per call, which thousands of comparisons (every gradient, every
    hidden state) add up to seconds; anything not plainly close (other shape, dtype or device, a NaN, an
    infinity, a difference over ``atol``) goes to torch.testing for the verdict and its message.
    """
    if (isinstance(actual, torch.Tensor) and isinstance(expected, torch.Tensor) and actual.is_floating_point()
            and actual.shape == expected.shape and actual.dtype == expected.dtype
            and actual.device == expected.device and bool(((actual - expected).abs() <= atol).all())):
        return
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0, msg=(lambda m: f"{msg}: {m}") if msg else None)


def assert_outputs_close(ref_out, our_out, *, atol: float = ATOL) -> list[str]:
    """Every tensor field the reference returns equals ours within ``atol``; returns the names compared."""
    compared = []
    for key, ref_value in ref_out.items():
        if key == "past_key_values" or ref_value is None or (isinstance(ref_value, tuple) and not ref_value):
            continue
        ours = our_out[key]
        if isinstance(ref_value, (tuple, list)):
            assert len(ref_value) == len(ours), key
            pairs = list(zip(ref_value, ours))
        else:
            pairs = [(ref_value, ours)]
        for r, o in pairs:
            assert r.shape == o.shape, f"{key}: shape {tuple(o.shape)} != reference {tuple(r.shape)}"
            assert_close(o, r, atol=atol, msg=key)
        compared.append(key)
    return compared


def compare_models(ref_model, ours, inputs: dict, *, atol: float = ATOL) -> list[str]:
    """Compare the outputs (with losses) of ``ref_model`` and ``ours`` (both in eval mode) on ``inputs``.

    The default (SDPA) path first; then hidden states and attentions through the reference's eager path,
    the only one returning attention weights (its attention implementation is restored afterwards).
    Returns the names of the fields compared on the default path.
    """
    assert not ref_model.training and not ours.training
    with torch.no_grad():
        compared = assert_outputs_close(ref_model(**inputs), ours(**inputs), atol=atol)
        implementation = ref_model.config._attn_implementation
        ref_model.set_attn_implementation("eager")
        try:
            ref_out = ref_model(**inputs, output_hidden_states=True, output_attentions=True)
        finally:
            ref_model.set_attn_implementation(implementation)
        our_out = ours(**inputs, output_hidden_states=True, output_attentions=True)
        assert ref_out.attentions, "the reference returned no attention weights"
        assert_outputs_close(ref_out, our_out, atol=atol)
    return compared


def compare_saved_model(ref_model, our_cls, folder: Path, inputs: dict, *, atol: float = ATOL,
                        save: bool = True) -> list[str]:
    """Save ``ref_model``, load it with ``our_cls`` and compare outputs (with losses) on ``inputs``.

    ``save=False``: ``folder`` already holds ``ref_model``'s checkpoint.
    """
    ref_model.eval()
    if save:
        ref_model.save_pretrained(folder)
    return compare_models(ref_model, our_cls.from_pretrained(folder), inputs, atol=atol)
