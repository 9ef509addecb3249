"""One live progress line for a sweep: runs done / total, failures, rate and ETA.

On a terminal the line rewrites itself; elsewhere (logs, CI) it prints a line at most
every `interval_s` seconds, and always a last one.
"""
from __future__ import annotations

import sys
import time
from typing import Mapping, TextIO

# What each trial reports (cumulative); "finished" not "done": Tune reads a reported `done`
# as "stop this trial".
COUNTS = ("finished", "failed", "diverged", "skipped")


class Progress:
    def __init__(self, sweep: str, total: int, already_done: int = 0, stream: TextIO | None = None,
                 interval_s: float = 5.0):
        self.sweep = sweep
        self.total = total
        self.already_done = already_done
        self.stream = stream or sys.stderr
        self.interval_s = interval_s
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._per_trial: dict[str, Mapping] = {}
        self._start = time.time()
        self._last_print = 0.0
        self._last_line = ""

    # Tune pickles its callbacks with the experiment state; a stream does not pickle.
    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "stream"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, stream=sys.stderr)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(COUNTS, 0)
        for c in self._per_trial.values():
            for k in out:
                out[k] += int(c.get(k, 0) or 0)
        return out

    def update(self, trial_id: str, counts: Mapping) -> None:
        """Record a trial's cumulative counts (a retried trial restarts and reports again)."""
        self._per_trial[trial_id] = {k: counts.get(k, 0) for k in COUNTS}
        now = time.time()
        if self.tty or now - self._last_print >= self.interval_s:
            self._print(final=False)
            self._last_print = now

    def line(self) -> str:
        c = self.counts()
        done = self.already_done + c["finished"]
        fresh = c["finished"] - c["skipped"]
        elapsed = time.time() - self._start
        rate = fresh / elapsed if elapsed > 0 else 0.0
        remaining = self.total - done
        eta = f"{_fmt(remaining / rate)}" if rate > 0 and remaining > 0 else ("0:00" if remaining <= 0 else "?")
        return (f"[{self.sweep}] {done}/{self.total} runs | failed {c['failed']} | diverged {c['diverged']}"
                f" | {rate:.2f} runs/s | elapsed {_fmt(elapsed)} | ETA {eta}")

    def _print(self, final: bool) -> None:
        self._last_line = self.line()
        if self.tty:
            self.stream.write("\r\033[K" + self._last_line + ("\n" if final else ""))
        else:
            self.stream.write(self._last_line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty or self._last_line != self.line():
            self._print(final=True)


def _fmt(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
