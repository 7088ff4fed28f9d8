"""Loading and saving models: weights, prefixes, ties, dtypes, errors, atomic writes."""

from __future__ import annotations

import json
import logging
import pickle

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import headway
from headway.checkpoint import CheckpointError
from headway.models.bert import BertPreTrainedModel
from tests.parity.common import padded_batch

TINY = {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 37, "max_position_embeddings": 64}


@pytest.fixture()
def ref_bert(tmp_path):
    """A tiny transformers BertModel saved to a folder (bare checkpoint, 'bert.'-less keys)."""
    torch.manual_seed(0)
    model = transformers.BertModel(transformers.BertConfig(**TINY)).eval()
    model.save_pretrained(tmp_path / "bare")
    return tmp_path / "bare", model


def same_tensors(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_outputs_allow_attribute_key_and_index(ref_bert):
    folder, _ = ref_bert
    model = headway.AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3)
    batch = padded_batch(99)
    out = model(**batch)
    assert out[0] is out.logits is out["logits"] and "loss" not in out
    out = model(**batch, labels=torch.tensor([0, 1, 2]))
    assert out[0] is out.loss and out[1] is out.logits and list(out.keys()) == ["loss", "logits"]
    with pytest.raises(KeyError):
        out["hidden_states"]


def test_model_returned_in_eval_mode_and_no_grad_needed(ref_bert):
    folder, _ = ref_bert
    model = headway.AutoModel.from_pretrained(folder)
    assert not model.training and all(p.requires_grad for p in model.parameters())


def test_base_checkpoint_into_head_warns_with_head_keys(ref_bert, caplog):
    folder, ref = ref_bert
    with caplog.at_level(logging.WARNING, logger="headway"):
        model, info = headway.AutoModelForSequenceClassification.from_pretrained(
            folder, num_labels=4, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    assert info["unexpected_keys"] == []
    assert "newly initialized" in caplog.text and "classifier.weight" in caplog.text
    assert model.classifier.weight.shape == (4, 32)
    assert model.classifier.weight.std() > 0 and torch.all(model.classifier.bias == 0)
    torch.testing.assert_close(model.bert.embeddings.word_embeddings.weight, ref.embeddings.word_embeddings.weight)


def test_head_checkpoint_into_base_reports_unused(tmp_path, caplog):
    torch.manual_seed(0)
    ref = transformers.BertForTokenClassification(transformers.BertConfig(**TINY, num_labels=5)).eval()
    ref.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger="headway"):
        model, info = headway.AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info["unexpected_keys"] == ["classifier.bias", "classifier.weight"] or \
        sorted(info["unexpected_keys"]) == ["classifier.bias", "classifier.weight"]
    assert "were not used" in caplog.text
    # BertForTokenClassification has no pooler: the bare model's pooler is new.
    assert sorted(info["missing_keys"]) == ["pooler.dense.bias", "pooler.dense.weight"]
    batch = padded_batch(99)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).last_hidden_state, ref.bert(**batch).last_hidden_state,
                                   atol=1e-5, rtol=0)


def test_loading_does_not_initialise_loaded_weights(ref_bert, monkeypatch):
    folder, _ = ref_bert
    initialised = []
    original = BertPreTrainedModel._init_weights

    def spy(self, module):
        if not any(p.is_meta for p in module.parameters(recurse=False)):
            initialised.append(type(module).__name__)
        original(self, module)

    monkeypatch.setattr(BertPreTrainedModel, "_init_weights", spy)
    headway.AutoModel.from_pretrained(folder)
    assert initialised == []
    headway.AutoModelForSequenceClassification.from_pretrained(folder)
    assert initialised == ["Linear"]  # the classifier alone


def test_save_load_round_trip_identical(tmp_path):
    torch.manual_seed(0)
    model = headway.BertForMaskedLM(headway.BertConfig(**TINY))
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = headway.AutoModelForMaskedLM.from_pretrained(tmp_path)
    same_tensors(model, loaded)
    saved = load_file(tmp_path / "model.safetensors")
    assert "cls.predictions.decoder.weight" not in saved  # tied: written once, under the source name
    assert "bert.embeddings.word_embeddings.weight" in saved and "cls.predictions.bias" in saved
    decoder, embeddings = loaded.cls.predictions.decoder, loaded.bert.embeddings.word_embeddings
    assert decoder.weight.data_ptr() == embeddings.weight.data_ptr()
    assert decoder.bias is loaded.cls.predictions.bias
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"] and config["dtype"] == "float32"


def test_reference_loads_our_save(tmp_path):
    torch.manual_seed(0)
    model = headway.BertForMaskedLM(headway.BertConfig(**TINY)).eval()
    model.save_pretrained(tmp_path)
    ref = transformers.BertForMaskedLM.from_pretrained(tmp_path).eval()
    batch = padded_batch(99)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, ref(**batch).logits, atol=1e-5, rtol=0)


def test_untied_embeddings_are_kept_apart(tmp_path):
    torch.manual_seed(0)
    model = headway.BertForMaskedLM(headway.BertConfig(**TINY, tie_word_embeddings=False))
    assert model.cls.predictions.decoder.weight.data_ptr() != model.bert.embeddings.word_embeddings.weight.data_ptr()
    model.save_pretrained(tmp_path)
    loaded = headway.BertForMaskedLM.from_pretrained(tmp_path)
    same_tensors(model, loaded)
    assert loaded.cls.predictions.decoder.weight.data_ptr() != loaded.bert.embeddings.word_embeddings.weight.data_ptr()


def test_sharded_save_and_reference_sharded_load(tmp_path):
    torch.manual_seed(0)
    model = headway.BertModel(headway.BertConfig(**TINY))
    model.save_pretrained(tmp_path / "ours", max_shard_size=20_000)
    index = json.loads((tmp_path / "ours" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    same_tensors(model, headway.BertModel.from_pretrained(tmp_path / "ours"))
    ref = transformers.BertModel(transformers.BertConfig(**TINY))
    ref.save_pretrained(tmp_path / "ref", max_shard_size="20KB")
    assert (tmp_path / "ref" / "model.safetensors.index.json").exists()
    ours = headway.BertModel.from_pretrained(tmp_path / "ref")
    for key, value in ref.state_dict().items():
        if key in ours.state_dict():
            assert torch.equal(ours.state_dict()[key], value), key
    # Saving again unsharded removes the old shards only after writing the new file.
    model.save_pretrained(tmp_path / "ours")
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == ["config.json", "model.safetensors"]


def test_bin_weights_load_with_weights_only(ref_bert, tmp_path):
    folder, ref = ref_bert
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "config.json").write_text((folder / "config.json").read_text())
    torch.save(ref.state_dict(), bin_folder / "pytorch_model.bin")
    same_tensors(headway.BertModel.from_pretrained(bin_folder), headway.BertModel.from_pretrained(folder))


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_code_in_bin_is_refused(ref_bert, tmp_path):
    folder, _ = ref_bert
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    with open(tmp_path / "pytorch_model.bin", "wb") as f:
        pickle.dump({"x": Payload()}, f)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        headway.BertModel.from_pretrained(tmp_path)


def test_safetensors_preferred_over_bin(ref_bert):
    folder, _ = ref_bert
    (folder / "pytorch_model.bin").write_bytes(b"garbage that must not be read")
    headway.BertModel.from_pretrained(folder)
    with pytest.raises(CheckpointError, match="pytorch_model.bin"):
        headway.BertModel.from_pretrained(folder, use_safetensors=False)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "header"])
def test_corrupt_safetensors_named(ref_bert, damage):
    folder, _ = ref_bert
    path = folder / "model.safetensors"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 100)
    else:
        path.write_bytes((10**9).to_bytes(8, "little") + data[8:])
    with pytest.raises(CheckpointError, match="model.safetensors is not a readable safetensors file"):
        headway.BertModel.from_pretrained(folder)


def test_missing_weights_file(tmp_path):
    headway.BertConfig(**TINY).save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="has no weights: none of model.safetensors"):
        headway.BertModel.from_pretrained(tmp_path)


def test_head_size_mismatch(tmp_path):
    torch.manual_seed(0)
    transformers.BertForSequenceClassification(transformers.BertConfig(**TINY, num_labels=2)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"classifier.weight.*\(2, 32\).*\(5, 32\).*ignore_mismatched_sizes=True"):
        headway.AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    model, info = headway.AutoModelForSequenceClassification.from_pretrained(
        tmp_path, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
    assert model.classifier.weight.shape == (5, 32)
    assert len(info["mismatched_keys"]) == 2


def test_unknown_model_type_for_task(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama-9"}))
    with pytest.raises(ValueError, match=r"Unsupported model_type 'llama-9'.*supports: bart, bert"):
        headway.AutoModel.from_pretrained(tmp_path)


def test_unexpected_keyword_is_a_type_error(ref_bert):
    folder, _ = ref_bert
    with pytest.raises(TypeError, match="unexpected keyword argument 'num_lables'"):
        headway.BertModel.from_pretrained(folder, num_lables=3)


def test_token_ids_out_of_range(ref_bert):
    folder, _ = ref_bert
    model = headway.AutoModel.from_pretrained(folder)
    with pytest.raises(ValueError, match=r"token ids \[99, 150\] outside the vocabulary \[0, 99\)"):
        model(input_ids=torch.tensor([[1, 99, 150]]))
    with pytest.raises(ValueError, match="exceeds the model's maximum of 64 positions"):
        model(input_ids=torch.ones(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model()


@pytest.mark.parametrize("kwargs,expected", [
    ({}, torch.float32),
    ({"dtype": torch.bfloat16}, torch.bfloat16),
    ({"dtype": "float16"}, torch.float16),
    ({"torch_dtype": torch.float16}, torch.float16),
    ({"dtype": "auto"}, torch.float32),
])
def test_dtype(ref_bert, kwargs, expected):
    folder, _ = ref_bert
    model = headway.AutoModelForSequenceClassification.from_pretrained(folder, **kwargs)
    assert {p.dtype for p in model.parameters()} == {expected}
    assert model.dtype == expected


def test_dtype_auto_keeps_checkpoint_dtype(tmp_path):
    model = headway.BertModel(headway.BertConfig(**TINY)).to(torch.bfloat16)
    model.save_pretrained(tmp_path)
    assert headway.BertModel.from_pretrained(tmp_path, dtype="auto").dtype == torch.bfloat16
    assert headway.BertModel.from_pretrained(tmp_path).dtype == torch.float32
    with pytest.raises(ValueError, match="Unknown dtype 'float12'"):
        headway.BertModel.from_pretrained(tmp_path, dtype="float12")


def test_device_argument(ref_bert):
    folder, _ = ref_bert
    assert headway.AutoModel.from_pretrained(folder, device="cpu").device.type == "cpu"
    assert headway.AutoModel.from_pretrained(folder, device_map="auto").device.type in ("cpu", "cuda")


def test_int64_position_ids_buffer_is_ignored(minilm_path, caplog):
    assert "embeddings.position_ids" in load_file(minilm_path / "model.safetensors")
    with caplog.at_level(logging.WARNING, logger="headway"):
        headway.AutoModel.from_pretrained(minilm_path)
    assert caplog.text == ""


def test_save_is_atomic(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = headway.BertModel(headway.BertConfig(**TINY))
    model.save_pretrained(tmp_path)
    before = (tmp_path / "model.safetensors").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", crash)
    with torch.no_grad():
        model.pooler.dense.bias.add_(1)
    with pytest.raises(OSError, match="disk full"):
        model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_save_into_a_file_path(tmp_path):
    (tmp_path / "file").write_text("x")
    model = headway.BertModel(headway.BertConfig(**TINY))
    with pytest.raises(ValueError, match="is a file, expected a folder"):
        model.save_pretrained(tmp_path / "file")


def test_resize_token_embeddings(tmp_path):
    torch.manual_seed(0)
    model = headway.BertForMaskedLM(headway.BertConfig(**TINY))
    old = model.bert.embeddings.word_embeddings.weight.detach().clone()
    model.resize_token_embeddings(105)
    assert model.config.vocab_size == 105
    emb = model.bert.embeddings.word_embeddings
    assert emb.weight.shape == (105, 32) and torch.equal(emb.weight[:99], old)
    assert model.cls.predictions.decoder.weight is emb.weight
    assert model.cls.predictions.bias.shape == (105,)
    assert model(input_ids=torch.tensor([[1, 104]])).logits.shape == (1, 2, 105)


def test_state_dict_argument_and_legacy_layernorm_names(ref_bert):
    folder, ref = ref_bert
    legacy = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
              for k, v in ref.state_dict().items()}
    model = headway.BertModel.from_pretrained(folder, state_dict=legacy)
    same_tensors(model, headway.BertModel.from_pretrained(folder))


def test_unsharded_weights_are_read_lazily(ref_bert, monkeypatch):
    """The model reads each tensor once; nothing is materialised twice."""
    folder, _ = ref_bert
    from headway import checkpoint

    reads = []
    original = checkpoint.LazyStateDict.__getitem__
    monkeypatch.setattr(checkpoint.LazyStateDict, "__getitem__", lambda self, k: reads.append(k) or original(self, k))
    headway.BertModel.from_pretrained(folder)
    assert len(reads) == len(set(reads)) == len(load_file(folder / "model.safetensors"))


def test_save_file_not_safetensors_refused(tmp_path):
    model = headway.BertModel(headway.BertConfig(**TINY))
    with pytest.raises(ValueError, match="safetensors only"):
        model.save_pretrained(tmp_path, safe_serialization=False)


def test_save_file_roundtrip_shapes(tmp_path):
    save_file({"a": torch.zeros(2)}, tmp_path / "x.safetensors")  # sanity of the library we build on
    assert load_file(tmp_path / "x.safetensors")["a"].shape == (2,)


def test_gradient_checkpointing_same_gradients(tmp_path):
    torch.manual_seed(0)
    config = headway.BertConfig(**TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = headway.BertForSequenceClassification(config)
    batch = {**padded_batch(99), "labels": torch.tensor([0, 1, 0])}
    model(**batch).loss.backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.gradient_checkpointing_enable()
    assert model.is_gradient_checkpointing
    model(**batch).loss.backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, plain[name], atol=1e-6, rtol=0, msg=name)
