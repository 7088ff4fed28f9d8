"""Problems the fuzzing finds in files outside the fuzzing work's reach, each with its owner and a reproduction.

The hypothesis suites tolerate an outcome that matches one of these (and only these); the campaign counts
them like any other and lists them under its table. Remove an entry once its owner has fixed it: the suites
then hold the fix in place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.fuzz.targets import Outcome


@dataclass(frozen=True)
class KnownIssue:
    target: str
    pattern: str  # searched in the outcome's detail
    owner: str  # the file where the fix belongs
    reproduction: str


KNOWN_ISSUES: tuple[KnownIssue, ...] = (
    KnownIssue(
        "tokenizer_config.json",
        r"is not an instance of 'bool'|object is not iterable|has no attribute 'removesuffix'|KeyError: "
        r"'attention_mask'|int\(\) argument must be|cannot convert float infinity",
        "src/headway/tokenization/loading.py",
        "tokenizer_config.json {\"do_lower_case\": 7} -> TypeError \"'int' object is not an instance of 'bool'\"; "
        '{"tokenizer_class": [1, 2]} -> AttributeError removesuffix; {"model_max_length": Infinity} -> '
        'OverflowError; {"model_input_names": 5} -> TypeError; none names the file or the field',
    ),
    KnownIssue(
        "vocab.txt",
        r"Error while reading WordPiece file|Missing \[UNK\] token",
        "src/headway/tokenization/loading.py",
        "vocab.txt with bytes b'\\xff\\xfe' -> bare Exception 'Error while reading WordPiece file: stream did not "
        "contain valid UTF-8'; a vocab.txt without [UNK] loads, then the first call fails with 'WordPiece error: "
        "Missing [UNK] token', neither naming vocab.txt",
    ),
    KnownIssue(
        "*",
        r"Exceeds the limit \(4300 digits\) for integer string conversion",
        "src/headway/jsonfile.py",
        "any JSON file holding an integer literal of more than 4300 digits -> ValueError from Python's int "
        "parser that does not name the file",
    ),
    KnownIssue(
        "config.json*",
        r"Unknown activation|normal_\(\): argument 'std'|'\w+' object is not iterable|describes a model of about|"
        r"unsupported operand type\(s\) for \*\* or pow\(\)|normal expects std >= 0",
        "src/headway/configuration.py, src/headway/modeling.py (check_model_fits)",
        'config.json {"hidden_act": "\\u0000"} -> "Unknown activation" naming neither hidden_act nor the file; '
        '{"initializer_range": null} (or -1e9) -> TypeError (RuntimeError) from normal_() when building; '
        'llama {"rope_parameters": 1e-300} -> '
        'TypeError \'float\' object is not iterable, {"rope_parameters": {"rope_theta": null}} -> TypeError '
        'from ** in the rotary tables; bert {"intermediate_size": 2147483648} -> the too-big '
        "message lists hidden_size/num_hidden_layers/vocab_size/num_labels but not the field that made it big",
    ),
    KnownIssue(
        "shard index",
        r"File name too long",
        "src/headway/checkpoint.py / src/headway/hub.py",
        'model.safetensors.index.json weight_map value "é" * 300 -> OSError ENAMETOOLONG',
    ),
    KnownIssue(
        "pipelines",
        r"new_empty\(\): argument 'size'|must be int, not float|'float' object cannot be interpreted as an integer|"
        r"'<=' not supported between instances of '\w+' and 'int'",
        "src/headway/generation/config.py (GenerationConfig._check_values)",
        "pipe('hi', max_new_tokens=2.5) (text-generation; also model.generate(max_new_tokens=2.5)) -> TypeError "
        "deep in torch; max_new_tokens='3' -> TypeError \"'<=' not supported\": max_new_tokens / min_new_tokens are "
        "range-checked but not type-checked",
    ),
)


def known_issue(target: str, outcome: Outcome) -> KnownIssue | None:
    """The known issue ``outcome`` of ``target`` is an instance of, if any."""
    for issue in KNOWN_ISSUES:
        applies = issue.target in ("*", target) or (
            issue.target.endswith("*") and target.startswith(issue.target[:-1])
        )
        if applies and re.search(issue.pattern, outcome.detail):
            return issue
    return None
