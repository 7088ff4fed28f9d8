"""Problems the fuzzing finds in files outside the fuzzing work's reach, each with its owner and a reproduction.

The hypothesis suites tolerate an outcome that matches one of these (and only these); the campaign counts
them like any other and lists them under its table. Each entry has a strict-xfail reproduction in
tests/fuzz/test_fuzz_findings.py. Remove both once the owner has fixed it: the suites then hold the fix in
place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.fuzz.targets import Outcome


@dataclass(frozen=True)
class KnownIssue:
    target: str
    pattern: str  # searched in the outcome's detail
    owner: str  # the file where the fix belongs
    reproduction: str


# Empty since the fixes of issue #11's last campaign (tests/fuzz/test_fuzz_findings.py holds each of them).
KNOWN_ISSUES: tuple[KnownIssue, ...] = ()


def known_issue(target: str, outcome: Outcome) -> KnownIssue | None:
    """The known issue ``outcome`` of ``target`` is an instance of, if any."""
    for issue in KNOWN_ISSUES:
        applies = issue.target in ("*", target) or (
            issue.target.endswith("*") and target.startswith(issue.target[:-1])
        )
        if applies and re.search(issue.pattern, outcome.detail):
            return issue
    return None
