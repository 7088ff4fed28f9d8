"""The Pipeline base and the pipeline() factory: input kinds, order, laziness, batching, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

import headway
from headway.pipelines import KeyDataset, KeyPairDataset, get_supported_tasks
from headway.pipelines.base import Pipeline
from tests.pipelines.common import assert_same

# Lengths from 1 to about 40 words, shuffled, so that grouping by length reorders them.
TEXTS = [" ".join(["word"] * n) + f" {i}" for i, n in enumerate([31, 2, 17, 40, 1, 9, 25, 3, 12, 36, 6, 20, 1, 28])]


@pytest.fixture(scope="module")
def classify(tiny):
    return headway.pipeline("text-classification", model=str(tiny["seqcls"]), device="cpu")


# -- order, grouping, laziness ------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [1, 3, 8, 64])
def test_results_in_input_order_whatever_the_grouping(classify, batch_size):
    alone = [classify(text)[0] for text in TEXTS]
    assert_same(classify(TEXTS, batch_size=batch_size), alone, atol=1e-5)


def test_batches_are_grouped_by_length(classify, monkeypatch):
    lengths: list[list[int]] = []
    collate = classify._collate
    monkeypatch.setattr(classify, "_collate", lambda feats: lengths.append([len(f) for f in feats]) or collate(feats))
    classify(TEXTS, batch_size=4)
    flat = [n for batch in lengths for n in batch]
    assert flat == sorted(flat), "rows of a window are batched shortest first"
    padding = sum(max(batch) - n for batch in lengths for n in batch)
    unsorted = [len(classify.tokenizer(t)["input_ids"]) for t in TEXTS]
    naive = sum(max(unsorted[i : i + 4]) - n for i in range(0, len(unsorted), 4) for n in unsorted[i : i + 4])
    assert padding < naive / 3


def test_generator_is_consumed_incrementally(classify):
    pulled: list[int] = []

    def texts():
        for i, text in enumerate(TEXTS):
            pulled.append(i)
            yield text

    results = classify(texts(), batch_size=2)
    assert pulled == [], "nothing is read before the first result is asked for"
    first = next(results)
    assert len(pulled) <= 2, f"the first result needed {len(pulled)} inputs"
    second = next(results)
    assert len(pulled) <= 2
    next(results)
    assert len(pulled) <= 4
    rest = list(results)
    assert len(pulled) == len(TEXTS)
    assert_same([first, second, *rest], [classify(t)[0] for t in TEXTS[:2]] + classify(TEXTS[3:]), atol=1e-5)


def test_datasets_inputs_stream_in_order(classify):
    import datasets
    data = datasets.Dataset.from_dict({"text": TEXTS, "other": TEXTS[::-1]})
    expected = classify(TEXTS)
    for inputs in (KeyDataset(data, "text"), data["text"]):
        results = classify(inputs, batch_size=4)
        assert not isinstance(results, list), "datasets give an iterator, as the reference"
        assert_same(list(results), expected, atol=1e-5)
    pairs = list(classify(KeyPairDataset(data, "text", "other"), batch_size=3))
    assert_same(pairs, classify([{"text": a, "text_pair": b} for a, b in zip(TEXTS, TEXTS[::-1])]), atol=1e-5)


def test_key_dataset_import_paths():
    from headway.pipelines.pt_utils import KeyDataset as FromPtUtils

    assert FromPtUtils is KeyDataset


def test_tuple_input_is_a_list(classify):
    assert_same(classify(tuple(TEXTS[:3])), classify(TEXTS[:3]))


def test_forward_runs_without_gradients(classify, monkeypatch):
    seen = []
    forward = classify.model.forward
    monkeypatch.setattr(
        classify.model, "forward", lambda *a, **k: seen.append(torch.is_inference_mode_enabled()) or forward(*a, **k)
    )
    classify(TEXTS[:3], batch_size=2)
    assert seen == [True, True]


def test_progress_bar(classify, capsys):
    many = [f"text number {i}" for i in range(300)]
    classify(many, batch_size=64)
    assert "300/300" in capsys.readouterr().err, "a bar above 256 inputs"
    classify(many, batch_size=64, progress_bar=False)
    assert "300/300" not in capsys.readouterr().err
    classify(TEXTS[:2], progress_bar=True)
    assert "2/2" in capsys.readouterr().err
    classify(TEXTS[:2])
    assert capsys.readouterr().err == ""


# -- bad inputs ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("", ValueError, r"text-classification input is an empty string \(''\); expected some text"),
        ("   ", ValueError, "input is an empty string"),
        ([], ValueError, "text-classification got an empty list; expected at least one input"),
        (None, TypeError, "text-classification input must be a str, got NoneType None"),
        (3, TypeError, "text-classification input must be a str, got int 3"),
        (b"bytes", TypeError, "must be a str, got bytes"),
        (["fine", None], TypeError, r"text-classification input \[1\] must be a str, got NoneType"),
        (["fine", ""], ValueError, r"input \[1\] is an empty string"),
    ],
)
def test_bad_inputs(classify, value, error, message):
    with pytest.raises(error, match=message):
        classify(value)


def test_bad_input_in_a_generator_raises_when_reached(classify):
    results = classify(iter(["fine", "also fine", 7]), batch_size=1)
    assert next(results)["label"]
    with pytest.raises(TypeError, match=r"input \[2\] must be a str, got int 7"):
        list(results)


@pytest.mark.parametrize(
    ("task", "folder", "value", "error", "message"),
    [
        ("feature-extraction", "bare", "", ValueError, "feature-extraction input is an empty string"),
        ("feature-extraction", "bare", [], ValueError, "got an empty list"),
        ("ner", "tokcls", None, TypeError, "token-classification input must be a str, got NoneType"),
        ("ner", "tokcls", [""], ValueError, r"token-classification input \[0\] is an empty string"),
        ("fill-mask", "mlm", "No mask here.", ValueError,
         r"fill-mask input has no mask token '\[MASK\]': 'No mask here.'. Write \[MASK\] where"),
        ("fill-mask", "mlm", ["A [MASK].", "none"], ValueError, r"fill-mask input \[1\] has no mask token"),
        ("fill-mask", "mlm", {"text": "x"}, TypeError, "fill-mask input must be a str, got dict"),
    ],
)
def test_bad_inputs_per_task(tiny, task, folder, value, error, message):
    pipe = headway.pipeline(task, model=str(tiny[folder]), device="cpu")
    with pytest.raises(error, match=message):
        pipe(value)


def test_zero_shot_bad_inputs(tiny):
    pipe = headway.pipeline("zero-shot-classification", model=str(tiny["nli"]), device="cpu")
    with pytest.raises(ValueError, match="zero-shot-classification input is an empty string"):
        pipe("", candidate_labels=["a"])
    with pytest.raises(TypeError, match="must be a str, got int"):
        pipe(5, candidate_labels=["a"])


def test_bad_call_options(classify):
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        classify(TEXTS, batch_size=0)
    with pytest.raises(TypeError, match="takes the inputs as one argument"):
        classify("a", "b")


# -- the factory ----------------------------------------------------------------------------------------------
def test_unknown_task_lists_the_tasks():
    with pytest.raises(ValueError, match="Unknown task 'image-classification'. Supported tasks: feature-extraction, fill-mask"):
        headway.pipeline("image-classification")
    assert "question-answering" in get_supported_tasks() and "sentiment-analysis" in get_supported_tasks()
    with pytest.raises(TypeError, match="task must be a str"):
        headway.pipeline(task=3, model="x")


@pytest.mark.parametrize(
    ("folder", "task", "cls"),
    [
        ("seqcls", "text-classification", "TextClassificationPipeline"),
        ("tokcls", "token-classification", "TokenClassificationPipeline"),
        ("mlm", "fill-mask", "FillMaskPipeline"),
        ("bare", "feature-extraction", "FeatureExtractionPipeline"),
        ("nli", "zero-shot-classification", "ZeroShotClassificationPipeline"),
    ],
)
def test_task_inferred_from_the_checkpoint(tiny, folder, task, cls):
    pipe = headway.pipeline(model=tiny[folder], device="cpu")  # a Path works too
    assert pipe.task == task and type(pipe).__name__ == cls


def test_task_inferred_for_question_answering():
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "qa_tiny"
    assert headway.pipeline(model=str(folder)).task == "question-answering"


def test_loaded_model_and_tokenizer(tiny, classify):
    model = headway.AutoModelForSequenceClassification.from_pretrained(str(tiny["seqcls"]))
    tokenizer = headway.AutoTokenizer.from_pretrained(str(tiny["seqcls"]))
    pipe = headway.pipeline("text-classification", model=model, tokenizer=tokenizer)
    assert pipe.model is model and pipe.tokenizer is tokenizer
    assert_same(pipe(TEXTS), classify(TEXTS))
    assert headway.pipeline(model=model).task == "text-classification", "task from the model's class"
    assert isinstance(headway.pipeline("sentiment-analysis", model=model), headway.Pipeline)


def test_model_without_the_task_head(tiny):
    model = headway.AutoModel.from_pretrained(str(tiny["bare"]))
    with pytest.raises(ValueError, match=r"needs a model with a \*ForSequenceClassification head, got BertModel"):
        headway.pipeline("text-classification", model=model)


def test_missing_default_checkpoint_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        headway.pipeline("text-classification")
    message = str(info.value)
    assert "distilbert/distilbert-base-uncased-finetuned-sst-2-english" in message
    assert "pipeline('text-classification', model='path/to/folder')" in message
    assert "HF_HUB_OFFLINE is set" in message  # the same explanation as from_pretrained's


def test_factory_argument_errors(tiny):
    with pytest.raises(ValueError, match="needs a task or a model"):
        headway.pipeline()
    with pytest.raises(ValueError, match="A tokenizer was given without a model"):
        headway.pipeline("text-classification", tokenizer=str(tiny["seqcls"]))
    with pytest.raises(ValueError, match="trust_remote_code=True is refused"):
        headway.pipeline("text-classification", model=str(tiny["seqcls"]), trust_remote_code=True)
    with pytest.raises(TypeError, match="device must be an int, a str or a torch.device"):
        headway.pipeline("text-classification", model=str(tiny["seqcls"]), device=1.5)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['colour'\\]"):
        headway.pipeline("text-classification", model=str(tiny["seqcls"]), colour="red")


def test_dtype_and_batch_size_defaults(tiny, classify):
    pipe = headway.pipeline("text-classification", model=str(tiny["seqcls"]), dtype=torch.float64, batch_size=5,
                            device=-1)
    assert pipe.model.dtype == torch.float64 and pipe.batch_size == 5 and pipe.device == torch.device("cpu")
    assert_same(pipe(TEXTS, top_k=None), classify(TEXTS, top_k=None), atol=1e-5)


def test_repr_and_base_class(classify):
    assert repr(classify).startswith("TextClassificationPipeline(task='text-classification'")
    assert isinstance(classify, Pipeline)


def test_logs_go_through_logging(tiny, caplog):
    with caplog.at_level(logging.WARNING, logger="headway"):
        headway.pipeline("text-classification", model=str(tiny["seqcls"]), device="cpu")("word " * 100)
    assert any(r.name.startswith("headway.pipelines") for r in caplog.records)


@pytest.mark.parametrize("family", ["MPNet", "Roberta", "Bert"])
def test_usable_length_comes_from_the_config(tiny, family):
    """A tokenizer without model_max_length: rows are cut to what the model's positions allow (MPNet and
    RoBERTa keep rows of their position table for padding), never past it."""
    tokenizer = headway.AutoTokenizer.from_pretrained(str(tiny["bare"]))
    tokenizer.model_max_length = int(1e30)
    config = getattr(headway, family + "Config")(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                                                  num_attention_heads=4, intermediate_size=37,
                                                  max_position_embeddings=22)
    model = getattr(headway, family + "Model")(config).eval()
    expected = {"MPNet": 20, "Roberta": 20, "Bert": 22}[family]
    assert config.max_input_length == expected
    pipe = headway.pipeline("feature-extraction", model=model, tokenizer=tokenizer)
    assert pipe.max_length == expected
    features = pipe("word " * 60)
    assert len(features[0]) == expected
