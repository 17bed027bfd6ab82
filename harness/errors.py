"""The exit codes a run reports to its caller (DESIGN.md), and the errors that carry them."""

from __future__ import annotations

EXIT_PASS = 0
EXIT_VERDICT_FAILED = 1
EXIT_INVALID_INPUT = 2
EXIT_INFRA_FAILED = 3
EXIT_INCONCLUSIVE = 4   # nothing failed, but some verdict was unknown: no pass can be claimed
EXIT_INTERRUPTED = 130  # Ctrl-C/SIGTERM: results.json is written, marked incomplete


class BctestError(Exception):
    exit_code = EXIT_INFRA_FAILED


class InputError(BctestError):
    """Invalid suite, chain pack or argument: one message naming file, field and expectation."""

    exit_code = EXIT_INVALID_INPUT

    def __init__(self, file: str | None, field: str | None, expected: str):
        self.file, self.field, self.expected = file, field, expected
        where = " ".join(p for p in (file, f"at {field}" if field else None) if p)
        super().__init__(f"{where}: {expected}" if where else expected)


class InfraError(BctestError):
    """The system under test or the infrastructure failed (a node never ready, engine down...)."""

    exit_code = EXIT_INFRA_FAILED
