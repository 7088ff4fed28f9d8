"""sentence-transformers' own tests on headway: the CI-sized part of ``make conformance`` (see run.py).

Runs ``run.CI_SUBSET`` through the shim on headway only (the real library's side is what
``make conformance`` compares against) and checks that at least ``CI_PASSING`` cases pass: a ratchet,
raised when headway passes more and never lowered.
"""

from __future__ import annotations

from tests.conformance import run

# Cases of run.CI_SUBSET passing on headway when last recorded (all of those passing on the real library).
CI_PASSING = 168


def test_ci_subset_passes_on_headway(tmp_path):
    report = run.main(
        [
            "--subset",
            "ci",
            "--only",
            "headway",
            "--work",
            str(tmp_path),
            "--report",
            str(tmp_path / "report.json"),
        ]
    )
    passed = report["totals"]["headway"]
    print(
        f"sentence-transformers conformance, CI subset: {passed} cases pass on headway (recorded: {CI_PASSING})"
    )
    failures = report.get("headway_failures", {})
    assert passed >= CI_PASSING, (
        f"{passed} cases of the CI subset pass on headway, fewer than the recorded {CI_PASSING}; failing now: "
        + "; ".join(
            f"{case}: {error}"
            for case, error in sorted(failures.items())
            if run.out_of_scope_reason(case) is None
        )
    )
