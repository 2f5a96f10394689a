"""One progress display for long work made of items (the runs of a sweep, the theory checks):
items done / total, the current one, and the overall ETA.

On a terminal it is a tqdm bar on stderr; elsewhere (a log file, CI, a pipe) the bar is off
and each finished item is one plain line through ``log``::

    [sweep 3/8] clean__muon__s0: completed in 41 s (ETA 3 min)
"""

from __future__ import annotations

import sys
import time
from typing import Callable


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """``start(name)`` before an item, ``finish(name, what)`` after it; a context manager."""

    def __init__(self, total: int, label: str, log: Callable[[str], None] = print, file=None):
        from tqdm import tqdm

        self.total, self.label, self.log, self.done = total, label, log, 0
        self.file = file if file is not None else sys.stderr
        self.t0 = time.perf_counter()
        tty = getattr(self.file, "isatty", lambda: False)()
        self.bar = tqdm(total=total, desc=label, unit=unit_of(label), file=self.file, dynamic_ncols=True,
                        disable=not tty, bar_format="{desc} {n_fmt}/{total_fmt} |{bar}| {elapsed}<{remaining}"
                                                    "{postfix}")

    def eta(self) -> float | None:
        """Seconds left at the mean pace of the items done so far (None before the first)."""
        if not self.done:
            return None
        return (time.perf_counter() - self.t0) / self.done * (self.total - self.done)

    def start(self, name: str) -> None:
        self.bar.set_postfix_str(name)

    def finish(self, name: str, what: str, notable: bool = False) -> None:
        """One item done; ``what`` says how (``"completed in 41 s"``); a ``notable`` one (a
        divergence, a failing check) is also written above the bar."""
        self.done += 1
        if self.bar.disable:
            eta = self.eta()
            left = f" (ETA {_duration(eta)})" if eta is not None and self.done < self.total else ""
            self.log(f"[{self.label} {self.done}/{self.total}] {name}: {what}{left}")
            return
        if notable:
            self.bar.write(f"{name}: {what}", file=self.file)
        self.bar.update()

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def unit_of(label: str) -> str:
    return {"sweep": "run", "theory": "check"}.get(label, "item")
