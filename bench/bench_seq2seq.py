"""Encoder-decoder generation speed: headway's ``generate`` against transformers' on the same weights.

A random model of the shape of ``--family`` (bart: bart-base, d_model 768, 6 + 6 layers, 12 heads, ffn
3072, vocab 50265; t5: t5-small, d_model 512, 6 + 6 layers, 8 heads, d_ff 2048, vocab 32128), built by
transformers, saved, and loaded by both libraries from the same files. Two rows:

- beam: beam search, 4 beams, over ``--inputs`` (16) inputs of ``--source`` (128) random tokens;
- greedy: greedy decoding of one input (batch 1);

each generating ``--new`` (64) tokens, forced by ``min_new_tokens`` = ``max_new_tokens`` (so neither
library stops early). The libraries alternate call by call; each time is the median of ``--repeats``
calls. Printed per row and library: seconds per call, tokens/s (new tokens of every input, beams not
counted, per second of a whole call, encoder included), the ratio headway / transformers, whether the
sequences are identical, and the peak resident memory of ``generate`` alone (in a fresh subprocess per
library: ``VmHWM`` after resetting the mark once the model is loaded).

Run: .venv/bin/python bench/bench_seq2seq.py [--family bart|t5] [--rows beam,greedy] [--repeats 3]
     [--threads N] [--no-memory]
Run it on a quiet machine: the load average is printed before and after (wanted: below 1.5).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch

# family -> (reference config class, its shape, reference model class, headway module, headway class)
FAMILIES = {
    "bart": (
        "BartConfig",
        {"vocab_size": 50265, "d_model": 768, "encoder_layers": 6, "decoder_layers": 6,
         "encoder_attention_heads": 12, "decoder_attention_heads": 12, "encoder_ffn_dim": 3072,
         "decoder_ffn_dim": 3072, "max_position_embeddings": 1024},
        "BartForConditionalGeneration", "headway.models.bart", "BartForConditionalGeneration",
    ),
    "t5": (
        "T5Config",
        {"vocab_size": 32128, "d_model": 512, "d_kv": 64, "d_ff": 2048, "num_layers": 6,
         "num_decoder_layers": 6, "num_heads": 8, "decoder_start_token_id": 0},
        "T5ForConditionalGeneration", "headway.models.t5", "T5ForConditionalGeneration",
    ),
}  # fmt: skip
ROWS = {"beam": {"num_beams": 4}, "greedy": {"num_beams": 1}}


def save_model(family: str, folder: str) -> None:
    """A reference model of ``family``'s shape with random weights, saved to ``folder``."""
    import transformers

    config_name, shape, model_name, _, _ = FAMILIES[family]
    torch.manual_seed(0)
    config = getattr(transformers, config_name)(**shape)
    getattr(transformers, model_name)(config).save_pretrained(folder)


def load(family: str, library: str, folder: str) -> torch.nn.Module:
    """The saved model through ``library`` ("ours" or "ref"), in eval mode, float32."""
    import importlib

    _, _, model_name, module, class_name = FAMILIES[family]
    if library == "ref":
        import transformers

        return getattr(transformers, model_name).from_pretrained(folder).eval()
    return getattr(importlib.import_module(module), class_name).from_pretrained(folder).eval()


def inputs(vocab_size: int, batch: int, length: int) -> torch.Tensor:
    return torch.randint(
        5, min(vocab_size, 30000), (batch, length), generator=torch.Generator().manual_seed(0)
    )


def generate(model: torch.nn.Module, ids: torch.Tensor, new: int, row: str) -> torch.Tensor:
    return model.generate(
        ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=new, min_new_tokens=new,
        **ROWS[row],
    )  # fmt: skip


def child(family: str, library: str, folder: str, row: str, batch: int, source: int, new: int) -> None:
    """Run in a fresh process: load, reset the RSS high-water mark, generate, print the marks (MiB)."""

    def hwm() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc/self/status")

    model = load(family, library, folder)
    ids = inputs(model.config.vocab_size, batch, source)
    load_peak = hwm()
    Path("/proc/self/clear_refs").write_text("5")
    with torch.inference_mode():
        generate(model, ids, new, row)
    print(json.dumps({"load": load_peak, "generate": hwm()}))


def peak_memory(
    args: argparse.Namespace, library: str, folder: str, row: str, batch: int
) -> dict[str, float]:
    spec = f"{args.family},{library},{folder},{row},{batch},{args.source},{args.new}"
    command = [sys.executable, __file__, "--child", spec, "--threads", str(torch.get_num_threads())]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_calls(
    models: dict[str, torch.nn.Module], ids: torch.Tensor, new: int, row: str, repeats: int
) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Median seconds of a ``generate`` call per library, alternating, and each library's sequences."""
    times: dict[str, list[float]] = {name: [] for name in models}
    outputs = {}
    with torch.inference_mode():
        for name, model in models.items():  # warm-up
            outputs[name] = generate(model, ids, new, row)
        for _ in range(repeats):
            for name, model in models.items():
                start = time.perf_counter()
                generate(model, ids, new, row)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}, outputs


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine()
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                platform.machine())  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="bart", choices=sorted(FAMILIES))
    parser.add_argument("--rows", default="beam,greedy")
    parser.add_argument("--inputs", type=int, default=16, help="inputs of the beam-search row")
    parser.add_argument("--source", type=int, default=128, help="tokens per input")
    parser.add_argument("--new", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        family, library, folder, row, batch, source, new = args.child.split(",")
        child(family, library, folder, row, int(batch), int(source), int(new))
        return
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging_off()
    print(
        f"machine: {cpu_name()} ({platform.machine()}), {os.cpu_count()} cores, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, {torch.get_num_threads()} threads; "
        f"load average before: {os.getloadavg()}"
    )
    print(f"{args.family}: {args.source}-token inputs, {args.new} new tokens, median of {args.repeats} calls")
    print(
        f"{'row':7s} {'B':>3s} {'library':>12s} {'s/call':>8s} {'tok/s':>8s} {'ratio':>6s} {'same':>5s} "
        f"{'peak MiB':>9s} {'ratio':>6s}"
    )
    with tempfile.TemporaryDirectory() as folder:
        save_model(args.family, folder)
        models = {"ref": load(args.family, "ref", folder), "ours": load(args.family, "ours", folder)}
        for row in args.rows.split(","):
            batch = args.inputs if row == "beam" else 1
            ids = inputs(models["ours"].config.vocab_size, batch, args.source)
            seconds, outputs = time_calls(models, ids, args.new, row, args.repeats)
            same = bool(torch.equal(outputs["ref"], outputs["ours"]))
            memory = {
                name: {"generate": float("nan")}
                if args.no_memory
                else peak_memory(args, name, folder, row, batch)
                for name in models
            }
            for name, label in (("ref", "transformers"), ("ours", "headway")):
                print(
                    f"{row:7s} {batch:3d} {label:>12s} {seconds[name]:8.2f} {batch * args.new / seconds[name]:8.1f} "
                    f"{seconds['ref'] / seconds[name]:5.2f}x {same!s:>5s} {memory[name]['generate']:9.0f} "
                    f"{memory[name]['generate'] / memory['ref']['generate']:5.2f}x"
                )
    print(f"load average after: {os.getloadavg()}")


def logging_off() -> None:
    """Silence both libraries' warnings for a clean table."""
    import logging

    for name in ("headway", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)


if __name__ == "__main__":
    main()
