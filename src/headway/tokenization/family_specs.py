"""Tokenizer families: how each reference tokenizer class assembles its backend, and which one applies.

The reference library picks a tokenizer *family* from ``tokenizer_config.json`` (``tokenizer_class``)
or from the model type in ``config.json``; each family fixes the normalizer, pre-tokenizer, decoder
and post-processor, even when a ``tokenizer.json`` is present. ``resolve_family`` reproduces that
choice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .converters import TokenizerJson

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Family:
    """How one reference tokenizer class assembles its backend.

    Attributes:
        name: Internal family key.
        class_name: The reference class name written to ``tokenizer_config.json``.
        model: Backend model kind the family rebuilds ("WordPiece", "BPE", "Unigram"), None for
            the generic family that uses ``tokenizer.json`` as it is.
        model_input_names: Keys returned by ``__call__`` by default.
        padding_side: Default padding side.
        defaults: Default keyword values (special tokens and options) of the reference class.
        vocab_files: Vocabulary file sets tried, in order, when there is no ``tokenizer.json``.
    """

    name: str
    class_name: str
    model: str | None
    model_input_names: tuple[str, ...] = ("input_ids", "attention_mask")
    padding_side: str = "right"
    defaults: dict[str, Any] = field(default_factory=dict)
    vocab_files: tuple[tuple[str, ...], ...] = ()


_BERT_DEFAULTS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
    "do_lower_case": True,
    "tokenize_chinese_chars": True,
    "strip_accents": None,
}
_SPM_FILES = (("tokenizer.model",), ("spiece.model",), ("sentencepiece.bpe.model",))
_ROBERTA_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}

FAMILIES: dict[str, Family] = {
    "bert": Family(
        "bert",
        "BertTokenizer",
        "WordPiece",
        ("input_ids", "token_type_ids", "attention_mask"),
        defaults=_BERT_DEFAULTS,
        vocab_files=(("vocab.txt",),),
    ),
    "distilbert": Family(
        "distilbert",
        "DistilBertTokenizer",
        "WordPiece",
        defaults=_BERT_DEFAULTS,
        vocab_files=(("vocab.txt",),),
    ),
    "mpnet": Family(
        "mpnet",
        "MPNetTokenizer",
        "WordPiece",
        defaults={
            **_ROBERTA_TOKENS,
            "unk_token": "[UNK]",
            "do_lower_case": True,
            "tokenize_chinese_chars": True,
            "strip_accents": None,
        },
        vocab_files=(("vocab.txt",),),
    ),
    "gpt2": Family(
        "gpt2",
        "GPT2Tokenizer",
        "BPE",
        defaults={
            "unk_token": "<|endoftext|>",
            "bos_token": "<|endoftext|>",
            "eos_token": "<|endoftext|>",
            "pad_token": None,
            "add_prefix_space": False,
            "errors": "replace",
        },
        vocab_files=(("vocab.json", "merges.txt"),),
    ),
    "roberta": Family(
        "roberta",
        "RobertaTokenizer",
        "BPE",
        defaults={**_ROBERTA_TOKENS, "add_prefix_space": False, "trim_offsets": True, "errors": "replace"},
        vocab_files=(("vocab.json", "merges.txt"),),
    ),
    "llama": Family(
        "llama",
        "LlamaTokenizer",
        "BPE",
        padding_side="left",
        defaults={
            "unk_token": "<unk>",
            "bos_token": "<s>",
            "eos_token": "</s>",
            "clean_up_tokenization_spaces": False,
            "use_default_system_prompt": False,
        },
        vocab_files=_SPM_FILES,
    ),
    "xlm_roberta": Family(
        "xlm_roberta",
        "XLMRobertaTokenizer",
        "Unigram",
        defaults={**_ROBERTA_TOKENS, "add_prefix_space": True},
    ),
    "deberta_v2": Family(
        "deberta_v2",
        "DebertaV2Tokenizer",
        "Unigram",
        ("input_ids", "attention_mask", "token_type_ids"),
        defaults={
            "bos_token": "[CLS]",
            "eos_token": "[SEP]",
            "unk_token": "[UNK]",
            "sep_token": "[SEP]",
            "pad_token": "[PAD]",
            "cls_token": "[CLS]",
            "mask_token": "[MASK]",
            "do_lower_case": False,
            "split_by_punct": False,
            "add_prefix_space": True,
        },
        vocab_files=(("spm.model",),),
    ),
    # The encoder-decoder SentencePiece families (spm_seq2seq builds their backends) and Marian (marian).
    "t5": Family(
        "t5",
        "T5Tokenizer",
        "Unigram",
        defaults={"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "extra_ids": 100},
        vocab_files=(("spiece.model",),),
    ),
    "mbart": Family(
        "mbart",
        "MBartTokenizer",
        "Unigram",
        defaults={**_ROBERTA_TOKENS, "src_lang": None, "tgt_lang": None},
        vocab_files=(("sentencepiece.bpe.model",),),
    ),
    "mbart50": Family(
        "mbart50",
        "MBart50Tokenizer",
        "Unigram",
        defaults={
            **{key: value for key, value in _ROBERTA_TOKENS.items() if key != "bos_token"},
            "src_lang": None,
            "tgt_lang": None,
        },
        vocab_files=(("sentencepiece.bpe.model",),),
    ),
    # Pegasus's mask tokens are set by its class: the SentencePiece conversion must see whether the
    # checkpoint named them (see spm_seq2seq.pegasus_pieces).
    "pegasus": Family(
        "pegasus",
        "PegasusTokenizer",
        "Unigram",
        defaults={"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>", "offset": 103},
        vocab_files=(("spiece.model",),),
    ),
    "marian": Family(
        "marian",
        "MarianTokenizer",
        "Unigram",
        defaults={
            "unk_token": "<unk>",
            "eos_token": "</s>",
            "pad_token": "<pad>",
            "model_max_length": 512,
            "separate_vocabs": False,
            "source_lang": None,
            "target_lang": None,
        },
        vocab_files=(("source.spm", "target.spm", "vocab.json"),),
    ),
    "generic": Family(
        "generic",
        "PreTrainedTokenizerFast",
        None,
        vocab_files=_SPM_FILES,
    ),
}

# Reference tokenizer class name (without "Fast") -> family.
CLASS_TO_FAMILY: dict[str, str] = {
    "BertTokenizer": "bert",
    "DistilBertTokenizer": "distilbert",
    "MPNetTokenizer": "mpnet",
    "GPT2Tokenizer": "gpt2",
    "RobertaTokenizer": "roberta",
    "LlamaTokenizer": "llama",
    "XLMRobertaTokenizer": "xlm_roberta",
    "DebertaV2Tokenizer": "deberta_v2",
    "BartTokenizer": "roberta",  # as in transformers v5, BART's tokenizer is RoBERTa's
    "T5Tokenizer": "t5",
    "MBartTokenizer": "mbart",
    "MBart50Tokenizer": "mbart50",
    "PegasusTokenizer": "pegasus",
    "MarianTokenizer": "marian",
    "PreTrainedTokenizer": "generic",
    "PreTrainedTokenizerFast": "generic",
    "TokenizersBackend": "generic",
}
_GENERIC_CLASS_NAMES = {"TokenizersBackend", "PreTrainedTokenizerFast", "PythonBackend"}

# config.json ``model_type`` -> reference class registered for it (only the families above and the
# model types the reference sends to the generic backend).
_MODEL_TYPE_TO_CLASS: dict[str, str] = {}
for _cls, _types in {
    "BertTokenizer": "align bark bert blip bros chinese_clip convbert distilbert electra ernie flava git "
    "grounding-dino layoutlm megatron-bert mm-grounding-dino nezha nomic_bert qdqbert realm retribert "
    "squeezebert tvp vilt visual_bert",
    "MPNetTokenizer": "mpnet",
    "RobertaTokenizer": "bart bridgetower clap data2vec-text ibert lilt longformer mega mra roberta "
    "roberta-prelayernorm",
    "GPT2Tokenizer": "blip-2 codegen dbrx emu3 gpt2 gpt_neo gptj instructblip instructblipvideo jais2 opt "
    "phi starcoder2",
    "LlamaTokenizer": "idefics idefics2",
    "XLMRobertaTokenizer": "gte jina_embeddings_v3 metaclip_2 trocr xlm-roberta xmod",
    "DebertaV2Tokenizer": "deberta-v2",
    "BartTokenizer": "florence2",
    "T5Tokenizer": "musicgen musicgen_melody mt5 switch_transformers t5",
    "MBartTokenizer": "mbart",
    "MBart50Tokenizer": "mbart50",
    "PegasusTokenizer": "pegasus",
    "MarianTokenizer": "marian",
    "TokenizersBackend": "arctic aria bigbird_pegasus flex_olmo fuyu glm glm4 glm4_moe glm4v gpt_bigcode "
    "granite granitemoe granitemoehybrid granitemoeshared internlm2 internlm3 jamba kosmos-2 llava "
    "llava_next minicpm3 minicpmv ministral ministral3 mistral mistral3 mixtral modernbert "
    "modernbert-decoder nemotron nystromformer olmo2 olmo3 persimmon phi3 phi3_v phimoe pix2struct pixtral "
    "smolvlm stablelm umt5 vipllava voxtral xlm-roberta-xl",
}.items():
    for _t in _types.split():
        _MODEL_TYPE_TO_CLASS[_t] = _cls
# Model types whose Hub ``tokenizer_class`` the reference ignores in favour of the registered class.
_INCORRECT_HUB_CLASS = {
    "arctic",
    "fuyu",
    "internlm2",
    "internlm3",
    "jamba",
    "llava",
    "llava_next",
    "minicpm3",
    "minicpmv",
    "modernbert",
    "modernbert-decoder",
    "nemotron",
    "phi3",
    "phi3_v",
    "phimoe",
    "smolvlm",
    "vipllava",
}


def strip_fast(name: str) -> str:
    """``"BertTokenizerFast"`` -> ``"BertTokenizer"``."""
    return name.removesuffix("Fast")


def resolve_family(
    tokenizer_class: str | None,
    model_type: str | None,
    tokenizer_json: TokenizerJson | str | None,
) -> str:
    """Pick the tokenizer family the reference ``AutoTokenizer`` would use.

    Args:
        tokenizer_class: ``tokenizer_class`` from ``tokenizer_config.json`` (or ``config.json``).
        model_type: ``model_type`` from ``config.json``.
        tokenizer_json: ``tokenizer.json`` when present (parsed, or its content); its text is read
            only for checkpoints that declare a ``LlamaTokenizer``.

    Returns:
        A key of ``FAMILIES``.
    """
    hub = strip_fast(tokenizer_class) if tokenizer_class else None
    registered = _MODEL_TYPE_TO_CLASS.get(model_type or "")
    if (
        hub == "LlamaTokenizer"
        and model_type not in _INCORRECT_HUB_CLASS
        and tokenizer_json is not None
        and '"ByteLevel"' in (tokenizer_json if isinstance(tokenizer_json, str) else tokenizer_json.text)
    ):
        # Llama-3 style checkpoints declare LlamaTokenizer but ship a byte-level tokenizer.json.
        return "generic"
    if hub and registered and registered != hub:
        if registered not in _GENERIC_CLASS_NAMES:
            name = registered if model_type in _INCORRECT_HUB_CLASS else hub
            family = CLASS_TO_FAMILY.get(name)
            if family is not None and family != "generic":
                return family
        return "generic"
    if hub:
        family = CLASS_TO_FAMILY.get(hub)
        if family is None:
            logger.info("Tokenizer class %r has no dedicated pipeline here; using tokenizer.json as is", hub)
            return "generic"
        return family
    if registered:
        return CLASS_TO_FAMILY.get(registered, "generic")
    return "generic"
