"""Integrity problems: what a reading pass reports, and the exception that stops it.

A :class:`Problem` names the member, what was expected and what was found.
:class:`Fatal` carries the problem after which the stream cannot be read
further; the zstd frame walker, the tar header stream and the verifying scan
all raise it, and ``reader.py`` turns what they found into one IntegrityError.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from photonpack.errors import IntegrityError

__all__ = ["Fatal", "Problem", "integrity_error"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Problem:
    """One integrity failure: which member, what was expected, what was found."""

    member: str
    expected: str
    found: str
    label: str = ""  # what the member stands for: "counter.py", "wheel:six-1.16.0-....whl"

    def __str__(self) -> str:
        label = f" ({self.label})" if self.label else ""
        return f"{self.member}{label}: expected {self.expected}, found {self.found}"


class Fatal(Exception):
    """The stream cannot be read further; carries the problem that stopped it."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def integrity_error(what: str, problems: Sequence[Problem], advice: str) -> IntegrityError:
    """One line: the first problem, how many more there are (``verify`` lists them), what to do."""
    more = len(problems) - 1
    rest = f" (and {more} more: 'photonpack verify' lists them all)" if more else ""
    return IntegrityError(f"{what} failed verification: {problems[0]}{rest}; {advice}")
