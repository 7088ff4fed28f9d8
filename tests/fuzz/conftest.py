"""Shared set-up of the hypothesis suites: the tiny checkpoints (built once per session) and the budget.

Each suite runs a fixed, derandomized set of examples sized to keep the whole fuzz directory near a minute
on two cores. ``HEADWAY_FUZZ_EXAMPLES=<factor>`` multiplies every suite's examples (``=10`` for a deeper
run), and ``HEADWAY_FUZZ_RANDOM=1`` draws new examples each run instead of the fixed ones.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.fuzz.env import Env, build
from tests.fuzz.known_issues import known_issue
from tests.fuzz.targets import Chooser, run_case

SCALE = float(os.environ.get("HEADWAY_FUZZ_EXAMPLES", "1"))


def fuzz_settings(examples: int, *, deadline_s: float = 10.0) -> settings:
    """``examples`` (times HEADWAY_FUZZ_EXAMPLES) derandomized examples, each under ``deadline_s`` seconds."""
    return settings(
        max_examples=max(1, round(examples * SCALE)),
        deadline=timedelta(seconds=deadline_s),
        derandomize=os.environ.get("HEADWAY_FUZZ_RANDOM") != "1",
        database=None,  # nothing written into the working tree
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
        print_blob=True,
    )


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return build(tmp_path_factory.mktemp("fuzz-env"))


def check_target(target: str, env: Env, data) -> None:
    """One hypothesis example of ``target``: success, or a clear error (or a known issue of another file)."""
    with tempfile.TemporaryDirectory() as scratch:
        outcome, case = run_case(target, Chooser(data), env, Path(scratch))
    if outcome.status in ("ok", "clear") or known_issue(target, outcome):
        return
    pytest.fail(
        f"{target}: {outcome.status}: {outcome.detail}\ncase: {'; '.join(case.description)}", pytrace=False
    )
