"""text2text-generation, summarization and translation: outputs equal transformers 4.57's, recorded in
tests/fixtures/seq2seq_golden.json on the tiny BART, T5, Marian and mBART checkpoints of
tests/fixtures/seq2seq_tiny/ (both made by tests/fixtures/record_seq2seq_golden.py); settings, task names,
bad input, and zero-shot classification with a BART-MNLI-shaped model against transformers 5.23.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pytest

import headway
from headway.pipelines import TASKS, check_task
from headway.pipelines.text2text_generation import (
    SummarizationPipeline,
    Text2TextGenerationPipeline,
    TranslationPipeline,
)
from tests.pipelines.common import assert_same

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ROOT = FIXTURES / "seq2seq_tiny"
GOLDEN = json.loads((FIXTURES / "seq2seq_golden.json").read_text(encoding="utf-8"))
CASES = GOLDEN["cases"]
LOGGER = "headway.pipelines.text2text_generation"
TEXT = "The river Ondra flows north from the Kesh mountains to the harbour town of Millport."
LONG = " ".join([TEXT] * 6)  # longer than the 64 positions of the tiny BART, Marian and mBART


@pytest.fixture(scope="module")
def pipes():
    """``pipes(task, checkpoint, **construction_kwargs)``: one pipeline per combination, built once."""
    cache: dict[tuple, object] = {}

    def get(task: str, model: str, **init):
        key = (task, model, json.dumps(init, sort_keys=True))
        if key not in cache:
            cache[key] = headway.pipeline(task, model=str(ROOT / model), device="cpu", **init)
        return cache[key]

    return get


def _messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_fixtures_are_small_and_complete():
    assert GOLDEN["transformers"].startswith("4.57")
    for name in ("bart", "t5", "marian", "mbart"):
        folder = ROOT / name
        assert sum(f.stat().st_size for f in folder.iterdir()) < 1_000_000
        assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= {
            f.name for f in folder.iterdir()
        }


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_matches_transformers_4_57(pipes, case, caplog):
    pipe = pipes(case["task"], case["model"], **case.get("init", {}))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = pipe(*case["args"], **case.get("kwargs", {}))
    assert result == case["output"]  # texts and token ids exactly
    if case.get("kwargs", {}).get("batch_size", 1) == 1:  # 4.57 warns per batch: same batches, same warnings
        logged = [m for m in _messages(caplog) if m.startswith("Your ")]
        assert Counter(logged) == Counter(w for w in case["warnings"] if w.startswith("Your "))


# -- settings ------------------------------------------------------------------------------------------------
def test_results_do_not_depend_on_the_batch_size(pipes):
    pipe = pipes("summarization", "bart")
    texts = [TEXT, TEXT[:20], LONG[:200], "A small boat carried the doctor."]
    one = pipe(texts, return_tensors=True, truncation=True, num_beams=2, num_return_sequences=2)
    assert (
        pipe(texts, return_tensors=True, truncation=True, num_beams=2, num_return_sequences=2, batch_size=3)
        == one
    )
    for records in one:  # an input's sequences share one length: its longest (padding of others dropped)
        assert len({len(r["summary_token_ids"]) for r in records}) == 1
        assert (
            any(r["summary_token_ids"][-1] == 2 for r in records)
            or len(records[0]["summary_token_ids"]) == 18
        )


def test_generator_input_gives_an_iterator(pipes):
    pipe = pipes("text2text-generation", "bart")
    texts = [TEXT, "How old are you?"]
    results = pipe(t for t in texts)
    assert not isinstance(results, list)
    assert list(results) == [[record] for record in pipe(texts)]


def test_task_specific_params_and_prefix(pipes):
    summarizer = pipes("summarization", "t5")
    assert summarizer.prefix == "summarize: "
    config = summarizer.generation_config
    assert (config.min_length, config.max_length, config.num_beams, config.no_repeat_ngram_size) == (
        6,
        40,
        4,
        3,
    )
    assert config.max_new_tokens == 256  # the pipeline default still wins over max_length, as in 4.57
    assert (
        "prefix" in summarizer.model.config.task_specific_params["summarization"]
    )  # the config is left alone
    translator = pipes("translation_en_to_fr", "t5")
    assert translator.prefix == "translate English to French: "
    bart = pipes("summarization", "bart").generation_config
    # The checkpoint's max_length counts, so the pipeline's max_new_tokens default is dropped.
    assert (bart.max_new_tokens, bart.max_length, bart.min_length, bart.num_beams) == (None, 18, 3, 3)
    plain = pipes("text2text-generation", "bart").generation_config
    assert (plain.max_new_tokens, plain.max_length, plain.num_beams, plain.length_penalty) == (
        None,
        24,
        4,
        2.0,
    )


def test_plain_translation_task_takes_the_first_translation_entry(caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        pipe = headway.pipeline("translation", model=str(ROOT / "t5"), device="cpu")
    assert pipe.task == "translation_en_to_de" and pipe.prefix == "translate English to German: "
    assert (
        '"translation" task was used, instead of "translation_XX_to_YY", defaulting to "translation_en_to_de"'
        in (caplog.text)
    )
    case = next(c for c in CASES if c["name"] == "tr_t5_plain_task")
    assert case["warnings"][-1] in caplog.text  # the reference's words


def test_construction_keywords_are_kept(pipes):
    """Unlike 4.57 (which puts the checkpoint's num_beams=4 back at call time), num_beams=1 given at
    construction is what runs."""
    pipe = pipes("text2text-generation", "bart", num_beams=1)
    assert pipe.generation_config.num_beams == 1
    assert pipe(TEXT) == pipes("text2text-generation", "bart")(TEXT, num_beams=1)


def test_checkpoint_beam_flags_do_not_warn_at_each_batch(pipes, caplog):
    """BART-CNN-like checkpoints set length_penalty and early_stopping: a call with num_beams=1 does not make
    generate() warn about them for every batch; a flag the caller sets to no effect is reported once."""
    pipe = pipes("text2text-generation", "bart")
    with caplog.at_level(logging.WARNING):
        pipe([TEXT, "How old are you?", "A small boat."], num_beams=1, max_new_tokens=4)
    assert "no effect" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        pipe([TEXT, "How old are you?"], num_beams=1, length_penalty=3.0, max_new_tokens=4)
    assert caplog.text.count("no effect") == 1 and "length_penalty=3.0" in caplog.text


def test_pipeline_classes_and_task_names():
    assert isinstance(headway.pipeline("summarization", model=str(ROOT / "bart")), SummarizationPipeline)
    assert check_task("translation_en_to_fr") == ("translation_en_to_fr", TASKS["translation"])
    assert check_task("text2text-generation")[1]["impl"].endswith(":Text2TextGenerationPipeline")
    for bad in ("translation_en_fr", "translation_en_to", "translation__to_fr", "translate_en_to_fr"):
        with pytest.raises(ValueError, match="translation"):
            check_task(bad)
    assert TASKS["summarization"]["default"] == "sshleifer/distilbart-cnn-12-6"
    assert TASKS["text2text-generation"]["default"] == TASKS["translation"]["default"] == "google-t5/t5-base"


@pytest.mark.parametrize("task", ["translation", "translation_en_to_ja"])
def test_translation_defaults_exist_for_some_pairs_only(task):
    with pytest.raises(ValueError, match="translation_xx_to_yy|default models for the languages 'en_to_ja'"):
        headway.pipeline(task)


@pytest.mark.parametrize(
    ("checkpoint", "task", "cls"),
    [
        ("bart", "summarization", SummarizationPipeline),  # task_specific_params: summarization only
        ("t5", "translation_en_to_de", TranslationPipeline),  # translation entries (t5-small's are)
        ("marian", "translation", TranslationPipeline),  # MarianMTModel
        ("mbart", "text2text-generation", Text2TextGenerationPipeline),
    ],
)
def test_task_inferred_from_the_checkpoint(checkpoint, task, cls):
    pipe = headway.pipeline(model=str(ROOT / checkpoint), device="cpu")
    assert type(pipe) is cls and pipe.task == task


# -- bad input -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("inputs", "error", "match"),
    [
        ("", ValueError, "empty string"),
        ("   ", ValueError, "empty string"),
        ([], ValueError, "empty list"),
        ([TEXT, ""], ValueError, r"input \[1\] is an empty string"),
        (42, TypeError, "must be a str"),
        ([TEXT, None], TypeError, r"input \[1\] must be a str"),
    ],
)
def test_bad_inputs(pipes, inputs, error, match):
    with pytest.raises(error, match=match):
        pipes("summarization", "bart")(inputs)


@pytest.mark.parametrize(("task", "model"), [("summarization", "bart"), ("translation_en_to_fr", "marian")])
def test_too_long_input_without_truncation(pipes, task, model):
    with pytest.raises(
        ValueError, match=r"input \[1\] is \d+ tokens long, more than the 64 positions.*truncation=True"
    ):
        pipes(task, model)([TEXT, LONG])


def test_truncation_cuts_with_a_warning(pipes, caplog):
    pipe = pipes("summarization", "bart")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = pipe([TEXT, LONG], truncation=True, num_beams=1)
    assert len(result) == 2
    assert any("input [1] is" in m and "truncated to 64 tokens" in m for m in _messages(caplog))
    assert not any("input [0]" in m for m in _messages(caplog))


def test_min_length_above_max_length_warns(pipes, caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        pipes("summarization", "bart")(TEXT, min_length=12, max_length=8)
    assert "Your min_length=12 must be inferior than your max_length=8." in _messages(caplog)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"src_lang": "xx_YY", "tgt_lang": "fr_XX"}, "src_lang='xx_YY' is not a language code"),
        ({"src_lang": "en_XX", "tgt_lang": "klingon"}, "tgt_lang='klingon' is not a language code"),
        ({"src_lang": "en_XX"}, "needs src_lang and tgt_lang"),
    ],
)
def test_unknown_or_missing_language_codes(pipes, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipes("translation", "mbart")(TEXT, **kwargs)


def test_language_pair_task_on_a_multilingual_model_names_the_code(pipes):
    with pytest.raises(ValueError, match="src_lang='en' is not a language code.*en_XX"):
        pipes("translation_en_to_fr", "mbart")(TEXT)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_beam": 2}, TypeError, "num_beam"),
        ({"truncation": "sometimes"}, ValueError, "truncation must be"),
        ({"stop_sequence": ""}, ValueError, "stop_sequence '' gives no tokens"),
        ({"src_lang": 3}, TypeError, "src_lang must be a language code"),
    ],
)
def test_bad_parameters(pipes, kwargs, error, match):
    with pytest.raises(error, match=match):
        pipes("translation", "marian")(TEXT, **kwargs)


def test_needs_an_encoder_decoder():
    model = headway.AutoModelForQuestionAnswering.from_pretrained(str(FIXTURES / "qa_tiny"))
    tokenizer = headway.AutoTokenizer.from_pretrained(str(FIXTURES / "qa_tiny"))
    with pytest.raises(ValueError, match="encoder-decoder.*BertForQuestionAnswering.*text-generation"):
        Text2TextGenerationPipeline(model=model, tokenizer=tokenizer)


# -- zero-shot classification with a BART-MNLI-shaped model ---------------------------------------------------------
@pytest.fixture(scope="module")
def bart_mnli(tmp_path_factory) -> Path:
    """A tiny random BartForSequenceClassification with MNLI labels, saved by transformers 5.23, with the
    tiny BART's tokenizer."""
    import shutil

    import torch
    import transformers

    folder = tmp_path_factory.mktemp("bart_mnli")
    config = transformers.BartConfig.from_pretrained(ROOT / "bart")
    config.task_specific_params = None
    labels = ["contradiction", "neutral", "entailment"]
    config.id2label, config.label2id = dict(enumerate(labels)), {label: i for i, label in enumerate(labels)}
    torch.manual_seed(7)
    model = transformers.BartForSequenceClassification(config).eval()
    with torch.no_grad():  # spread the class logits so that labels are decided by clear margins
        model.classification_head.out_proj.weight.normal_(0.0, 1.0)
    model.save_pretrained(folder)
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.json",
        "merges.txt",
    ):
        shutil.copy(ROOT / "bart" / name, folder / name)
    return folder


ZERO_SHOT_CALLS = [
    ((TEXT,), {"candidate_labels": ["geography", "cooking", "sport"]}),
    ((TEXT,), {"candidate_labels": ["geography", "cooking", "sport"], "multi_label": True}),
    (([TEXT, "How old are you?"], ["travel", "question"]), {"hypothesis_template": "This text is about {}."}),
    ((LONG,), {"candidate_labels": ["river"]}),  # truncated premise, one label
]


@pytest.mark.parametrize(
    ("args", "kwargs"), ZERO_SHOT_CALLS, ids=[f"call{i}" for i in range(len(ZERO_SHOT_CALLS))]
)
def test_zero_shot_with_bart_mnli_matches_transformers(bart_mnli, args, kwargs):
    import transformers

    ours = headway.pipeline(model=str(bart_mnli), device="cpu")  # inferred: an NLI head
    assert ours.task == "zero-shot-classification"
    ref = transformers.pipeline("zero-shot-classification", model=str(bart_mnli), device=-1)
    assert_same(ours(*args, **kwargs), ref(*args, **kwargs), atol=1e-5)
