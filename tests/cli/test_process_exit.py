"""How the ``sauvegarde`` process ends (sauvegarde.cli.entry.run): what a normal exit does that matters still happens
(non-daemon threads awaited, thread pools ended, atexit handlers run, output flushed, the exit code kept) before
the process leaves without tearing the interpreter down."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sauvegarde.cli.entry import _exit_code


def _run(code: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), *args], capture_output=True, text=True, timeout=60, check=False
    )


_SETUP = """
    import atexit, sys, threading, time
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    out = Path(sys.argv[1])

    def late():
        time.sleep(0.3)
        (out / "thread").write_text("done")

    threading.Thread(target=late).start()  # not a daemon: the exit waits for it
    pool = ThreadPoolExecutor(2)  # never shut down: its idle threads must not hold the exit
    pool.submit(time.sleep, 0.1)
    atexit.register(lambda: (out / "atexit").write_text("ran"))
    sys.stdout.write("unflushed ")  # a pipe: block-buffered, written only by the exit's flush
    from sauvegarde.cli.entry import run
    sys.argv = ["sauvegarde", *sys.argv[2:]]
    run()
"""


def test_a_command_ends_as_a_normal_exit_would_without_tearing_down(tmp_path: Path) -> None:
    done = _run(_SETUP, tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("unflushed Usage: sauvegarde"), done.stdout[:200]
    assert (tmp_path / "thread").read_text() == "done"
    assert (tmp_path / "atexit").read_text() == "ran"


def test_the_exit_code_and_error_line_are_kept(tmp_path: Path) -> None:
    done = _run(_SETUP, tmp_path, "no-such-command")
    assert done.returncode == 2
    assert done.stderr.startswith("sauvegarde: error: No such command"), done.stderr
    assert (tmp_path / "thread").exists() and (tmp_path / "atexit").exists()


def test_system_exit_codes_read_as_the_interpreter_reads_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(None) == 0
    assert _exit_code(12) == 12
    assert _exit_code(256 + 3) == 3
    assert capsys.readouterr().err == ""
    assert _exit_code("a message") == 1
    assert capsys.readouterr().err == "a message\n"
