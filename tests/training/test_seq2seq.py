"""Seq2seq fine-tuning: the seed workflow, DataCollatorForSeq2Seq, Seq2SeqTrainer and its arguments.

Every test uses one tiny BART (2 + 2 layers, d_model 32, dropout 0) built with the reference library's
random weights, and a byte-level BPE tokenizer trained here on sentences the module writes. The task is
easy to learn: the target is the first three words of the input.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import accelerate  # noqa: F401  (the reference Trainer needs it)
import datasets
import numpy as np
import pytest
import torch
import transformers

from headway import AutoModelForSeq2SeqLM, AutoTokenizer, Trainer, TrainingArguments
from headway.generation.config import GenerationConfig
from headway.training.collators import DataCollatorForSeq2Seq
from headway.training.seq2seq import Seq2SeqTrainer, Seq2SeqTrainingArguments

_TEXT = (
    "the a cat dog fox bird sat ran jumped flew over under on near mat tree house river red blue green "
    "small big quick lazy brown old young"
)
WORDS = _TEXT.split()
EOS = 2


def _pairs(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 11))]
        pairs.append((" ".join(words), " ".join(words[:3])))
    return pairs


@pytest.fixture(scope="module")
def bart_folder(tmp_path_factory) -> Path:
    """A tiny random reference BART and its byte-level BPE tokenizer, saved together."""
    from tokenizers import Tokenizer as Backend
    from tokenizers import models, pre_tokenizers, trainers

    root = tmp_path_factory.mktemp("seq2seq")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(f"{a}\n{b}" for a, b in _pairs(300, seed=1)), encoding="utf-8")
    backend = Backend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train([str(corpus)], trainer)
    backend.model.save(str(root))
    tokenizer = transformers.BartTokenizer(vocab=str(root / "vocab.json"), merges=str(root / "merges.txt"))
    folder = root / "tiny-bart"
    tokenizer.save_pretrained(folder)
    config = transformers.BartConfig(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, pad_token_id=1, bos_token_id=0,
        eos_token_id=EOS, decoder_start_token_id=EOS, forced_eos_token_id=EOS,
        init_std=0.1, tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BartForConditionalGeneration(config)
    with torch.no_grad():  # untied, wider weights and this bias: greedy rows end after 4 to 12 tokens
        model.final_logits_bias[0, EOS] = 1.0
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tokenizers(bart_folder):
    return AutoTokenizer.from_pretrained(bart_folder), transformers.AutoTokenizer.from_pretrained(bart_folder)


def _features(tokenizer, n: int = 10, seed: int = 2) -> list[dict]:
    pairs = _pairs(n, seed)
    enc = tokenizer([a for a, _ in pairs], text_target=[b for _, b in pairs])
    return [{key: enc[key][i] for key in enc} for i in range(n)]


def _args(klass, out: Path, **kw):
    base = {"report_to": "none", "disable_tqdm": True, "save_strategy": "no", "use_cpu": True, "seed": 0}
    return klass(str(out), **{**base, **kw})


# -- the seed workflow ------------------------------------------------------------------------------------------
def test_seed_workflow(bart_folder, tmp_path):
    """Tokenize, targets under as_target_tokenizer(), Trainer for two epochs, save, reload, generate."""
    model_name = str(bart_folder)
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_name)

    pairs = _pairs(48, seed=3)
    dataset = datasets.Dataset.from_dict(
        {"input_text": [a for a, _ in pairs], "target_text": [b for _, b in pairs]}
    )
    dataset = dataset.train_test_split(test_size=0.25, seed=0)

    def preprocess_function(examples):
        inputs = tokenizer(examples["input_text"], max_length=32, truncation=True, padding="max_length")
        with tokenizer.as_target_tokenizer():
            labels = tokenizer(examples["target_text"], max_length=12, truncation=True, padding="max_length")
        inputs["labels"] = labels["input_ids"]
        return inputs

    tokenized = dataset.map(preprocess_function, batched=True)
    training_args = TrainingArguments(
        output_dir=str(tmp_path / "results"),
        evaluation_strategy="epoch",
        learning_rate=3e-3,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        num_train_epochs=2,
        weight_decay=0.01,
        save_strategy="no",
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model, args=training_args, train_dataset=tokenized["train"], eval_dataset=tokenized["test"]
    )
    before = trainer.evaluate()["eval_loss"]
    trainer.train()

    history = trainer.state.log_history
    eval_losses = [h["eval_loss"] for h in history if "eval_loss" in h]
    train_losses = [h["loss"] for h in history if "loss" in h]
    assert len(eval_losses) == 2  # once per epoch (train() starts a new log)
    assert eval_losses[1] < eval_losses[0] < before * 0.8, (before, eval_losses)
    assert np.mean(train_losses[-3:]) < np.mean(train_losses[:3])
    assert trainer.state.global_step == 18  # 36 examples / 4 x 2 epochs

    model.save_pretrained(tmp_path / "fine-tuned-model")
    tokenizer.save_pretrained(tmp_path / "fine-tuned-model")
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "fine-tuned-model")
    saved, loaded = model.state_dict(), reloaded.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "fine-tuned-model")
    inputs = tokenizer(pairs[0][0], return_tensors="pt")
    outputs = reloaded.generate(**inputs, max_new_tokens=40)
    assert outputs.shape[0] == 1 and 2 <= outputs.shape[1] <= 41
    assert outputs[0, 0].item() == EOS  # BART's decoder starts from eos
    assert torch.equal(outputs, model.eval().generate(**inputs, max_new_tokens=40))
    assert isinstance(tokenizer.decode(outputs[0], skip_special_tokens=True), str)


# -- DataCollatorForSeq2Seq -------------------------------------------------------------------------------------
def _assert_same_batch(ours, ref) -> None:
    assert set(ours.keys()) == set(ref.keys())
    for key in ref:
        if ref[key] is None:
            assert ours[key] is None, key
            continue
        assert ours[key].dtype == ref[key].dtype, key
        torch.testing.assert_close(ours[key], ref[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"pad_to_multiple_of": 8},
        {"padding": "max_length", "max_length": 32},
        {"padding": "max_length", "max_length": 28, "pad_to_multiple_of": 8},
        {"label_pad_token_id": 1, "padding": "longest"},
    ],
    ids=["longest", "multiple-8", "max-length", "max-length-multiple", "pad-id-labels"],
)
@pytest.mark.parametrize("with_model", [False, True], ids=["no-model", "model"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_collator_equals_reference(bart_folder, tokenizers, options, with_model, side):
    ours_tok, ref_tok = tokenizers
    model = transformers.BartForConditionalGeneration.from_pretrained(bart_folder) if with_model else None
    ours_tok.padding_side = ref_tok.padding_side = side
    try:
        ours = DataCollatorForSeq2Seq(ours_tok, model=model, **options)(_features(ours_tok))
        ref = transformers.DataCollatorForSeq2Seq(ref_tok, model=model, **options)(_features(ref_tok))
    finally:
        ours_tok.padding_side = ref_tok.padding_side = "right"
    _assert_same_batch(ours, ref)
    assert ("decoder_input_ids" in ours) == with_model


@pytest.mark.filterwarnings("ignore:Creating a tensor from a list of numpy")  # the reference's own
def test_collator_label_key_arrays_and_missing_labels(bart_folder, tokenizers):
    ours_tok, ref_tok = tokenizers
    model = AutoModelForSeq2SeqLM.from_pretrained(bart_folder)
    ours_feats, ref_feats = _features(ours_tok, 4), _features(ref_tok, 4)
    for feats in (ours_feats, ref_feats):
        for f in feats:
            f["label"] = np.array(f.pop("labels"), dtype=np.int64)
    ours = DataCollatorForSeq2Seq(ours_tok, model=model)(ours_feats)
    ref = transformers.DataCollatorForSeq2Seq(ref_tok, model=model)(ref_feats)
    _assert_same_batch(ours, ref)
    no_labels = [{k: v for k, v in f.items() if k != "labels"} for f in _features(ours_tok, 3)]
    ours = DataCollatorForSeq2Seq(ours_tok, model=model)(no_labels)
    assert ours["labels"] is None and "decoder_input_ids" not in ours
    same = [{"input_ids": [0, 5, 2], "labels": [0, 7, 2]}, {"input_ids": [0, 6, 2], "labels": [0, 8, 2]}]
    ours = DataCollatorForSeq2Seq(ours_tok, model=model, padding=False)(same)
    ref = transformers.DataCollatorForSeq2Seq(ref_tok, model=model, padding=False)(same)
    _assert_same_batch(ours, ref)


def test_collator_errors(tokenizers):
    tok = tokenizers[0]
    ragged = [{"input_ids": [0, 5, 2], "labels": [0, 7, 2]}, {"input_ids": [0, 6, 2], "labels": [0, 2]}]
    with pytest.raises(ValueError, match=r"different lengths \[2, 3\]"):
        DataCollatorForSeq2Seq(tok, padding=False)(ragged)
    long = [{"input_ids": [0, 5, 2], "labels": list(range(9))}]
    with pytest.raises(ValueError, match="more than padding='max_length' allows.*max_length=4"):
        DataCollatorForSeq2Seq(tok, padding="max_length", max_length=4)(long)
    with pytest.raises(ValueError, match="no examples"):
        DataCollatorForSeq2Seq(tok)([])
    with pytest.raises(ValueError, match="return_tensors='np'"):
        DataCollatorForSeq2Seq(tok, return_tensors="np")(long)


# -- Seq2SeqTrainingArguments ---------------------------------------------------------------------------------
def test_arguments(tmp_path, caplog):
    args = _args(
        Seq2SeqTrainingArguments,
        tmp_path,
        evaluation_strategy="epoch",
        predict_with_generate=True,
        generation_max_length=16,
        generation_num_beams=3,
        generation_config=GenerationConfig(num_beams=2),
    )
    assert isinstance(args, TrainingArguments)
    assert args.eval_strategy == "epoch" and args.do_eval
    assert (args.predict_with_generate, args.generation_max_length, args.generation_num_beams) == (
        True,
        16,
        3,
    )
    assert not args.sortish_sampler
    saved = json.loads(args.to_json_string())
    assert saved["generation_config"]["num_beams"] == 2 and saved["generation_max_length"] == 16
    for name, value in (
        ("generation_num_beams", 0),
        ("generation_max_length", -1),
        ("generation_max_length", 2.5),
    ):
        with pytest.raises(ValueError, match=name):
            _args(Seq2SeqTrainingArguments, tmp_path, **{name: value})
    with pytest.raises(TypeError, match="generation_config must be"):
        _args(Seq2SeqTrainingArguments, tmp_path, generation_config={"num_beams": 2})
    with caplog.at_level("WARNING", logger="headway.training.seq2seq"):
        assert _args(Seq2SeqTrainingArguments, tmp_path, sortish_sampler=True).sortish_sampler
    assert "sortish_sampler=True has no effect" in caplog.text


def test_generation_config_argument(bart_folder, tokenizers, tmp_path):
    model = AutoModelForSeq2SeqLM.from_pretrained(bart_folder)
    GenerationConfig(num_beams=3, max_length=9).save_pretrained(tmp_path / "gen")
    for source in (tmp_path / "gen", str(tmp_path / "gen" / "generation_config.json"),
                   GenerationConfig(num_beams=3, max_length=9)):  # fmt: skip
        args = _args(Seq2SeqTrainingArguments, tmp_path / "out", generation_config=source)
        trainer = Seq2SeqTrainer(model, args, processing_class=tokenizers[0])
        assert (model.generation_config.num_beams, model.generation_config.max_length) == (3, 9)
        model.generation_config = GenerationConfig()
    assert trainer.args.generation_config.num_beams == 3  # a given config is copied, not taken
    bad = GenerationConfig()
    bad.temperature = 0.5  # without do_sample: no effect, an error when checked strictly
    with pytest.raises(ValueError, match="(?s)generation_config cannot be used.*temperature"):
        Seq2SeqTrainer(model, _args(Seq2SeqTrainingArguments, tmp_path / "out", generation_config=bad))


# -- Seq2SeqTrainer: evaluation on generated ids ----------------------------------------------------------------
def _metrics_with(tokenizer):
    def compute_metrics(eval_pred):
        predictions, labels = eval_pred
        predictions = np.where(predictions != -100, predictions, tokenizer.pad_token_id)
        labels = np.where(labels != -100, labels, tokenizer.pad_token_id)
        decoded = tokenizer.batch_decode(predictions, skip_special_tokens=True)
        targets = tokenizer.batch_decode(labels, skip_special_tokens=True)
        exact = np.mean([p.strip() == t.strip() for p, t in zip(decoded, targets)])
        overlap = []
        for p, t in zip(decoded, targets):
            p_words, t_words = p.split(), t.split()
            common = sum(min(p_words.count(w), t_words.count(w)) for w in set(t_words))
            overlap.append(2 * common / max(1, len(p_words) + len(t_words)))
        return {"exact_match": float(exact), "overlap": float(np.mean(overlap))}

    return compute_metrics


def test_predict_with_generate_reports_metrics(bart_folder, tokenizers, tmp_path, monkeypatch):
    tokenizer = tokenizers[0]
    model = AutoModelForSeq2SeqLM.from_pretrained(bart_folder)
    data = _features(tokenizer, 12, seed=4)
    args = _args(
        Seq2SeqTrainingArguments,
        tmp_path,
        predict_with_generate=True,
        generation_num_beams=2,
        generation_max_length=12,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        learning_rate=1e-2,
        max_steps=60,
        logging_steps=10,
        eval_strategy="steps",
        eval_steps=30,
    )
    calls = []
    generate = model.generate
    monkeypatch.setattr(model, "generate", lambda *a, **kw: calls.append(kw) or generate(*a, **kw))
    trainer = Seq2SeqTrainer(
        model,
        args,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
        train_dataset=data,
        eval_dataset=data,
        processing_class=tokenizer,
        compute_metrics=_metrics_with(tokenizer),
    )
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate(num_beams=1)
    for metrics in (before, after):
        assert {"eval_loss", "eval_exact_match", "eval_overlap"} <= set(metrics)
    assert after["eval_overlap"] > before["eval_overlap"] and after["eval_loss"] < before["eval_loss"]
    assert after["eval_exact_match"] > 0.5  # the twelve examples are learnt
    evaluations = [h for h in trainer.state.log_history if "eval_overlap" in h]
    assert len(evaluations) == 3  # at steps 30 and 60 (train() starts a new log), after
    assert len(calls) == 4 * 3  # one generate call per evaluation batch
    assert all(kw["num_beams"] == 2 and kw["max_length"] == 12 for kw in calls[:-3])
    assert all(kw["num_beams"] == 1 and kw["max_length"] == 12 for kw in calls[-3:])
    for kw in calls:
        assert "labels" not in kw and "decoder_input_ids" not in kw  # generation starts afresh

    output = trainer.predict(data, max_new_tokens=5)
    assert output.predictions.shape == (12, 20)  # padded to the model's max_length (20)
    assert calls[-1]["max_new_tokens"] == 5 and "max_length" not in calls[-1]
    assert set(output.metrics) >= {"test_loss", "test_exact_match", "test_overlap"}

    trainer.compute_metrics = None  # evaluate() then wants only the loss: no generation
    count = len(calls)
    assert "eval_loss" in trainer.evaluate() and len(calls) == count


def test_without_predict_with_generate_is_the_trainer(bart_folder, tokenizers, tmp_path):
    tokenizer = tokenizers[0]
    data = _features(tokenizer, 6, seed=5)
    outputs = []
    for klass, args_class in ((Seq2SeqTrainer, Seq2SeqTrainingArguments), (Trainer, TrainingArguments)):
        model = AutoModelForSeq2SeqLM.from_pretrained(bart_folder)
        trainer = klass(
            model,
            _args(args_class, tmp_path),
            data_collator=DataCollatorForSeq2Seq(tokenizer, model),
            processing_class=tokenizer,
        )
        outputs.append(trainer.predict(data))
    ours, base = outputs
    assert ours.predictions[0].shape == base.predictions[0].shape and ours.predictions[0].ndim == 3  # logits
    np.testing.assert_array_equal(ours.predictions[0], base.predictions[0])
    assert ours.metrics["test_loss"] == base.metrics["test_loss"]


# -- parity with the reference's Seq2SeqTrainer -------------------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "call"),
    [
        ({}, {}),
        ({"generation_num_beams": 3, "generation_max_length": 10}, {}),
        ({"generation_max_length": 30, "generation_config": {"max_length": 8}}, {}),
        ({"generation_config": {"max_length": 6, "max_new_tokens": 16}}, {}),
        ({"generation_max_length": 30}, {"max_new_tokens": 3, "num_beams": 2}),
    ],
    ids=["model-defaults", "beams-3", "widths-differ", "max-new-tokens", "call-kwargs"],
)
@pytest.mark.filterwarnings("ignore:Using the model-agnostic default")  # the reference's own
def test_predict_equals_reference(bart_folder, tokenizers, tmp_path, settings, call):
    """Generated ids (padded as the reference pads them, -100 between batches), labels, loss and metrics."""
    ours_tok, ref_tok = tokenizers
    # Two full batches: the reference's Seq2SeqTrainer weights a last, partial batch's loss as a full one.
    common = {"predict_with_generate": True, "per_device_eval_batch_size": 5, **settings}
    generation = common.pop("generation_config", None)
    if generation:  # it replaces the checkpoint's generation config: the special tokens too
        generation = {"decoder_start_token_id": EOS, "eos_token_id": EOS, "forced_eos_token_id": EOS,
                      "bos_token_id": 0, "pad_token_id": 1, **generation}  # fmt: skip
    ours_gen = {"generation_config": GenerationConfig(**generation)} if generation else {}
    ref_gen = {"generation_config": transformers.GenerationConfig(**generation)} if generation else {}
    ours_model = AutoModelForSeq2SeqLM.from_pretrained(bart_folder)
    ref_model = transformers.BartForConditionalGeneration.from_pretrained(bart_folder)
    ours = Seq2SeqTrainer(
        ours_model,
        _args(Seq2SeqTrainingArguments, tmp_path / "ours", **common, **ours_gen),
        data_collator=DataCollatorForSeq2Seq(ours_tok, model=ours_model),
        processing_class=ours_tok,
        compute_metrics=_metrics_with(ours_tok),
    ).predict(_features(ours_tok, 10), **call)
    ref = transformers.Seq2SeqTrainer(
        ref_model,
        _args(transformers.Seq2SeqTrainingArguments, tmp_path / "ref", **common, **ref_gen),
        data_collator=transformers.DataCollatorForSeq2Seq(ref_tok, model=ref_model),
        processing_class=ref_tok,
        compute_metrics=_metrics_with(ref_tok),
    ).predict(_features(ref_tok, 10), **call)
    np.testing.assert_array_equal(ours.predictions, ref.predictions)
    np.testing.assert_array_equal(ours.label_ids, ref.label_ids)
    assert ours.metrics["test_loss"] == pytest.approx(ref.metrics["test_loss"], abs=1e-5)
    for name in ("test_exact_match", "test_overlap"):
        assert ours.metrics[name] == ref.metrics[name]
    if not settings:
        assert (ours.predictions == EOS).any()  # rows ended on eos before the length limit


def test_training_equals_reference(bart_folder, tokenizers, tmp_path):
    """A few optimiser steps from the same weights, data and seed: the same losses and weights."""
    ours_tok, ref_tok = tokenizers
    common = {
        "per_device_train_batch_size": 4,
        "max_steps": 4,
        "learning_rate": 2e-3,
        "weight_decay": 0.1,
        "warmup_steps": 1,
        "max_grad_norm": 0.5,
        "logging_steps": 1,
        "predict_with_generate": True,
    }
    ours_model = AutoModelForSeq2SeqLM.from_pretrained(bart_folder)
    ref_model = transformers.BartForConditionalGeneration.from_pretrained(bart_folder)
    ours = Seq2SeqTrainer(
        ours_model,
        _args(Seq2SeqTrainingArguments, tmp_path / "ours", **common),
        train_dataset=_features(ours_tok, 12, seed=6),
        processing_class=ours_tok,
        data_collator=DataCollatorForSeq2Seq(ours_tok, model=ours_model),
    )
    ref = transformers.Seq2SeqTrainer(
        ref_model,
        _args(transformers.Seq2SeqTrainingArguments, tmp_path / "ref", **common),
        train_dataset=_features(ref_tok, 12, seed=6),
        processing_class=ref_tok,
        data_collator=transformers.DataCollatorForSeq2Seq(ref_tok, model=ref_model),
    )
    ours_out, ref_out = ours.train(), ref.train()

    def logged(trainer, key):
        return [h[key] for h in trainer.state.log_history if key in h and "train_loss" not in h]

    assert len(logged(ours, "loss")) == 4
    assert logged(ours, "loss") == pytest.approx(logged(ref, "loss"), abs=1e-5)
    assert logged(ours, "grad_norm") == pytest.approx(logged(ref, "grad_norm"), rel=1e-5)
    assert logged(ours, "learning_rate") == pytest.approx(logged(ref, "learning_rate"))
    assert ours_out.training_loss == pytest.approx(ref_out.training_loss, abs=1e-5)
    ref_state = ref_model.state_dict()
    # A key bias shifts every attention score of a query alike: softmax cancels it, so its gradient is zero
    # but for rounding, which Adam's first steps scale up to ~lr. Those biases only stay close.
    diffs = {k: (v - ref_state[k]).abs().max().item() for k, v in ours_model.state_dict().items()}
    worst = max(d for k, d in diffs.items() if not k.endswith("k_proj.bias"))
    assert worst < 1e-6, worst  # 6e-8 when written
    assert max(diffs.values()) < common["learning_rate"] * 0.1  # the key biases: 1.2e-5
    start = transformers.BartForConditionalGeneration.from_pretrained(bart_folder).state_dict()
    assert max((v - start[k]).abs().max().item() for k, v in ref_state.items()) > 1e-3  # the steps moved them
