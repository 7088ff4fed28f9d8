"""Nothing a checkpoint names escapes its folder; save_pretrained refuses an empty path or a file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import headway
from headway.hub import resolve

QA_TINY = Path(__file__).parent / "fixtures" / "qa_tiny"
TINY = {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4,
        "intermediate_size": 37, "max_position_embeddings": 64}


@pytest.fixture()
def sharded(tmp_path) -> Path:
    """A tiny BERT saved in two shards, plus an index."""
    folder = tmp_path / "model"
    headway.BertModel(headway.BertConfig(**TINY)).save_pretrained(folder, max_shard_size=20_000)
    assert (folder / "model.safetensors.index.json").is_file()
    return folder


def _point_index_at(folder: Path, shard: str) -> str:
    """Make the first weight_map entry name ``shard``; return that entry's key."""
    index_path = folder / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    key = min(index["weight_map"])
    index["weight_map"][key] = shard
    index_path.write_text(json.dumps(index))
    return key


def test_sharded_checkpoint_loads(sharded):
    model = headway.BertModel.from_pretrained(sharded)
    assert model.config.hidden_size == 32


@pytest.mark.parametrize("shard", ["../outside.safetensors", "/etc/passwd", "a/../../outside.safetensors"])
def test_index_naming_a_file_outside_is_refused(sharded, shard):
    save_file({"x": torch.zeros(1)}, sharded.parent / "outside.safetensors")
    key = _point_index_at(sharded, shard)
    with pytest.raises(ValueError) as info:
        headway.BertModel.from_pretrained(sharded)
    message = str(info.value)
    assert "model.safetensors.index.json" in message
    assert repr(key) in message and repr(shard) in message
    assert str(sharded) in message and "not inside the checkpoint folder" in message


def test_index_naming_a_symlink_out_of_the_folder_is_refused(sharded, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    first = min(p for p in sharded.iterdir() if p.name.startswith("model-0"))
    shutil.move(first, elsewhere / first.name)
    os.symlink(elsewhere / first.name, sharded / first.name)
    with pytest.raises(ValueError, match=r"weight_map entry .*not inside the checkpoint folder"):
        headway.BertModel.from_pretrained(sharded)


def test_symlink_inside_the_folder_is_fine(sharded):
    first = min(p for p in sharded.iterdir() if p.name.startswith("model-0"))
    (sharded / "blobs").mkdir()
    shutil.move(first, sharded / "blobs" / first.name)
    os.symlink(Path("blobs") / first.name, sharded / first.name)
    assert headway.BertModel.from_pretrained(sharded).config.hidden_size == 32


def test_hf_cache_snapshot_symlinks_to_blobs_are_fine(sharded, tmp_path):
    """The cache layout links snapshot files to ../../blobs: those stay inside the repository folder."""
    repo = tmp_path / "cache" / "models--org--tiny"
    snapshot = repo / "snapshots" / ("a" * 40)
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    for i, item in enumerate(sorted(sharded.iterdir())):
        shutil.copy(item, repo / "blobs" / f"blob{i}")
        os.symlink(Path("..", "..", "blobs", f"blob{i}"), snapshot / item.name)
    checkpoint = resolve("org/tiny", cache_dir=tmp_path / "cache", local_files_only=True)
    assert headway.BertModel.from_pretrained(checkpoint).config.hidden_size == 32


def test_non_string_shard_name_is_refused(sharded):
    _point_index_at(sharded, 3)
    with pytest.raises(ValueError, match=r"names 3, which is not inside the checkpoint folder"):
        headway.BertModel.from_pretrained(sharded)


# -- sentence-transformers module folders ---------------------------------------------------------
def _sentence_folder(tmp_path: Path, module_path: str) -> Path:
    folder = tmp_path / "st"
    shutil.copytree(QA_TINY, folder)  # a tiny BERT (hidden size 32) with its tokenizer
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": module_path, "type": "sentence_transformers.models.Pooling"},
    ]))
    return folder


def _pooling_config(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True}))


def test_module_folder_symlinked_out_of_the_model_is_refused(tmp_path):
    _pooling_config(tmp_path / "outside_pooling")
    folder = _sentence_folder(tmp_path, "1_Pooling")
    os.symlink(tmp_path / "outside_pooling", folder / "1_Pooling")
    with pytest.raises(ValueError) as info:
        headway.SentenceTransformer(str(folder), device="cpu")
    message = str(info.value)
    assert "modules.json" in message and "'1_Pooling'" in message
    assert str(folder) in message and "not inside the checkpoint folder" in message


def test_module_folder_with_dotdot_is_refused(tmp_path):
    _pooling_config(tmp_path / "outside_pooling")
    folder = _sentence_folder(tmp_path, "../outside_pooling")
    with pytest.raises(ValueError, match=r"'\.\./outside_pooling'.*relative folder inside the model"):
        headway.SentenceTransformer(str(folder), device="cpu")


def test_module_folder_inside_the_model_loads(tmp_path):
    folder = _sentence_folder(tmp_path, "1_Pooling")
    _pooling_config(folder / "1_Pooling")
    model = headway.SentenceTransformer(str(folder), device="cpu")
    assert len(model) == 2


# -- save_pretrained into "" or a file -------------------------------------------------------------
def _savers():
    config = headway.BertConfig(**TINY)
    return {
        "config": config,
        "model": headway.BertModel(config),
        "generation config": headway.GenerationConfig(),
    }


@pytest.mark.parametrize("kind", ["config", "model", "generation config"])
def test_save_pretrained_refuses_empty_path(kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    obj = _savers()[kind]
    with pytest.raises(ValueError, match=r"save_directory '' is empty"):
        obj.save_pretrained("")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["config", "model", "generation config"])
def test_save_pretrained_refuses_a_file(kind, tmp_path):
    target = tmp_path / "a_file"
    target.write_text("x")
    with pytest.raises(ValueError, match=r"save_directory .*a_file.* is a file, expected a folder"):
        _savers()[kind].save_pretrained(target)
    assert target.read_text() == "x"


def test_tokenizer_and_sentence_transformer_refuse_empty_path_and_file(tmp_path, monkeypatch):
    folder = _sentence_folder(tmp_path, "1_Pooling")
    _pooling_config(folder / "1_Pooling")
    model = headway.SentenceTransformer(str(folder), device="cpu")
    monkeypatch.chdir(tmp_path / "st")  # a stray write would land among the model's files
    before = sorted(p.name for p in (tmp_path / "st").iterdir())
    target = tmp_path / "a_file"
    target.write_text("x")
    tokenizer = headway.AutoTokenizer.from_pretrained(QA_TINY)
    for save in (model.save, model.save_pretrained, tokenizer.save_pretrained):
        with pytest.raises(ValueError, match=r"save_directory '' is empty"):
            save("")
        with pytest.raises(ValueError, match=r"is a file, expected a folder"):
            save(str(target))
    assert sorted(p.name for p in (tmp_path / "st").iterdir()) == before
