"""Saves replace a checkpoint folder as a whole (headway.atomic): old or new, never a mix, no leftovers.

The kill tests fork the test process: the child saves, and is killed either by the parent at seeded random
moments or by itself at a chosen point of the save. Whatever the moment, the folder must hold exactly the
old checkpoint or the new one (byte for byte, loadable), and the next save must leave no temporaries.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import select
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import safetensors.torch
import torch

import headway
from headway import atomic
from headway.models.bert import BertConfig, BertModel

TOKENIZER_ID = "sentence-transformers/all-MiniLM-L6-v2"  # packaged with the tests: no network
USER_FILES = {"README.md": "# my model\n", "notes/mine.txt": "keep me\n"}

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill tests fork")


def tiny_bert(seed: int, tag: str) -> BertModel:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=99,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=32,
    )
    config.save_tag = tag  # an unknown key, written back to config.json: tells which save a folder holds
    return BertModel(config).eval()


def read_tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path (links followed)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def models() -> dict[str, BertModel]:
    return {"A": tiny_bert(0, "A"), "B": tiny_bert(1, "B")}


@pytest.fixture(scope="module")
def tokenizer():
    return headway.AutoTokenizer.from_pretrained(TOKENIZER_ID)


@pytest.fixture(scope="module")
def expected(models, tokenizer, tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """The exact file set of the checkpoint folder after a save of A or of B over the prepared folder."""
    out = {}
    for tag, model in models.items():
        folder = tmp_path_factory.mktemp(f"ref{tag}")
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        for name, text in USER_FILES.items():
            (folder / name).parent.mkdir(exist_ok=True)
            (folder / name).write_text(text)
        out[tag] = read_tree(folder)
    assert (
        out["A"].keys() == out["B"].keys() and out["A"]["model.safetensors"] != out["B"]["model.safetensors"]
    )
    return out


@pytest.fixture()
def ckpt(models, tokenizer, tmp_path) -> Path:
    """``tmp_path/parent/ckpt``: model A, the tokenizer and the user's files; nothing else in ``parent``."""
    folder = tmp_path / "parent" / "ckpt"
    models["A"].save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    for name, text in USER_FILES.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(text)
    return folder


def check_whole(folder: Path, expected: dict[str, dict[str, bytes]], models: dict[str, BertModel]) -> str:
    """Assert ``folder`` is exactly one of the expected checkpoints and loads as it; return its tag."""
    files = read_tree(folder)
    tag = json.loads(files["config.json"])["save_tag"]
    assert files == expected[tag], f"a mix: files differ from checkpoint {tag}: " + str(
        sorted(k for k in files.keys() | expected[tag].keys() if files.get(k) != expected[tag].get(k))
    )
    loaded = BertModel.from_pretrained(folder)
    for name, tensor in models[tag].state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    return tag


def check_no_strays(folder: Path) -> None:
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]
    strays = [p for p in folder.rglob("*") if ".headway-" in p.name or p.name.endswith(".tmp")]
    assert strays == []


def run_child(body: Callable[[], None], *, ready: int | None = None) -> int:
    """Fork; the child runs ``body`` and exits 0 (3 if it raised). Returns the child's pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns into pytest
        code = 0
        try:
            body()
        except BaseException:  # noqa: BLE001
            code = 3
        os._exit(code)
    return pid


def reap(pid: int) -> int:
    """Wait for the child; the signal that killed it (0 when it exited, -code when it exited non-zero)."""
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


# -- SIGKILL at random moments ---------------------------------------------------------------------
def save_forever(models: dict[str, BertModel], folder: Path, read_end: int, write_end: int) -> None:
    """B, A, B, ... over the parent's A; one byte on the pipe once the first save is done."""
    os.close(read_end)
    for i in range(10**6):
        models["AB"[(i + 1) % 2]].save_pretrained(folder)
        if i == 0:
            os.write(write_end, b"1")


def test_sigkill_at_random_moments_leaves_old_or_new(ckpt, models, expected):
    rng = random.Random(1234)
    start = time.perf_counter()
    models["B"].save_pretrained(ckpt)
    save_time = time.perf_counter() - start  # scales the kill delays; nothing is asserted on timings
    models["A"].save_pretrained(ckpt)
    seen, kills, deadline = set(), 0, time.monotonic() + 12
    while kills < 15 or (kills < 30 and time.monotonic() < deadline):
        read_end, write_end = os.pipe()

        pid = run_child(functools.partial(save_forever, models, ckpt, read_end, write_end))
        os.close(write_end)
        select.select([read_end], [], [], 30)  # the child has finished one save (or hung: killed anyway)
        os.close(read_end)
        time.sleep(rng.uniform(0, 2.5 * save_time))
        os.kill(pid, signal.SIGKILL)
        assert reap(pid) == signal.SIGKILL
        kills += 1
        seen.add(check_whole(ckpt, expected, models))
        # The next save removes what the killed one left, and the folder is whole again.
        tag = "AB"[kills % 2]
        models[tag].save_pretrained(ckpt)
        assert check_whole(ckpt, expected, models) == tag
        check_no_strays(ckpt)
    assert 15 <= kills <= 30 and seen <= {"A", "B"}


# -- SIGKILL at chosen points of the save ----------------------------------------------------------
def _kill_in_weights(monkeypatch):
    def half_then_die(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 1000)
        die()

    monkeypatch.setattr(safetensors.torch, "save_file", half_then_die)


def _kill_before_config(monkeypatch):
    monkeypatch.setattr(headway.PretrainedConfig, "to_json_file", lambda self, path: die())


def _kill_in_carry(monkeypatch):
    real = os.link
    calls = []

    def link_then_die(*args, **kwargs):
        real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            die()

    monkeypatch.setattr(atomic.os, "link", link_then_die)


def _kill_before_swap(monkeypatch):
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: die())


def _kill_after_swap(monkeypatch):
    real = atomic._exchange

    def swap_then_die(a, b):
        real(a, b)
        die()

    monkeypatch.setattr(atomic, "_exchange", swap_then_die)


def _kill_in_fallback_after_swap(monkeypatch):
    """No RENAME_EXCHANGE: killed after the new folder is in place, before the old one is deleted."""
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    real = os.rename

    def rename(src, dst):
        real(src, dst)
        if atomic.is_temporary(Path(src).name) and not atomic.is_temporary(Path(dst).name):
            die()

    monkeypatch.setattr(atomic.os, "rename", rename)


@pytest.mark.parametrize(
    "point, holds",
    [
        (_kill_in_weights, "A"),
        (_kill_before_config, "A"),
        (_kill_in_carry, "A"),
        (_kill_before_swap, "A"),
        (_kill_after_swap, "B"),
        (_kill_in_fallback_after_swap, "B"),
    ],
)
def test_sigkill_at_each_step(ckpt, models, expected, monkeypatch, point, holds):
    def body() -> None:
        point(monkeypatch)
        models["B"].save_pretrained(ckpt)

    assert reap(run_child(body)) == signal.SIGKILL
    assert any(".headway-" in p.name for p in ckpt.parent.iterdir())  # the killed save's leftover
    assert check_whole(ckpt, expected, models) == holds
    models["A"].save_pretrained(ckpt)
    check_whole(ckpt, expected, models)
    check_no_strays(ckpt)


def test_sigkill_between_the_fallback_renames_is_repaired(ckpt, models, expected, monkeypatch):
    """The fallback's window: the old folder renamed aside, the new one not yet in place."""

    def body() -> None:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
        real = os.rename

        def rename(src, dst):
            if ".headway-old-" in Path(src).name + Path(dst).name:
                real(src, dst)
                die()
            real(src, dst)

        monkeypatch.setattr(atomic.os, "rename", rename)
        models["B"].save_pretrained(ckpt)

    assert reap(run_child(body)) == signal.SIGKILL
    assert not ckpt.exists()
    atomic.remove_stale_temporaries(ckpt.parent, restore=ckpt.name)  # what the next save does first
    assert check_whole(ckpt, expected, models) == "A"
    check_no_strays(ckpt)


# -- failures, kept files, refused paths -------------------------------------------------------------
def test_a_save_that_raises_leaves_the_old_folder(ckpt, models, expected, monkeypatch):
    def fail(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 1000)
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(safetensors.torch, "save_file", fail)
        with pytest.raises(OSError, match="No space left"):
            models["B"].save_pretrained(ckpt)
    with monkeypatch.context() as m:  # after the weights, before config.json
        m.setattr(headway.PretrainedConfig, "to_json_file", lambda self, path: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            models["B"].save_pretrained(ckpt)
    assert check_whole(ckpt, expected, models) == "A"
    check_no_strays(ckpt)


def test_files_the_save_does_not_write_survive_as_hard_links(ckpt, models):
    before = {name: (ckpt / name).stat().st_ino for name in (*USER_FILES, "tokenizer.json")}
    models["B"].save_pretrained(ckpt)
    for name, text in USER_FILES.items():
        assert (ckpt / name).read_text() == text
    assert {name: (ckpt / name).stat().st_ino for name in before} == before  # linked, not copied
    check_no_strays(ckpt)


def test_model_and_tokenizer_saved_one_after_the_other_both_survive(models, tokenizer, tmp_path):
    for first, second in ((models["A"], tokenizer), (tokenizer, models["A"])):
        folder = tmp_path / type(first).__name__ / "ckpt"
        first.save_pretrained(folder)
        second.save_pretrained(folder)
        assert torch.equal(
            BertModel.from_pretrained(folder).pooler.dense.weight, models["A"].pooler.dense.weight
        )
        assert (
            headway.AutoTokenizer.from_pretrained(folder)("hello world")["input_ids"]
            == tokenizer("hello world")["input_ids"]
        )
        check_no_strays(folder)


def test_fewer_shards_drop_the_old_ones(models, tmp_path):
    folder = tmp_path / "ckpt"
    models["A"].save_pretrained(folder, max_shard_size=20_000)
    assert len(list(folder.glob("model-*-of-*.safetensors"))) > 1
    models["A"].save_pretrained(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]


def test_removed_chat_template_does_not_come_back(tmp_path):
    tokenizer = headway.AutoTokenizer.from_pretrained(TOKENIZER_ID)  # changed here: not the shared one
    tokenizer.chat_template = {"default": "{{ messages }}", "tool_use": "{{ tools }}"}
    tokenizer.save_pretrained(tmp_path / "tok")
    assert (tmp_path / "tok" / "additional_chat_templates" / "tool_use.jinja").is_file()
    tokenizer.chat_template = None
    tokenizer.save_pretrained(tmp_path / "tok")
    assert headway.AutoTokenizer.from_pretrained(tmp_path / "tok").chat_template is None
    assert not (tmp_path / "tok" / "additional_chat_templates").exists()


def _savers(models, tokenizer):
    return {
        "model": models["A"].save_pretrained,
        "config": models["A"].config.save_pretrained,
        "generation_config": headway.GenerationConfig(max_new_tokens=3).save_pretrained,
        "tokenizer": tokenizer.save_pretrained,
    }


@pytest.mark.parametrize("what", ["model", "config", "generation_config", "tokenizer"])
def test_empty_and_file_paths_are_refused(models, tokenizer, tmp_path, monkeypatch, what):
    monkeypatch.chdir(tmp_path)
    save = _savers(models, tokenizer)[what]
    with pytest.raises(ValueError, match="save_directory '' is empty"):
        save("")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ValueError, match=f"{tmp_path / 'a_file'}' is a file"):
        save(tmp_path / "a_file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


# -- nesting, symlinks, fallbacks --------------------------------------------------------------------
def test_a_sentence_transformer_is_one_swap(models, tmp_path, monkeypatch):
    from headway.sentence.modules import Normalize, Pooling, Transformer

    tokenizer = headway.AutoTokenizer.from_pretrained(TOKENIZER_ID)  # Transformer() changes its max length
    st = headway.SentenceTransformer(
        modules=[Transformer(models["A"], tokenizer), Pooling(16), Normalize()], device="cpu"
    )
    swaps = []
    real = atomic._commit_swap
    monkeypatch.setattr(atomic, "_commit_swap", lambda *a, **k: (swaps.append(a[1]), real(*a, **k)))
    st.save(tmp_path / "st")
    assert swaps == [tmp_path / "st"]
    assert json.loads((tmp_path / "st" / "modules.json").read_text())[1]["path"] == "1_Pooling"
    assert (tmp_path / "st" / "model.safetensors").is_file() and (
        tmp_path / "st" / "tokenizer.json"
    ).is_file()
    check_no_strays(tmp_path / "st")


def test_a_symlinked_folder_is_saved_into_its_target(models, tmp_path):
    real = tmp_path / "real"
    models["A"].save_pretrained(real)
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    models["B"].save_pretrained(tmp_path / "link")
    assert (tmp_path / "link").is_symlink() and (tmp_path / "link").resolve() == real
    assert json.loads((real / "config.json").read_text())["save_tag"] == "B"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_without_rename_exchange(models, expected, ckpt, monkeypatch):
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    models["B"].save_pretrained(ckpt)
    assert check_whole(ckpt, expected, models) == "B"
    check_no_strays(ckpt)


def test_the_working_directory_is_saved_file_by_file(models, tmp_path, monkeypatch, caplog):
    """Swapping the folder that holds the working directory would leave the process in a deleted folder."""
    folder = tmp_path / "cwd"
    models["A"].save_pretrained(folder, max_shard_size=20_000)
    (folder / "README.md").write_text("mine")
    monkeypatch.chdir(folder)
    with caplog.at_level(logging.WARNING, logger="headway.atomic"):
        models["B"].save_pretrained(".")
    assert "file by file" in caplog.text and Path.cwd() == folder
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text())["save_tag"] == "B"


def test_stale_temporaries_of_dead_processes_only_are_removed(tmp_path):
    pid = run_child(lambda: None)
    assert reap(pid) == 0
    start = atomic._start_time(os.getpid())
    machine = atomic.machine_tag()
    other = "%08x" % (int(machine, 16) ^ 1)
    dead = tmp_path / f".x.headway-tmp-{machine}-{pid}-0-0123abcd"
    elsewhere = tmp_path / f".x.headway-tmp-{other}-{pid}-0-0123abcd"  # another machine's: cannot tell
    alive = tmp_path / atomic.temp_name("x")
    user = tmp_path / ".x.headway-tmp-notes"
    for path in (dead, elsewhere, alive, user):
        path.mkdir()
    removed = atomic.remove_stale_temporaries(tmp_path)
    assert removed == [dead] and elsewhere.exists() and alive.exists() and user.exists()
    if start:  # /proc readable: a reused process id is told apart by its start time
        reused = tmp_path / f".x.headway-tmp-{machine}-{os.getpid()}-{start + 1}-0123abcd"
        reused.mkdir()
        assert atomic.remove_stale_temporaries(tmp_path) == [reused]


def test_tokenizer_files_to_save_hook_and_returned_paths(tmp_path):
    """A family's ``_files_to_save`` changes the file set; paths come back under the folder as given."""
    tokenizer = headway.AutoTokenizer.from_pretrained(TOKENIZER_ID)
    tokenizer._files_to_save = lambda files, prefix: {
        **{name: data for name, data in files.items() if name != f"{prefix}tokenizer.json"},
        f"{prefix}vocab.bin": b"\0\1",
    }
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tokenizer.json").write_text("{}")  # an older save's: kept (not this save's business)
    written = tokenizer.save_pretrained(str(tmp_path / "tok"), filename_prefix="p")
    names = ["p-tokenizer_config.json", "p-special_tokens_map.json", "p-vocab.bin"]
    assert written == tuple(str(tmp_path / "tok" / name) for name in names)
    assert (tmp_path / "tok" / "p-vocab.bin").read_bytes() == b"\0\1"
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == sorted([*names, "tokenizer.json"])
