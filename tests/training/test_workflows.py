"""The seed workflows, with headway in place of transformers: the loss goes down in each."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

from headway import (
    AutoModelForSequenceClassification,
    DataCollatorForLanguageModeling,
    DataCollatorForTokenClassification,
    Trainer,
    TrainingArguments,
)

from .conftest import SENTENCES, tiny_bert, wnut_slice


def _args(out, **kw):
    base = {"report_to": "none", "disable_tqdm": True, "save_strategy": "no", "logging_steps": 1, "seed": 0}
    base.update(kw)
    return TrainingArguments(str(out), **base)


def _first_last(trainer):
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return np.mean(losses[:3]), np.mean(losses[-3:])


def test_sequence_classification_minilm(minilm_path, tokenizer, tmp_path):
    raw = datasets.Dataset.from_dict({"sentence": SENTENCES, "label": [1, 1, 0, 0]})
    tokenized = raw.map(lambda batch: tokenizer(batch["sentence"], truncation=True), batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=2)
    trainer = Trainer(model, _args(tmp_path, num_train_epochs=8, per_device_train_batch_size=2, learning_rate=1e-4,
                                   eval_strategy="epoch"),
                      train_dataset=tokenized, eval_dataset=tokenized, processing_class=tokenizer)
    before = trainer.evaluate()["eval_loss"]
    result = trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert after < before * 0.8, (before, after)
    assert result.global_step == 16 and result.training_loss > 0
    first, last = _first_last(trainer)
    assert last < first

    trainer.save_model(tmp_path / "saved")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")
    again = Trainer(reloaded, _args(tmp_path / "again"), processing_class=tokenizer)
    output = again.predict(tokenized)
    assert isinstance(output.predictions, np.ndarray) and output.predictions.shape == (4, 2)
    np.testing.assert_array_equal(output.label_ids, [1, 1, 0, 0])
    assert output.metrics["test_loss"] == pytest.approx(after, abs=1e-5)
    assert (output.predictions.argmax(-1) == output.label_ids).all()
    with torch.no_grad():
        batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
        direct = reloaded.eval()(**batch).logits.numpy()
    np.testing.assert_allclose(output.predictions, direct, atol=1e-5)


def test_token_classification_wnut16(tokenizer, tmp_path):
    sentences = wnut_slice(64)
    labels = sorted({t for _, tags in sentences for t in tags})
    label2id = {t: i for i, t in enumerate(labels)}

    def align(batch):
        enc = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True)
        enc["labels"] = []
        for i, tags in enumerate(batch["tags"]):
            previous, row = None, []
            for word in enc.word_ids(i):
                row.append(-100 if word is None or word == previous else label2id[tags[word]])
                previous = word
            enc["labels"].append(row)
        return enc

    raw = datasets.Dataset.from_dict({"tokens": [t for t, _ in sentences], "tags": [g for _, g in sentences]})
    data = raw.map(align, batched=True, remove_columns=["tokens", "tags"])
    first = data[0]
    words = tokenizer(sentences[0][0], is_split_into_words=True).word_ids()
    assert [lab for lab, w in zip(first["labels"], words) if w is None] == [-100, -100]
    model = tiny_bert("BertForTokenClassification", num_labels=len(labels))
    trainer = Trainer(model, _args(tmp_path, max_steps=30, per_device_train_batch_size=16, learning_rate=5e-3),
                      train_dataset=data, eval_dataset=data, processing_class=tokenizer,
                      data_collator=DataCollatorForTokenClassification(tokenizer))
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    assert trainer.evaluate()["eval_loss"] < before * 0.5
    preds = trainer.predict(data)
    assert preds.predictions.shape[:2] == preds.label_ids.shape and preds.predictions.shape[2] == len(labels)


QA = [
    ("Where does the course live?", "The course lives on the Hugging Face Hub, which hosts models.", "the Hugging Face Hub"),
    ("Who wrote the library?", "The library was written by a small team of engineers in Paris.", "a small team of engineers"),
    ("What is fast?", "Headway is fast because it avoids host synchronisation.", "Headway"),
    ("When did it start?", "The project started in the spring of 2026 with a tokenizer.", "the spring of 2026"),
]


def test_question_answering_char_to_token(tokenizer, tmp_path):
    def preprocess(batch):
        enc = tokenizer(batch["question"], batch["context"], truncation="only_second", max_length=64)
        starts, ends = [], []
        for i, (context, answer) in enumerate(zip(batch["context"], batch["answer"])):
            start_char = context.index(answer)
            end_char = start_char + len(answer)
            starts.append(enc.char_to_token(i, start_char, sequence_index=1))
            ends.append(enc.char_to_token(i, end_char - 1, sequence_index=1))
        enc["start_positions"], enc["end_positions"] = starts, ends
        return enc

    raw = datasets.Dataset.from_dict({k: [row[j] for row in QA] for j, k in enumerate(["question", "context",
                                                                                       "answer"])})
    data = raw.map(preprocess, batched=True, remove_columns=raw.column_names)
    for row, (_, _, answer) in zip(data, QA):
        span = row["input_ids"][row["start_positions"] : row["end_positions"] + 1]
        assert tokenizer.decode(span) == answer.lower()
    model = tiny_bert("BertForQuestionAnswering", num_labels=2)
    trainer = Trainer(model, _args(tmp_path, max_steps=40, per_device_train_batch_size=4, learning_rate=5e-3),
                      train_dataset=data, eval_dataset=data, processing_class=tokenizer)
    assert trainer.label_names == ["start_positions", "end_positions"]
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    assert trainer.evaluate()["eval_loss"] < before * 0.5
    start_logits, end_logits = trainer.predict(data).predictions
    np.testing.assert_array_equal(start_logits.argmax(-1), data["start_positions"])
    np.testing.assert_array_equal(end_logits.argmax(-1), data["end_positions"])


def test_masked_lm_with_collator(tokenizer, tmp_path):
    text = ["the cat sat on the mat", "the dog sat on the log", "a bird sang in the tree"] * 8
    data = datasets.Dataset.from_dict({"text": text}).map(
        lambda b: tokenizer(b["text"], return_special_tokens_mask=True), batched=True, remove_columns=["text"])
    model = tiny_bert("BertForMaskedLM")
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.3)
    trainer = Trainer(model, _args(tmp_path, max_steps=40, per_device_train_batch_size=8, learning_rate=1e-2,
                                   remove_unused_columns=False),
                      train_dataset=data, processing_class=tokenizer, data_collator=collator)
    trainer.train()
    first, last = _first_last(trainer)
    assert last < first * 0.7, (first, last)
