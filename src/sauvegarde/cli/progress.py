"""Progress display on a TTY: files, bytes, throughput and ETA, polled from the engine's counters."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING

from sauvegarde.engine.events import Counters
from sauvegarde.source import Excluder
from sauvegarde.util.units import human_bytes, human_duration

if TYPE_CHECKING:
    from rich.live import Live
    from rich.text import Text


def wanted(quiet: bool, json_: bool) -> bool:
    return not quiet and not json_ and sys.stderr.isatty()


class Progress:
    """A status line on stderr, refreshed a few times a second, while the ``with`` block runs."""

    def __init__(self, counters: Counters, verb: str, enabled: bool) -> None:
        self.counters = counters
        self.verb = verb
        self.enabled = enabled
        self._live: Live | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            # rich (3 MiB) only when a status line is shown: imported after the key derivation's peak
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                self._render(),
                console=Console(stderr=True),
                refresh_per_second=4,
                transient=True,
                get_renderable=self._render,
            )
            self._live.__enter__()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(et, ev, tb)

    def _render(self) -> Text:
        from rich.text import Text

        c = self.counters
        elapsed = max(time.monotonic() - c.started, 1e-6)
        rate = c.bytes_done / elapsed
        parts = [f"{self.verb} {human_duration(elapsed)}", f"{c.files_done} files"]
        if c.total_bytes:
            pct = min(100.0, 100.0 * c.bytes_done / c.total_bytes)
            parts.append(f"{human_bytes(c.bytes_done)} / {human_bytes(c.total_bytes)} {pct:3.0f}%")
        else:
            parts.append(human_bytes(c.bytes_done))
        parts.append(f"{human_bytes(rate)}/s")
        if c.scan_finished and c.total_bytes and rate > 0:
            parts.append(f"ETA {human_duration(max(0.0, (c.total_bytes - c.bytes_done) / rate))}")
        return Text("  ".join(parts), no_wrap=True, overflow="ellipsis")


def start_scanner(paths: Iterable[str], excluder: Excluder, counters: Counters) -> threading.Thread:
    """Count files and bytes under ``paths`` in the background, so progress can show totals and an ETA."""

    def scan() -> None:
        for top in paths:
            stack = [os.fsencode(top)]
            while stack:
                path = stack.pop()
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if os.path.isdir(path) and not os.path.islink(path):
                    try:
                        with os.scandir(path) as it:
                            for e in it:
                                child = path.rstrip(b"/") + b"/" + e.name
                                if not (excluder and excluder.excluded(child)):
                                    stack.append(child)
                    except OSError:
                        pass
                else:
                    counters.add_total(files=1, nbytes=st.st_size)
        counters.scan_finished = True

    t = threading.Thread(target=scan, name="scanner", daemon=True)
    t.start()
    return t
