"""Collators give the reference's batches for the same examples (and the same seed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from headway import (
    DataCollatorForLanguageModeling,
    DataCollatorForSeq2Seq,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    default_data_collator,
)

from .conftest import SENTENCES


def _assert_same(ours, ref):
    assert set(ours.keys()) == set(ref.keys())
    for key in ref:
        if ref[key] is None:
            assert ours[key] is None
            continue
        assert ours[key].dtype == ref[key].dtype, key
        torch.testing.assert_close(ours[key], ref[key], rtol=0, atol=0, msg=key)


def _features(tok, **kwargs):
    enc = tok(SENTENCES * 2, **kwargs)
    return [{k: enc[k][i] for k in enc} for i in range(len(SENTENCES) * 2)]


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("multiple", [None, 8])
def test_with_padding(tokenizer, ref_tokenizer, side, multiple):
    tokenizer.padding_side = ref_tokenizer.padding_side = side
    try:
        feats, ref_feats = _features(tokenizer), _features(ref_tokenizer)
        for f, g in zip(feats, ref_feats):
            f["label"] = g["label"] = len(f["input_ids"]) % 2
        ours = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple)(feats)
        ref = transformers.DataCollatorWithPadding(ref_tokenizer, pad_to_multiple_of=multiple)(ref_feats)
        _assert_same(ours, ref)
    finally:
        tokenizer.padding_side = ref_tokenizer.padding_side = "right"


@pytest.mark.parametrize("side", ["right", "left"])
def test_token_classification(tokenizer, ref_tokenizer, side):
    tokenizer.padding_side = ref_tokenizer.padding_side = side
    try:
        feats, ref_feats = _features(tokenizer), _features(ref_tokenizer)
        for f, g in zip(feats, ref_feats):
            f["labels"] = g["labels"] = [i % 3 for i in range(len(f["input_ids"]))]
        ours = DataCollatorForTokenClassification(tokenizer)(feats)
        ref = transformers.DataCollatorForTokenClassification(ref_tokenizer)(ref_feats)
        _assert_same(ours, ref)
        assert (ours["labels"] == -100).any()
    finally:
        tokenizer.padding_side = ref_tokenizer.padding_side = "right"


@pytest.mark.parametrize("special_mask", [False, True])
@pytest.mark.parametrize("seed", [None, 7])
def test_masked_lm_same_masks(tokenizer, ref_tokenizer, special_mask, seed):
    feats = _features(tokenizer, return_special_tokens_mask=special_mask)
    ref_feats = _features(ref_tokenizer, return_special_tokens_mask=special_mask)
    ours_c = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.4, seed=seed)
    ref_c = transformers.DataCollatorForLanguageModeling(ref_tokenizer, mlm_probability=0.4, seed=seed)
    for _ in range(3):  # the generator state carries over between batches
        torch.manual_seed(123)
        ours = ours_c(feats)
        torch.manual_seed(123)
        ref = ref_c(ref_feats)
        _assert_same(ours, ref)
    assert (ours["labels"] != -100).any()


def test_masked_lm_80_10_10(tokenizer):
    ids = [[tokenizer.cls_token_id] + [2000 + i % 500 for i in range(4000)] + [tokenizer.sep_token_id]]
    batch = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.5, seed=0)(ids)
    chosen = batch["labels"] != -100
    assert not chosen[0, 0] and not chosen[0, -1]  # special tokens are never chosen
    masked = (batch["input_ids"] == tokenizer.mask_token_id) & chosen
    kept = (batch["input_ids"] == batch["labels"]) & chosen
    frac_mask, frac_kept = masked.sum() / chosen.sum(), kept.sum() / chosen.sum()
    assert 0.5 == pytest.approx(chosen.float().mean().item(), abs=0.03)
    assert 0.8 == pytest.approx(frac_mask.item(), abs=0.03)
    assert 0.1 == pytest.approx(frac_kept.item(), abs=0.03)


def test_causal_lm_labels(tokenizer, ref_tokenizer):
    feats, ref_feats = _features(tokenizer), _features(ref_tokenizer)
    ours = DataCollatorForLanguageModeling(tokenizer, mlm=False)(feats)
    ref = transformers.DataCollatorForLanguageModeling(ref_tokenizer, mlm=False)(ref_feats)
    _assert_same(ours, ref)
    assert (ours["labels"] == -100).sum() == (ours["attention_mask"] == 0).sum()


def test_lists_of_ids(tokenizer, ref_tokenizer):
    rows = [[101, 2023, 102], [101, 2023, 2003, 2307, 102]]
    ours = DataCollatorForLanguageModeling(tokenizer, mlm=False, pad_to_multiple_of=4)(rows)
    ref = transformers.DataCollatorForLanguageModeling(ref_tokenizer, mlm=False, pad_to_multiple_of=4)(rows)
    _assert_same(ours, ref)


class _ShiftingModel:
    def prepare_decoder_input_ids_from_labels(self, labels):
        start = torch.zeros_like(labels[:, :1])
        return torch.cat([start, labels[:, :-1].clamp(min=0)], dim=1)


@pytest.mark.parametrize("multiple", [None, 8])
def test_seq2seq(tokenizer, ref_tokenizer, multiple):
    feats, ref_feats = _features(tokenizer), _features(ref_tokenizer)
    for i, (f, g) in enumerate(zip(feats, ref_feats)):
        f["labels"] = g["labels"] = list(range(5, 8 + i))
    model = _ShiftingModel()
    ours = DataCollatorForSeq2Seq(tokenizer, model=model, pad_to_multiple_of=multiple)(feats)
    ref = transformers.DataCollatorForSeq2Seq(ref_tokenizer, model=model, pad_to_multiple_of=multiple)(ref_feats)
    _assert_same(ours, ref)
    assert "decoder_input_ids" in ours and (ours["labels"] == -100).any()


def test_default_data_collator():
    feats = [{"input_ids": [1, 2, 3], "label": 1, "text": "x", "score": 0.5},
             {"input_ids": [4, 5, 6], "label": 0, "text": "y", "score": 1.5}]
    for tensors in ("pt", "np"):
        ours = default_data_collator(feats, return_tensors=tensors)
        ref = transformers.default_data_collator(feats, return_tensors=tensors)
        assert set(ours) == set(ref) == {"input_ids", "labels", "score"}
        for key in ref:
            np.testing.assert_array_equal(np.asarray(ours[key]), np.asarray(ref[key]))
            assert np.asarray(ours[key]).dtype == np.asarray(ref[key]).dtype
    float_ids = [{"label_ids": [0.5, 1.0]}, {"label_ids": [1.0, 0.0]}]
    assert default_data_collator(float_ids)["labels"].dtype == torch.float32


def test_errors(tokenizer):
    with pytest.raises(ValueError, match="mlm_probability must be in"):
        DataCollatorForLanguageModeling(tokenizer, mlm_probability=1.5)
    with pytest.raises(ValueError, match="must not exceed 1"):
        DataCollatorForLanguageModeling(tokenizer, mask_replace_prob=0.8, random_replace_prob=0.3)
    with pytest.raises(ValueError, match="return_tensors='tf' is not supported"):
        DataCollatorWithPadding(tokenizer, return_tensors="tf")([{"input_ids": [1]}])
