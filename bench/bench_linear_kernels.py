"""CPU float32 matrix-product kernels at encoder shapes: which one a Linear layer should call.

For each weight shape (out x in) of MiniLM (384) and bert-base (768), and for M = 16 rows (batch 1 x 16
tokens) and M = 4096 rows (batch 32 x 128), times:
  F.linear       the reference's path (MKL sgemm on x86 builds)
  F.linear T     the same on the weight stored transposed ((in, out) in memory, strides (1, out))
  dnn plain      torch.ops.mkldnn._linear_pointwise on the weight as nn.Linear stores it
  dnn T          the same on the transposed storage
  dnn packed     the same on a copy reordered once by mkldnn._reorder_linear_weight (blocked layout)
  dnn swap       W x^T: the weight as oneDNN's left operand (read as stored), the small result transposed
  mm swap        the same through torch.mm
With ``--stream`` (default) each call uses the next of several distinct weights totalling more than the
L3 cache, as in a model whose layers each have their own weights; ``--cached`` reuses one weight.

Run: .venv/bin/python bench/bench_linear_kernels.py [--cached] [--calls 40] [--rounds 8] [--threads N] [--rows 16 4096]
(with --threads 1 the times are the thread's CPU time, robust on a shared machine)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = [(384, 384), (1536, 384), (384, 1536), (1152, 384), (768, 768), (3072, 768), (768, 3072), (2304, 768)]
STREAM_BYTES = 96 << 20  # more than any L3 this runs on: each call reads its weight from memory


def interleaved_ms(fns: dict, calls: int, rounds: int, clock=time.perf_counter) -> dict[str, float]:
    """Per function, the best of ``rounds`` medians of ``calls`` timed calls, in milliseconds; the functions
    take turns round by round, so that a busy spell of the machine hits them alike. On a shared machine a
    multi-threaded kernel sometimes waits a whole scheduler slice for its second thread: the best median
    of short rounds skips those spells, the median of one long round would not. With one thread,
    ``clock=time.thread_time`` counts only the time the thread ran, whatever else the machine does."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(3):
                fn()
            times = []
            for _ in range(calls):
                start = clock()
                fn()
                times.append(clock() - start)
            best[name] = min(best[name], statistics.median(times))
    return {name: t * 1e3 for name, t in best.items()}


def cycle(items):
    """A function returning the next item each call, round robin."""
    state = {"i": 0}

    def next_item():
        state["i"] = (state["i"] + 1) % len(items)
        return items[state["i"]]

    return next_item


def kernels(x, bias, weights, transposed, packed) -> dict:
    """The timed calls, each taking the next weight of its list on every call."""
    product = torch.ops.mkldnn._linear_pointwise
    w_next, t_next, p_next = cycle(weights), cycle(transposed), cycle(packed)
    return {
        "F.linear": lambda: F.linear(x, w_next(), bias),
        "F.linear T": lambda: F.linear(x, t_next(), bias),
        "dnn plain": lambda: product(x, w_next(), bias, "none", [], ""),
        "dnn T": lambda: product(x, t_next(), bias, "none", [], ""),
        "dnn packed": lambda: product(x, p_next(), bias, "none", [], ""),
        "dnn swap": lambda: dnn_swap(x, w_next(), bias),
        "mm swap": lambda: mm_swap(x, w_next(), bias),
    }


def dnn_swap(x, w, bias):
    """W x^T with the weight as the left operand (read as stored), transposed back, plus the bias."""
    product = torch.ops.mkldnn._linear_pointwise
    return torch.add(product(w, x, None, "none", [], "").t(), bias, out=torch.empty(x.shape[0], w.shape[0]))


def mm_swap(x, w, bias):
    """The same through torch.mm (BLAS)."""
    return torch.add(torch.mm(w, x.t()).t(), bias, out=torch.empty(x.shape[0], w.shape[0]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cached", action="store_true", help="reuse one weight (in cache) instead of streaming")
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rows", type=int, nargs="*", default=[16, 4096])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # one thread: CPU time of that thread, immune to the machine's other load; else wall time
    clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
    product = torch.ops.mkldnn._linear_pointwise
    reorder = torch.ops.mkldnn._reorder_linear_weight
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads ({clock.__name__}); weights {'cached' if args.cached else 'streamed from memory'}")
    names = ["F.linear", "F.linear T", "dnn plain", "dnn T", "dnn packed", "dnn swap", "mm swap"]
    print(f"{'out x in':>11s}{'M':>6s}" + "".join(f"{n:>12s}" for n in names) + "   (ms; ratios to F.linear)")
    torch.manual_seed(0)
    for out_f, in_f in SHAPES:
        copies = 1 if args.cached else max(1, STREAM_BYTES // (out_f * in_f * 4))
        weights = [torch.randn(out_f, in_f) * 0.05 for _ in range(copies)]
        # the same weights stored transposed: (in, out) in memory, seen as (out, in) with strides (1, out)
        transposed = [w.t().contiguous().t() for w in weights]
        packed = [reorder(w, None) for w in weights]
        bias = torch.randn(out_f)
        for rows in args.rows:
            x = torch.randn(rows, in_f)
            expected = F.linear(x, weights[0], bias)
            for w in (weights[0], transposed[0], packed[0]):
                torch.testing.assert_close(product(x, w, bias, "none", [], ""), expected, atol=1e-4, rtol=1e-4)
            for fn in (dnn_swap, mm_swap):
                out = fn(x, weights[0], bias)
                assert out.is_contiguous()
                torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)
            calls = args.calls if rows <= 64 else max(3, args.calls // 20)
            t = interleaved_ms(kernels(x, bias, weights, transposed, packed), calls, args.rounds, clock)
            base = t["F.linear"]
            print(f"{out_f:5d}x{in_f:<5d}{rows:6d}" + "".join(f"{t[n]:7.3f} {t[n] / base:4.2f}" for n in names))


if __name__ == "__main__":
    main()
