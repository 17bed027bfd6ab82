"""Live progress of a run: phase, elapsed, target vs achieved send rate, commits, p99."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live
from rich.table import Table


@dataclass
class Snapshot:
    phase: str
    elapsed: float
    target_rate: float
    sent: int
    committed: int
    failed: int
    late: int
    p99_ms: float | None
    unit: str = "tx"            # "q" in the query phase
    done: str = "committed"     # "answered" in the query phase


RATE_WINDOW = 5.0  # seconds over which the live rates are averaged


class Progress:
    """Rolling one-second rates from cumulative counters; a live table on a terminal,
    a plain line every few seconds otherwise (CI logs)."""

    def __init__(self, console: Console, plain_every: float = 5.0):
        self.console = console
        self.history: deque[tuple[float, int, int]] = deque(maxlen=256)
        self.live: Live | None = None
        self.plain_every = plain_every
        self._last_plain = 0.0

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def _rates(self, snap: Snapshot) -> tuple[float, float]:
        now = time.monotonic()
        self.history.append((now, snap.sent, snap.committed))
        # Five seconds: commits arrive a block at a time, so a shorter window mostly
        # measures where block boundaries fall, not the rate.
        while len(self.history) > 2 and now - self.history[0][0] > RATE_WINDOW:
            self.history.popleft()
        t, sent, committed = self.history[0]
        span = now - t
        if span <= 0:
            return 0.0, 0.0
        return (snap.sent - sent) / span, (snap.committed - committed) / span

    def update(self, snap: Snapshot) -> None:
        send_rate, commit_rate = self._rates(snap)
        p99 = f"{snap.p99_ms:.0f} ms" if snap.p99_ms is not None else "-"
        if self.live is not None:
            table = Table(title="bctest run", show_header=True, expand=False)
            u, done = snap.unit, snap.done
            for column in ("phase", "elapsed", f"target {u}/s", f"sent {u}/s", f"{done} {u}/s",
                           "sent", done, "failed", "late sends", "p99"):
                table.add_column(column, justify="right")
            table.add_row(snap.phase, f"{snap.elapsed:.0f} s", f"{snap.target_rate:g}",
                          f"{send_rate:.0f}", f"{commit_rate:.0f}", str(snap.sent),
                          str(snap.committed), str(snap.failed), str(snap.late), p99)
            self.live.update(table)
        elif time.monotonic() - self._last_plain >= self.plain_every:
            self._last_plain = time.monotonic()
            self.console.print(
                f"[{snap.phase} {snap.elapsed:5.0f}s] target {snap.target_rate:g} {snap.unit}/s, "
                f"sent {send_rate:.0f} {snap.unit}/s, {snap.done} {commit_rate:.0f} {snap.unit}/s, "
                f"total {snap.sent} sent / {snap.committed} {snap.done} / {snap.failed} failed, "
                f"late {snap.late}, p99 {p99}", highlight=False, markup=False)
