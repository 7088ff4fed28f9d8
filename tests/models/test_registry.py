"""The family table: every entry resolves, Auto classes and lazy names derive from it, heads are written once."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import headway
from headway import auto
from headway.modeling import PreTrainedModel
from headway.models import heads
from headway.models.registry import FAMILIES, TASKS, module_of

MODELS_DIR = Path(heads.__file__).parent
AUTO_CLASSES = {
    "model": auto.AutoModel,
    "pretraining": auto.AutoModelForPreTraining,
    "masked_lm": auto.AutoModelForMaskedLM,
    "causal_lm": auto.AutoModelForCausalLM,
    "seq2seq_lm": auto.AutoModelForSeq2SeqLM,
    "sequence_classification": auto.AutoModelForSequenceClassification,
    "token_classification": auto.AutoModelForTokenClassification,
    "question_answering": auto.AutoModelForQuestionAnswering,
    "multiple_choice": auto.AutoModelForMultipleChoice,
}
SHARED_TASKS = {
    "sequence_classification": heads.SequenceClassification,
    "token_classification": heads.TokenClassification,
    "question_answering": heads.QuestionAnswering,
    "multiple_choice": heads.MultipleChoice,
}


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_every_entry_resolves_with_matching_model_type(model_type):
    family = FAMILIES[model_type]
    module = importlib.import_module(module_of(family))
    config_cls = getattr(module, family.config)
    assert config_cls.model_type == model_type
    assert auto.config_class_for(model_type) is config_cls
    for task in TASKS:
        name = getattr(family, task)
        if name is None:
            continue
        cls = getattr(module, name)
        assert issubclass(cls, PreTrainedModel), name
        assert cls.config_class.model_type == model_type, name
        assert AUTO_CLASSES[task].model_class_for(config_cls()) is cls
        assert getattr(headway, name) is cls  # the lazy public name
        if task in SHARED_TASKS:
            assert issubclass(cls, SHARED_TASKS[task]), f"{name} does not use the shared {task} head"


def test_auto_error_lists_the_supported_types():
    config = headway.DistilBertConfig()
    with pytest.raises(ValueError, match="no model for model_type 'distilbert'") as err:
        type("AutoModelForNothing", (auto._AutoModel,), {"_mapping": {"bert": "x:y"}}).model_class_for(config)
    assert "bert" in str(err.value)
    with pytest.raises(ValueError, match="Unsupported model_type 'gpt-17'.*bert.*distilbert"):
        auto.config_class_for("gpt-17")


def _head_classes() -> list[type]:
    found = []
    for family in FAMILIES.values():
        module = importlib.import_module(module_of(family))
        found += [getattr(module, getattr(family, task)) for task in SHARED_TASKS if getattr(family, task)]
    return found


@pytest.mark.parametrize("cls", _head_classes(), ids=lambda c: c.__name__)
def test_task_heads_run_the_one_shared_forward(cls):
    """A head's forward only binds its positional order; the work is the shared task's ``_run``."""
    shared = next(t for t in SHARED_TASKS.values() if issubclass(cls, t))
    assert cls._run is shared._run, f"{cls.__name__} overrides the shared {shared.__name__}._run"
    assert cls.forward.task_forward is shared._run
    params = list(inspect.signature(cls.forward).parameters)
    assert params[0] == "self" and params[1] == "input_ids" and params[-1] == "kwargs"


def test_no_family_file_defines_a_task_head_forward():
    """The same task forward written twice fails here: family files declare heads, they do not write them."""
    suffixes = ("ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering", "ForMultipleChoice")
    offenders = []
    for path in sorted(MODELS_DIR.glob("*.py")):
        if path.name == "heads.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.endswith(suffixes):
                offenders += [f"{path.name}:{node.name}.{f.name}" for f in node.body
                              if isinstance(f, ast.FunctionDef) and f.name in ("forward", "_run")]
    assert not offenders, f"task heads that write their own forward: {offenders}"
