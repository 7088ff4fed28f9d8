"""headway: run, fine-tune and serve transformers with the Hugging Face API, faster and safer.

The public names below are resolved lazily (PEP 562), so ``import headway`` imports no model code,
no tokenizer code and not even torch until a name that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    # configs and models
    "PretrainedConfig": "headway.configuration",
    "PreTrainedModel": "headway.modeling",
    "AutoConfig": "headway.auto",
    "AutoModel": "headway.auto",
    "AutoModelForSequenceClassification": "headway.auto",
    "AutoModelForTokenClassification": "headway.auto",
    "AutoModelForQuestionAnswering": "headway.auto",
    "AutoModelForMaskedLM": "headway.auto",
    "AutoModelForPreTraining": "headway.auto",
    "AutoModelForMultipleChoice": "headway.auto",
    "AutoTokenizer": "headway.auto",
    # tokenizers
    "PreTrainedTokenizerFast": "headway.tokenization",
    "BatchEncoding": "headway.tokenization",
    # pipelines (issue: pipelines and sentence embeddings)
    "pipeline": "headway.pipelines",
    "Pipeline": "headway.pipelines.base",
    # sentence embeddings
    "SentenceTransformer": "headway.sentence",
    "CrossEncoder": "headway.sentence",
    # training
    "TrainingArguments": "headway.training.arguments",
    "Trainer": "headway.training.trainer",
    "TrainerCallback": "headway.training.callbacks",
    "TrainerState": "headway.training.callbacks",
    "TrainerControl": "headway.training.callbacks",
    "EarlyStoppingCallback": "headway.training.callbacks",
    "DataCollatorWithPadding": "headway.training.collators",
    "DataCollatorForTokenClassification": "headway.training.collators",
    "DataCollatorForLanguageModeling": "headway.training.collators",
    "DataCollatorForSeq2Seq": "headway.training.collators",
    "default_data_collator": "headway.training.collators",
    "get_scheduler": "headway.training.schedules",
    "set_seed": "headway.training.utils",
    # families
    "BertConfig": "headway.models.bert",
    "BertModel": "headway.models.bert",
    "BertForSequenceClassification": "headway.models.bert",
    "BertForTokenClassification": "headway.models.bert",
    "BertForQuestionAnswering": "headway.models.bert",
    "BertForMaskedLM": "headway.models.bert",
    "BertForPreTraining": "headway.models.bert",
    "BertForMultipleChoice": "headway.models.bert",
    "RobertaConfig": "headway.models.roberta",
    "RobertaModel": "headway.models.roberta",
    "RobertaForSequenceClassification": "headway.models.roberta",
    "RobertaForTokenClassification": "headway.models.roberta",
    "RobertaForQuestionAnswering": "headway.models.roberta",
    "RobertaForMaskedLM": "headway.models.roberta",
    "RobertaForMultipleChoice": "headway.models.roberta",
    "XLMRobertaConfig": "headway.models.roberta",
    "XLMRobertaModel": "headway.models.roberta",
    "XLMRobertaForSequenceClassification": "headway.models.roberta",
    "XLMRobertaForTokenClassification": "headway.models.roberta",
    "XLMRobertaForQuestionAnswering": "headway.models.roberta",
    "XLMRobertaForMaskedLM": "headway.models.roberta",
    "XLMRobertaForMultipleChoice": "headway.models.roberta",
    "DistilBertConfig": "headway.models.distilbert",
    "DistilBertModel": "headway.models.distilbert",
    "DistilBertForSequenceClassification": "headway.models.distilbert",
    "DistilBertForTokenClassification": "headway.models.distilbert",
    "DistilBertForQuestionAnswering": "headway.models.distilbert",
    "DistilBertForMaskedLM": "headway.models.distilbert",
    "DistilBertForMultipleChoice": "headway.models.distilbert",
    "MPNetConfig": "headway.models.mpnet",
    "MPNetModel": "headway.models.mpnet",
    "MPNetForSequenceClassification": "headway.models.mpnet",
    "MPNetForTokenClassification": "headway.models.mpnet",
    "MPNetForQuestionAnswering": "headway.models.mpnet",
    "MPNetForMaskedLM": "headway.models.mpnet",
    "MPNetForMultipleChoice": "headway.models.mpnet",
}

# public name -> submodule exposed under that name (``from headway import util``, as sentence-transformers)
_LAZY_MODULES: dict[str, str] = {"util": "headway.sentence.util"}

__all__ = sorted([*_LAZY, *_LAZY_MODULES])  # noqa: PLE0605


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        value = importlib.import_module(_LAZY_MODULES[name])
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'headway' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, *_LAZY_MODULES])


if TYPE_CHECKING:  # for type checkers and IDEs only
    from headway.auto import (  # noqa: F401
        AutoConfig,
        AutoModel,
        AutoModelForMaskedLM,
        AutoModelForMultipleChoice,
        AutoModelForPreTraining,
        AutoModelForQuestionAnswering,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )
    from headway.configuration import PretrainedConfig  # noqa: F401
    from headway.modeling import PreTrainedModel  # noqa: F401
