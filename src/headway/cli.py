"""The ``headway`` command: thin wrappers over the library, and the only place that prints.

    headway run text-classification "I love it" "I hate it" --model ./my-model
    cat texts.txt | headway run feature-extraction --model sentence-transformers/all-MiniLM-L6-v2
    headway run question-answering "Where is it?" --context "It is in Paris." --model ./qa-model
    headway run zero-shot-classification "We won 3-1" --candidate-labels sport,politics --model ./nli
    headway run ner "Ada lives in London" --param aggregation_strategy=simple --model ./ner-model
    headway tasks

``run`` prints one JSON result per line, in input order. With no TEXT it reads standard input, one input
per line (blank lines skipped), and prints each result as soon as it is ready. An input written as a JSON
object is passed as a dict: ``{"text": ..., "text_pair": ...}`` for pairs, ``{"question": ..., "context": ...}``
for question answering.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Any


def _parse_value(text: str) -> Any:
    """``3`` -> 3, ``true`` -> True, ``["a","b"]`` -> list; anything that is not JSON stays a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_input(text: str) -> Any:
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError:
            return text
        return value if isinstance(value, dict) else text
    return text


def _stdin_inputs() -> Iterator[Any]:
    for line in sys.stdin:
        line = line.rstrip("\n")
        if line.strip():
            yield _parse_input(line)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # tensors and numpy values
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="headway", description="Run transformers models from the command line.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the library's informational logs")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a task pipeline on texts (arguments or standard input)")
    run.add_argument("task", help="task name, e.g. text-classification (see `headway tasks`)")
    run.add_argument("texts", nargs="*", metavar="TEXT", help="inputs; read from standard input when none")
    run.add_argument("--model", "-m", help="checkpoint id or local folder (default: the task's default model)")
    run.add_argument("--tokenizer", help="tokenizer checkpoint id or folder (default: the model's)")
    run.add_argument("--batch-size", "-b", type=int, default=None, help="rows per forward pass (default 1)")
    run.add_argument("--device", help="cpu, cuda, cuda:1 or a GPU index (default: a GPU when there is one)")
    run.add_argument("--context", help="question-answering: the context every TEXT (a question) is asked about")
    run.add_argument("--candidate-labels", help="zero-shot-classification: comma-separated labels")
    run.add_argument(
        "--param", "-p", action="append", default=[], metavar="KEY=VALUE",
        help="a task parameter (repeatable), value read as JSON when it is JSON: top_k=3, targets='[\"a\"]'",
    )
    run.add_argument("--no-progress", action="store_true", help="never show a progress bar")

    commands.add_parser("tasks", help="list the task names `run` accepts")
    return parser


def _run(args: argparse.Namespace) -> int:
    from headway.pipelines import pipeline

    params: dict[str, Any] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param takes KEY=VALUE, got {item!r}")
        params[key.replace("-", "_")] = _parse_value(value)
    if args.candidate_labels is not None:
        params["candidate_labels"] = args.candidate_labels
    device = args.device
    if device is not None and device.lstrip("-").isdigit():
        device = int(device)

    pipe = pipeline(args.task, model=args.model, tokenizer=args.tokenizer, device=device, batch_size=args.batch_size)
    inputs: Any = [_parse_input(text) for text in args.texts] if args.texts else _stdin_inputs()
    if args.context is not None:
        questions = inputs
        inputs = (q if isinstance(q, dict) else {"question": q, "context": args.context} for q in questions)
        if args.texts:
            inputs = list(inputs)
    if args.no_progress:
        params["progress_bar"] = False
    results = pipe(inputs, **params)
    if isinstance(inputs, list) and len(inputs) == 1 and args.task in ("fill-mask", "question-answering"):
        results = [results]  # these tasks return a bare result for a list of one
    for result in results:
        print(json.dumps(result, ensure_ascii=False, default=_jsonable), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``headway`` console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        if args.command == "tasks":
            from headway.pipelines import TASK_ALIASES, TASKS

            for task in TASKS:
                aliases = [alias for alias, target in TASK_ALIASES.items() if target == task]
                print(task + (f"  (alias: {', '.join(aliases)})" if aliases else ""))
            return 0
        return _run(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"headway: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `headway run ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
