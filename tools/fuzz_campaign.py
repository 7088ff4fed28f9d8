"""The long fuzz campaign (``make fuzz``): thousands of drawn cases over every parser and entry point, run in
child processes so that crashes, hangs and memory blow-ups are counted instead of ending the run.

The cases are the hypothesis suites' targets (tests/fuzz/targets.py) drawn from ``random.Random(seed)``,
with the mid-sized numbers only a process limit contains (``num_hidden_layers: 10**5``...) added. A worker
process runs one target's seeds one after another under ``resource.setrlimit`` (address space
``--memory-gb``, no core files) and reports each case on its stdout; the parent gives each case
``--timeout`` seconds. A case whose worker dies is a crash (a MemoryError or a failed allocation is a
blow-up), one still running at its timeout is a hang; the worker is then replaced and the run goes on.

    python tools/fuzz_campaign.py                       # 2,600 cases, table into RELIABILITY.md
    python tools/fuzz_campaign.py --cases 200 --no-write --targets "model forward" encode
    python tools/fuzz_campaign.py --label before --src /path/to/old/src   # another headway, same cases

Every non-clear outcome is listed with its target and seed; ``--replay TARGET:SEED`` runs one case in this
process and prints what it did.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FINDINGS = 40  # kinds of non-clear outcome listed in the report
STATUSES = ("ok", "clear", "unclear", "silent", "crash", "hang", "blow-up")
COLUMNS = ("cases", "ok", "clear", "unclear", "silent", "crash", "hang", "blow-up")
BEGIN, END = "<!-- fuzz-campaign:{label}:begin -->", "<!-- fuzz-campaign:{label}:end -->"


# -- worker -------------------------------------------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    """Run ``args.seeds`` of ``args.target``, one JSON line per case on stdout."""
    import resource

    limit = int(args.memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    import gc
    import logging
    import random
    import warnings

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(1)
    from tests.fuzz.env import build
    from tests.fuzz.targets import Chooser, run_case

    env = build(args.env)
    env.max_build_params = None  # the process limit contains what a big config builds
    # Results go to the original stdout; anything a library prints (the tokenizers library writes to fd 1)
    # goes to stderr, which the parent keeps in a file.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    for seed in map(int, args.seeds.split(",")):
        out.write(json.dumps({"start": seed}) + "\n")
        out.flush()
        with tempfile.TemporaryDirectory() as scratch:
            outcome, case = run_case(
                args.target, Chooser(random.Random(seed)), env, Path(scratch), extra=True
            )
        gc.collect()  # freeing what a case built (a model of 10**6 layers) is part of the case's time
        record = {
            "seed": seed,
            "status": outcome.status,
            "detail": outcome.detail,
            "case": "; ".join(case.description)[:300],
        }
        out.write(json.dumps(record) + "\n")
        out.flush()


# -- parent -------------------------------------------------------------------------------------------
def run_target(target: str, seeds: list[int], args: argparse.Namespace, env_dir: Path) -> list[dict]:
    """Every seed of ``target`` through workers, replacing any that crash or hang."""
    results: list[dict] = []
    pending = list(seeds)
    environ = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (args.src, str(ROOT)) if p),
    }
    while pending:
        command = [
            sys.executable,
            __file__,
            "--worker",
            "--target",
            target,
            "--env",
            str(env_dir),
            "--memory-gb",
            str(args.memory_gb),
            "--seeds",
            ",".join(map(str, pending)),
        ]
        log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed below; a pipe could fill and block the worker
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=log,
            env=environ,
            cwd=ROOT,
            start_new_session=True,
        )
        lines = _Lines(child.stdout.fileno())
        current, deadline, started, last = None, time.monotonic() + args.startup, False, None
        while True:
            line = lines.next(deadline)
            if line is None:  # a hang (or a worker that never came up)
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                if current is None and last is None:
                    raise RuntimeError(f"worker for {target} did not start: {_tail(log, 2000)}")
                if current is None:  # stuck after its last answer: that case's aftermath
                    last.update(
                        status="hang",
                        detail=f"did not finish within {args.timeout} s of its answer "
                        f"({last['status']}: {last['detail'][:200]})",
                    )
                    break
                results.append(
                    {"seed": current, "status": "hang", "detail": f"no answer in {args.timeout} s"}
                )
                pending.remove(current)
                break
            if not line:  # the worker died
                code = child.wait()
                error = _tail(log, 600)
                if current is None:  # between cases: start another worker for the rest
                    if not started:
                        raise RuntimeError(f"worker for {target} failed to start (exit {code}): {error}")
                    break
                memory = code == -signal.SIGKILL or re.search(r"bad_alloc|MemoryError|Cannot allocate", error)
                results.append(
                    {
                        "seed": current,
                        "status": "blow-up" if memory else "crash",
                        "detail": f"exit {code} ({_signal_name(code)}): {error.strip()[-300:]}",
                    }
                )
                pending.remove(current)
                break
            started = True
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "start" in record:
                current, deadline = record["start"], time.monotonic() + args.timeout
            else:
                results.append(record)
                last = record
                pending.remove(record["seed"])
                current, deadline = None, time.monotonic() + args.timeout
                if not pending:
                    child.wait()
                    break
        log.close()
        child.stdout.close()
    return results


class _Lines:
    """Lines of a pipe read without buffering behind ``select``'s back (a buffered reader would hold a line
    that ``select`` then never reports)."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buffer = fd, b""

    def next(self, deadline: float) -> str | None:
        """The next line; "" at the end of the stream; None when none came before ``deadline``."""
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return ""
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode("utf-8", "replace") + "\n"


def _tail(log, size: int) -> str:
    log.flush()
    log.seek(0)
    return log.read()[-size:]


def _signal_name(code: int) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            pass
    return "exit"


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in _run(["lscpu"]).splitlines()
            if line.startswith("Model name")
        ),
        platform.processor() or "unknown CPU",
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB; Python {platform.python_version()}"


def _run(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""


def table(results: dict[str, list[dict]]) -> tuple[str, dict[str, int]]:
    lines = ["| target | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    totals: collections.Counter = collections.Counter()
    for target, records in results.items():
        counts = collections.Counter(r["status"] for r in records)
        counts["cases"] = len(records)
        totals.update(counts)
        lines.append(f"| {target} | " + " | ".join(f"{counts[c]:,}" for c in COLUMNS) + " |")
    lines.append("| **all** | " + " | ".join(f"**{totals[c]:,}**" for c in COLUMNS) + " |")
    return "\n".join(lines), dict(totals)


def findings(results: dict[str, list[dict]]) -> str:
    """Each distinct non-clear outcome once (first seed), with how often it came."""
    from tests.fuzz.known_issues import known_issue
    from tests.fuzz.targets import Outcome

    groups: dict[tuple[str, str, str], list[dict]] = {}
    for target, records in results.items():
        for record in records:
            if record["status"] in ("ok", "clear"):
                continue
            signature = re.sub(r"/tmp/\S+|0x[0-9a-f]+|\d{3,}", "…", record["detail"])[:110]
            groups.setdefault((target, record["status"], signature), []).append(record)
    lines = []
    for (target, status, _), records in sorted(groups.items(), key=lambda item: -len(item[1])):
        first = records[0]
        issue = known_issue(target, Outcome(status, first["detail"]))
        owner = f" — known, owner {issue.owner}" if issue else ""
        case = f"; case: {first.get('case', '')[:160]}" if first.get("case") else ""
        detail = first["detail"][:220].replace("|", "/").replace("\n", " ")
        lines.append(f"- {target}, {status}, {len(records)}x (seed {first['seed']}){owner}: {detail}{case}")
    if len(lines) > MAX_FINDINGS:
        lines = [*lines[:MAX_FINDINGS], f"- … and {len(lines) - MAX_FINDINGS} more kinds"]
    return "\n".join(lines) or "- none"


def write_report(path: Path, label: str, text: str) -> None:
    begin, end = BEGIN.format(label=label), END.format(label=label)
    current = path.read_text(encoding="utf-8") if path.exists() else "# Reliability\n"
    block = f"{begin}\n{text}\n{end}"
    if begin in current and end in current:
        current = current[: current.index(begin)] + block + current[current.index(end) + len(end) :]
    else:
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(current, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2600, help="cases in all, shared evenly by the targets")
    parser.add_argument("--targets", nargs="*", help="only these targets (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument(
        "--timeout", type=float, default=20.0, help="seconds a case may take before it is a hang"
    )
    parser.add_argument("--startup", type=float, default=180.0, help="seconds a worker may take to start")
    parser.add_argument("--memory-gb", type=float, default=6.0, help="address-space limit of a worker")
    parser.add_argument("--label", default="after", help="the report block to write (after, before, ...)")
    parser.add_argument(
        "--src", default="", help="put this folder first on the workers' path (another headway)"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "RELIABILITY.md")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--records", type=Path, help="also write every case's outcome here (JSON)")
    parser.add_argument("--replay", help="TARGET:SEED: run one case here and print its outcome")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--env", help=argparse.SUPPRESS)
    parser.add_argument("--seeds", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.src:
        sys.path.insert(0, args.src)
    if args.worker:
        worker(args)
        return
    from tests.fuzz.targets import TARGETS

    if args.replay:
        import random

        from tests.fuzz.env import build
        from tests.fuzz.targets import Chooser, run_case

        target, seed = args.replay.rsplit(":", 1)
        with tempfile.TemporaryDirectory() as folder:
            env = build(Path(folder) / "env")
            env.max_build_params = None
            outcome, case = run_case(target, Chooser(random.Random(int(seed))), env, Path(folder), extra=True)
        print(f"{target}:{seed}: {outcome.status}: {outcome.detail}\ncase: {'; '.join(case.description)}")
        return

    targets = args.targets or list(TARGETS)
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {list(TARGETS)}")
    per_target = max(1, args.cases // len(targets))
    started = time.monotonic()
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as folder:
        env_dir = Path(folder) / "env"
        subprocess.run(
            [sys.executable, "-c", f"from tests.fuzz.env import build; build({str(env_dir)!r})"],
            cwd=ROOT,
            check=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (args.src, str(ROOT)) if p)},
        )
        for target in targets:
            seeds = list(range(args.seed, args.seed + per_target))
            t0 = time.monotonic()
            results[target] = sorted(run_target(target, seeds, args, env_dir), key=lambda r: r["seed"])
            counts = collections.Counter(r["status"] for r in results[target])
            print(f"{target}: {dict(counts)} in {time.monotonic() - t0:.0f} s", flush=True)
    if args.records:
        args.records.write_text(json.dumps(results, indent=1), encoding="utf-8")
    body, totals = table(results)
    minutes = (time.monotonic() - started) / 60
    text = (
        f"### Fuzz campaign: {args.label}\n\n"
        f"{datetime.date.today().isoformat()}, {machine()}; headway from {args.src or 'this tree'}; "
        f"{totals['cases']:,} cases ({per_target} per target, seeds {args.seed}..{args.seed + per_target - 1}), "
        f"timeout {args.timeout:g} s, address space {args.memory_gb:g} GiB per worker; {minutes:.0f} min.\n\n"
        f"{body}\n\nWhat was not ok or clear (first seed of each kind; replay with "
        f"`python tools/fuzz_campaign.py --replay 'TARGET:SEED'`):\n\n{findings(results)}\n"
    )
    print(text)
    if not args.no_write:
        write_report(args.output, args.label, text)
        print(f"written to {args.output}")


if __name__ == "__main__":
    main()
