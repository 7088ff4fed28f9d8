"""encode's options and the module files are checked (issue #11, item 3): no silent wrong dimension, no
skipped normalisation; each error names the argument or the file and what was expected."""

from __future__ import annotations

import pytest
import torch

import headway
from headway.sentence.modules import Dense, Normalize, Pooling

from .conftest import link_folder, write_json

MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
]
POOLING = {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}


@pytest.mark.parametrize("dim", [-1, 0, 385])
def test_truncate_dim_out_of_range(ours, dim):
    """-1 gave 383 dimensions before (embeddings[..., :-1])."""
    with pytest.raises(
        ValueError, match=f"truncate_dim must be between 1 and the embedding dimension 384, got {dim}"
    ):
        ours.encode(["a"], truncate_dim=dim)


@pytest.mark.parametrize("dim", [1.5, True, "64"])
def test_truncate_dim_of_the_wrong_type(ours, dim):
    with pytest.raises(TypeError, match="truncate_dim must be a positive int"):
        ours.encode(["a"], truncate_dim=dim)


def test_truncate_dim_of_the_model_is_checked(minilm_path, tmp_path):
    with pytest.raises(
        ValueError, match="truncate_dim must be between 1 and the embedding dimension 384, got 999"
    ):
        headway.SentenceTransformer(minilm_path, device="cpu", truncate_dim=999)
    folder = link_folder(minilm_path, tmp_path / "m", skip=("config_sentence_transformers.json",))
    write_json(folder / "config_sentence_transformers.json", {"truncate_dim": -1})
    with pytest.raises(
        ValueError, match=r"config_sentence_transformers.json of .*: truncate_dim must be between 1"
    ):
        headway.SentenceTransformer(folder, device="cpu")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("batch_size", "32", "batch_size must be a positive int, got str '32'"),
        ("batch_size", 2.0, "batch_size must be a positive int, got float"),
        ("precision", ["float32"], "precision must be a str, got list"),
        ("prompt_name", 5, "prompt_name must be a str or None, got int"),
        ("normalize_embeddings", "yes", "normalize_embeddings must be a bool, got str"),
        ("output_value", 1, "output_value must be a str or None, got int"),
        ("device", 0.5, "device must be a str, a torch.device or None, got float"),
    ],
)
def test_options_of_the_wrong_type(ours, option, value, message):
    with pytest.raises(TypeError, match=message):
        ours.encode(["a"], **{option: value})


def test_pooling_dimension_must_match_the_transformer(minilm_path, tmp_path):
    """A word_embedding_dimension of 999 used to be reported as the model's dimension."""
    folder = link_folder(minilm_path, tmp_path / "m")
    write_json(folder / "1_Pooling" / "config.json", {**POOLING, "word_embedding_dimension": 999})
    with pytest.raises(ValueError, match=r"module '1' \(Pooling\).*word_embedding_dimension 999.*size 384"):
        headway.SentenceTransformer(folder, device="cpu")


def test_pooling_checks_its_input_size():
    with pytest.raises(ValueError, match="Pooling expects token embeddings of size 8 .* got 4"):
        Pooling(8)({"token_embeddings": torch.ones(1, 3, 4), "attention_mask": torch.ones(1, 3)})
    with pytest.raises(ValueError, match="Pooling embedding_dimension must be a positive int, got 0"):
        Pooling(0)


@pytest.mark.parametrize("module", ["Normalize", "Dense"])
def test_misspelled_module_input_name_is_refused(minilm_path, tmp_path, module):
    """A Normalize reading 'sentence_embeddings' skipped the normalisation silently before."""
    folder = link_folder(minilm_path, tmp_path / "m", skip=("modules.json",))
    write_json(
        folder / "modules.json",
        [
            *MODULES,
            {"idx": 2, "name": "2", "path": f"2_{module}", "type": f"sentence_transformers.models.{module}"},
        ],
    )
    if module == "Normalize":
        write_json(folder / "2_Normalize" / "config.json", {"module_input_name": "sentence_embeddings"})
    else:
        Dense(384, 4, module_input_name="sentence_embeddings").save(folder / "2_Dense")
    with pytest.raises(
        ValueError, match=rf"module '2' \({module}\).*module_input_name 'sentence_embeddings'.*misspelled"
    ):
        headway.SentenceTransformer(folder, device="cpu")


def test_normalize_refuses_a_missing_feature():
    with pytest.raises(
        ValueError, match=r"Normalize reads the feature 'sentence_embeddings' \(its module_input_name\)"
    ):
        Normalize("sentence_embeddings")({"sentence_embedding": torch.ones(1, 4)})


def test_dense_sizes_must_match(minilm_path, tmp_path):
    folder = link_folder(minilm_path, tmp_path / "m", skip=("modules.json",))
    write_json(
        folder / "modules.json",
        [*MODULES, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}],
    )
    Dense(100, 4).save(folder / "2_Dense")
    with pytest.raises(ValueError, match=r"module '2' \(Dense\).*in_features is 100.*has size 384"):
        headway.SentenceTransformer(folder, device="cpu")
    config = folder / "2_Dense" / "config.json"
    write_json(config, {"in_features": 384, "out_features": 10**9})  # the weights say (4, 100)
    with pytest.raises(
        ValueError, match=r"Dense module .*: the weights hold .*\(4, 100\).* config.json describes"
    ):
        headway.SentenceTransformer(folder, device="cpu")
    write_json(config, {"in_features": -3, "out_features": 4})
    with pytest.raises(ValueError, match="config.json in_features must be a positive int, got -3"):
        headway.SentenceTransformer(folder, device="cpu")


def _with_modules(minilm_path, tmp_path, entries):
    folder = link_folder(minilm_path, tmp_path / "m", skip=("modules.json",))
    write_json(folder / "modules.json", entries)
    return folder


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (MODULES[1:], r"must list a Transformer first .* got Pooling"),  # StopIteration before
        (
            [MODULES[0], {**MODULES[1], "name": "../../etc/passwd"}],
            r"entry 1: 'name' must be .* without '\.'",
        ),
        ([MODULES[0], {**MODULES[1], "name": "0"}], r"names modules \['0'\] more than once"),
        ([MODULES[0], {**MODULES[1], "path": "nowhere"}], r"the Pooling module in folder 'nowhere'"),
    ],
)
def test_bad_module_lists(minilm_path, tmp_path, entries, message):
    """Each of these was an internal StopIteration / KeyError, a silently dropped module, or a bare missing file."""
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        headway.SentenceTransformer(_with_modules(minilm_path, tmp_path, entries), device="cpu")


@pytest.mark.parametrize("length", [0, -1, 2**64])
def test_max_seq_length_is_checked_on_load(minilm_path, tmp_path, length):
    folder = link_folder(minilm_path, tmp_path / "m", skip=("sentence_bert_config.json",))
    write_json(folder / "sentence_bert_config.json", {"max_seq_length": length})
    with pytest.raises(
        ValueError, match="sentence_bert_config.json of .*: max_seq_length must be a positive int"
    ):
        headway.SentenceTransformer(folder, device="cpu")


def test_default_prompt_name_must_be_a_prompt(minilm_path, tmp_path):
    folder = link_folder(minilm_path, tmp_path / "m", skip=("config_sentence_transformers.json",))
    write_json(
        folder / "config_sentence_transformers.json",
        {"prompts": {"query": "q: "}, "default_prompt_name": "qry"},
    )
    with pytest.raises(
        ValueError, match=r"config_sentence_transformers.json of .*: default_prompt_name 'qry' is not"
    ):
        headway.SentenceTransformer(folder, device="cpu")
