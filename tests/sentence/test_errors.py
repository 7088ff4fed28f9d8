"""Bad input: each raises the documented error with a message that names the problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import headway
from headway.sentence.modules import Dense, Pooling

from .conftest import link_folder, write_json


def test_empty_list_like_reference(ours, ref):
    for kwargs in ({}, {"convert_to_tensor": True}, {"convert_to_numpy": False}):
        a, b = ours.encode([], **kwargs), ref.encode([], **kwargs)
        assert type(a) is type(b)
        if isinstance(b, np.ndarray):
            assert a.shape == b.shape == (0,) and a.dtype == b.dtype
        elif isinstance(b, torch.Tensor):
            assert a.shape == b.shape == (0,)
        else:
            assert a == b == []


@pytest.mark.parametrize(("inputs", "message"), [
    (None, "got NoneType"),
    (42, "got int"),
    (["fine", None], "element 1 is a NoneType: None"),
    (["fine", "also fine", 3.5], "element 2 is a float: 3.5"),
    ([["nested"]], "element 0 is a list"),
])
def test_non_strings_are_type_errors(ours, inputs, message):
    with pytest.raises(TypeError, match=message):
        ours.encode(inputs)


def test_unknown_precision(ours):
    with pytest.raises(ValueError, match=r"'fp16' is not supported.*'float32', 'int8', 'uint8', 'binary', 'ubinary'"):
        ours.encode(["a"], precision="fp16")


def test_unknown_output_value(ours):
    with pytest.raises(ValueError, match=r"output_value must be one of \['sentence_embedding', 'token_embeddings'"):
        ours.encode(["a"], output_value="pooled")


def test_bad_batch_size_and_prompt_name(ours):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        ours.encode(["a"], batch_size=0)
    with pytest.raises(ValueError, match="Prompt name 'nope' not found"):
        ours.encode(["a"], prompt_name="nope")


def test_int8_of_a_single_embedding(ours):
    with pytest.raises(ValueError, match="single embedding"):
        ours.encode("one text", precision="int8")


def test_bad_similarity_fn_name(ours):
    with pytest.raises(ValueError, match=r"similarity_fn_name must be one of \['cosine', 'dot'"):
        ours.similarity_fn_name = "maxsim"


def test_unknown_module_type_is_refused(minilm_path, tmp_path):
    folder = link_folder(minilm_path, tmp_path / "m", skip=("modules.json",))
    write_json(folder / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "evil_package.RunMe"},
    ])
    with pytest.raises(ValueError, match=r"module type 'evil_package.RunMe'.*never imports.*Pooling"):
        headway.SentenceTransformer(folder, device="cpu")


def test_module_path_outside_the_model_is_refused(minilm_path, tmp_path):
    folder = link_folder(minilm_path, tmp_path / "m", skip=("modules.json",))
    write_json(folder / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "../elsewhere", "type": "sentence_transformers.models.Pooling"},
    ])
    with pytest.raises(ValueError, match="must be a relative folder inside the model"):
        headway.SentenceTransformer(folder, device="cpu")


def test_bad_pooling_and_dense_configs():
    with pytest.raises(ValueError, match=r"Invalid pooling mode 'median'.*'cls', 'max', 'mean'"):
        Pooling.from_config({"embedding_dimension": 8, "pooling_mode": "median"})
    with pytest.raises(ValueError, match="no embedding_dimension"):
        Pooling.from_config({"pooling_mode": "mean"})
    from headway.sentence.modules import activation_from_name

    with pytest.raises(ValueError, match=r"Unknown activation_function 'os.system'.*torch.nn.modules.activation.Tanh"):
        activation_from_name("os.system")
    assert isinstance(Dense(4, 2).activation_function, torch.nn.Tanh)


def test_missing_model_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError):
        headway.SentenceTransformer(tmp_path / "does-not-exist", device="cpu")
    with pytest.raises(ValueError, match="trust_remote_code=True is refused"):
        headway.SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2", trust_remote_code=True)
    with pytest.raises(TypeError, match="unexpected keyword arguments: \\['colour'\\]"):
        headway.SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2", colour="blue")
    with pytest.raises(ValueError, match="needs a model_name_or_path or a list of modules"):
        headway.SentenceTransformer()
    with pytest.raises(ValueError, match="at least one module"):
        headway.SentenceTransformer(modules=[])
    with pytest.raises(ValueError, match="Default prompt name 'search' not found"):
        headway.SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2", default_prompt_name="search")


def test_cross_encoder_bad_pairs(minilm_path):
    model = headway.CrossEncoder(minilm_path, device="cpu")  # a bare encoder: a new 1-label head
    assert model.num_labels == 1
    with pytest.raises(TypeError, match="element 1 is a str: 'lonely'"):
        model.predict([("a", "b"), "lonely"])
    with pytest.raises(TypeError, match="element 0 is a tuple"):
        model.predict([("a", "b", "c")])
    with pytest.raises(TypeError, match="got NoneType"):
        model.predict(None)
    assert model.predict([]).shape == (0,)
    with pytest.raises(TypeError, match="query to be a string"):
        model.rank(None, ["doc"])
