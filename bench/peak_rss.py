"""Peak resident memory of a process (and its children) while a block runs, for the benchmarks."""

from __future__ import annotations

import threading

import psutil


class PeakRss:
    """Peak resident memory of a process (and its children) while the block runs, above the level at entry."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.process, self.interval = psutil.Process(pid), interval
        self.start = self.peak = 0
        self._stop = threading.Event()

    def _rss(self) -> int:
        processes = [self.process, *self.process.children(recursive=True)]
        return sum(p.memory_info().rss for p in processes if p.is_running())

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRss:
        self.start = self.peak = self._rss()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth_gb(self) -> float:
        return (self.peak - self.start) / 1e9
