"""Finding checkpoints: local folders, the Hugging Face cache, packaged ids, and the offline error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import headway
from headway.hub import resolve

COMMIT = "a" * 40
OTHER_COMMIT = "b" * 40


def make_cache(root: Path, repo_id: str, source: Path, *, commit: str = COMMIT, ref: str = "main") -> Path:
    """Lay out ``source``'s files as huggingface_hub does: blobs are skipped, snapshots hold the files."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in source.iterdir():
        if f.is_file():
            shutil.copy(f, snapshot / f.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    return snapshot


@pytest.fixture()
def tiny_bert(tmp_path):
    config = headway.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=20, max_position_embeddings=32)
    torch.manual_seed(0)
    model = headway.BertModel(config)
    folder = tmp_path / "tiny"
    model.save_pretrained(folder)
    return folder, model


def test_local_folder(tiny_bert):
    folder, _ = tiny_bert
    ckpt = resolve(folder)
    assert ckpt.get("config.json") == folder / "config.json"
    assert ckpt.get("nope.json") is None


def test_hub_cache_via_hf_hub_cache(tiny_bert, tmp_path, monkeypatch):
    folder, model = tiny_bert
    cache = tmp_path / "cache"
    make_cache(cache, "org/tiny-bert", folder)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    loaded = headway.AutoModel.from_pretrained("org/tiny-bert")
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert loaded.config.name_or_path == "org/tiny-bert"


def test_hub_cache_via_hf_home_and_revisions(tiny_bert, tmp_path, monkeypatch):
    folder, _ = tiny_bert
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    make_cache(tmp_path / "home" / "hub", "org/tiny-bert", folder)
    other = make_cache(tmp_path / "home" / "hub", "org/tiny-bert", folder, commit=OTHER_COMMIT, ref="v2")
    (other / "config.json").write_text((other / "config.json").read_text().replace('"hidden_act": "gelu"',
                                                                                  '"hidden_act": "relu"'))
    assert headway.AutoConfig.from_pretrained("org/tiny-bert").hidden_act == "gelu"
    assert headway.AutoConfig.from_pretrained("org/tiny-bert", revision="v2").hidden_act == "relu"
    assert headway.AutoConfig.from_pretrained("org/tiny-bert", revision=OTHER_COMMIT).hidden_act == "relu"
    with pytest.raises(FileNotFoundError, match="revision 'v3' not there"):
        headway.AutoConfig.from_pretrained("org/tiny-bert", revision="v3")


def test_cache_dir_argument(tiny_bert, tmp_path):
    folder, _ = tiny_bert
    make_cache(tmp_path / "elsewhere", "org/tiny-bert", folder)
    config = headway.AutoConfig.from_pretrained("org/tiny-bert", cache_dir=tmp_path / "elsewhere")
    assert config.hidden_size == 16


def test_offline_missing_id_names_every_place_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError) as err:
        headway.AutoModel.from_pretrained("someone/not-here")
    message = str(err.value)
    assert "'someone/not-here'" in message
    assert "local folder" in message and "empty-cache" in message
    assert "HF_HUB_OFFLINE" in message and "local folder that holds config.json" in message


def test_local_files_only_is_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="local_files_only=True"):
        resolve("someone/not-here", local_files_only=True)


def test_packaged_checkpoint_offline(minilm_path, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # nothing cached: the package must serve it
    ckpt = resolve("sentence-transformers/all-MiniLM-L6-v2")
    assert ckpt.get("model.safetensors") == minilm_path / "model.safetensors"
    config = headway.AutoConfig.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("bert", 384, 6)


def test_bad_arguments():
    with pytest.raises(TypeError, match="checkpoint id or folder path"):
        resolve(42)
    with pytest.raises(FileNotFoundError, match="not a valid Hub id"):
        resolve("./definitely/not/here")


@pytest.mark.parametrize("loader", ["AutoConfig", "AutoModel", "AutoTokenizer", "BertModel"])
def test_trust_remote_code_refused(loader, tiny_bert):
    folder, _ = tiny_bert
    with pytest.raises(ValueError, match="trust_remote_code=True is refused"):
        getattr(headway, loader).from_pretrained(folder, trust_remote_code=True)


def test_online_downloads_only_the_files_needed(tiny_bert, tmp_path, monkeypatch):
    """Online, a Hub id not in the cache is fetched file by file through huggingface_hub."""
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    folder, model = tiny_bert
    fetched = []

    def fake_download(repo_id, filename, *, subfolder=None, revision=None, cache_dir=None, token=None,
                      force_download=False):
        assert (repo_id, revision) == ("org/online-bert", "main")
        fetched.append(filename)
        if not (folder / filename).exists():
            raise EntryNotFoundError(f"{filename} not in repo")
        return str(folder / filename)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    loaded = headway.AutoModel.from_pretrained("org/online-bert")
    assert fetched == ["config.json", "model.safetensors"]
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_packaged_checkpoint_never_goes_online(minilm_path, tmp_path, monkeypatch):
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise AssertionError("a packaged checkpoint must not ask the Hub")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    ckpt = resolve("sentence-transformers/all-MiniLM-L6-v2")
    assert ckpt.get("added_tokens.json") is None and ckpt.get("config.json") is not None


def test_unreachable_hub_falls_back_to_the_cache_once(tiny_bert, tmp_path, monkeypatch, caplog):
    import huggingface_hub

    folder, _ = tiny_bert
    make_cache(tmp_path / "cache", "org/tiny-bert", folder)
    calls = []

    def unreachable(*args, **kwargs):
        calls.append(args)
        raise ConnectionError("no route to host")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    ckpt = resolve("org/tiny-bert")
    assert ckpt.get("tokenizer.json") is None and ckpt.get("vocab.txt") is None
    assert len(calls) == 1 and "Could not reach the Hugging Face Hub" in caplog.text
    assert ckpt.get("config.json") is not None


def test_no_exist_markers_are_honoured(tiny_bert, tmp_path, monkeypatch):
    import huggingface_hub

    folder, _ = tiny_bert
    make_cache(tmp_path / "cache", "org/tiny-bert", folder)
    marker = tmp_path / "cache" / "models--org--tiny-bert" / ".no_exist" / COMMIT
    marker.mkdir(parents=True)
    (marker / "tokenizer.json").touch()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("asked the Hub"))
    assert resolve("org/tiny-bert").get("tokenizer.json") is None
