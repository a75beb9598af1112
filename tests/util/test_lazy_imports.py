"""Lazy imports: NumPy, rich, cryptography, zstandard and pyfastcdc come after the key derivation, so Argon2id's
64 MiB sit on a smaller process."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sauvegarde.crypto.kdf import KdfParams
from sauvegarde.repository import Repository
from sauvegarde.storage.local import LocalStorage


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_lazy_module_imports_on_first_access_from_many_threads() -> None:
    out = run_python(
        """
        import sys, threading
        from sauvegarde.util.lazy import lazy_module
        assert "fractions" not in sys.modules
        lazy = lazy_module("fractions")
        assert "fractions" not in sys.modules
        start = threading.Barrier(8)
        got = []
        def use():
            start.wait()
            got.append(lazy.Fraction(1, 3) + lazy.Fraction(1, 6))
        threads = [threading.Thread(target=use) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        import fractions
        assert got == [fractions.Fraction(1, 2)] * 8, got
        assert lazy.Fraction is fractions.Fraction
        print("ok")
        """
    )
    assert out == "ok"


def test_cli_import_leaves_the_heavy_modules_out() -> None:
    out = run_python(
        """
        import sys
        import sauvegarde.cli.main
        heavy = {"numpy", "rich", "cryptography", "zstandard", "pyfastcdc"}
        print(sorted({m.split(".")[0] for m in sys.modules} & heavy))
        """
    )
    assert out == "[]"


_SPY = """
import sys
from sauvegarde.crypto import kdf
seen = []
real = kdf.argon2id
def spy(*args):
    seen.append(sorted(m for m in {modules!r} if m in sys.modules))
    return real(*args)
kdf.argon2id = spy
"""


def loaded_at_each_derivation(modules: tuple[str, ...], code: str) -> tuple[list[str], list[list[str]]]:
    """Run ``code`` with Argon2id spied on: the lines it printed and, for each derivation, which of ``modules``
    were imported when it started."""
    out = run_python(_SPY.format(modules=modules) + textwrap.dedent(code))
    *lines, seen = out.splitlines()
    return lines, ast.literal_eval(seen)


def cli_code(*argv: str) -> str:
    """Code that runs the ``sauvegarde`` program (its entry, as the installed command does) with ``argv``; the
    derivations seen are printed by an ``atexit`` handler, which the program's exit runs."""
    return f"""
        import atexit
        atexit.register(lambda: print(seen))
        sys.argv = ["sauvegarde", *{list(argv)!r}]
        from sauvegarde.cli.entry import run
        run()
        """


def test_key_is_derived_before_numpy_is_imported(tmp_path: Path) -> None:
    Repository.init(LocalStorage(str(tmp_path / "repo")), b"pw", KdfParams.cheap()).close()
    lines, seen = loaded_at_each_derivation(
        ("numpy",),
        f"""
        from sauvegarde.repository import Repository
        from sauvegarde.storage.local import LocalStorage
        repo = Repository.open(LocalStorage({str(tmp_path / "repo")!r}), b"pw")
        print("numpy" in sys.modules, len(repo.index))
        print(seen)
        """,
    )
    assert (lines, seen) == (["True 0"], [[]])


def test_the_cli_keeps_openblas_from_starting_threads() -> None:
    """NumPy's OpenBLAS starts a spinning thread per extra core unless told otherwise before NumPy is imported; the
    CLI tells it (unless the user did)."""
    code = """
        import os, sys
        from sauvegarde.cli.main import main
        sys.argv = ["sauvegarde", "--help"]
        try:
            main()
        except SystemExit:
            pass
        import numpy
        print(os.environ.get("OPENBLAS_NUM_THREADS"), len(os.listdir("/proc/self/task")))
        """
    assert run_python(code).splitlines()[-1] == "1 1"


def test_a_guarded_backup_records_its_verdict_without_the_plan_loader() -> None:
    """With no plan file, where the state database is needs no TOML parser or plan model (10 ms of imports)."""
    out = run_python(
        """
        import os, sys, tempfile
        os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp()
        os.environ.pop("SAUVEGARDE_PLAN", None)
        from sauvegarde.cli.guard import record_verdict
        from sauvegarde.cli.planfile import state_path
        state_path()
        print(sorted(m for m in ("sauvegarde.plan.load", "tomllib", "pydantic") if m in sys.modules))
        """
    )
    assert out == "[]"


def test_the_repository_key_is_derived_before_the_command_and_repository_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local repository, a password from the environment: Argon2id runs once, before click, the command's module
    and the repository's, the storage's, and even typing are imported (on a smaller process); the repository then
    opens with that key."""
    Repository.init(LocalStorage(str(tmp_path / "repo")), b"pw", kdf=KdfParams.cheap()).close()
    monkeypatch.setenv("SAUVEGARDE_PASSWORD", "pw")
    for argv in (
        ("-r", str(tmp_path / "repo"), "snapshots", "--json"),
        ("snapshots", "--json", f"--repo={tmp_path / 'repo'}"),
    ):
        lines, seen = loaded_at_each_derivation(
            (
                "click",
                "sauvegarde.cli.snapshots",
                "sauvegarde.repository.repo",
                "sauvegarde.storage",
                "ctypes",
                "msgpack",
                "blake3",
                "argon2",
                "typing",
                "dataclasses",
                "threading",
            ),
            cli_code(*argv),
        )
        assert (lines[0], seen) == ("[]", [[]])  # no snapshots; one derivation, ahead


def test_a_password_command_is_run_once_and_the_key_derived_once(tmp_path: Path) -> None:
    """A password from a command is not asked for ahead (the command runs once); the derivation then runs when the
    repository opens, once."""
    Repository.init(LocalStorage(str(tmp_path / "repo")), b"pw", kdf=KdfParams.cheap()).close()
    runs = tmp_path / "runs"
    _lines, seen = loaded_at_each_derivation(
        ("sauvegarde.repository.repo",),
        cli_code("-r", str(tmp_path / "repo"), "--password-command", f"sh -c 'echo x >> {runs}; echo pw'", "snapshots"),
    )
    assert seen == [["sauvegarde.repository.repo"]]
    assert runs.read_text() == "x\n"


def test_package_names_come_from_their_submodules_on_first_use() -> None:
    """sauvegarde.crypto and sauvegarde.repository import a name's submodule when the name is first asked for
    (so that the key derivation's module can be imported alone); an unknown name is an AttributeError."""
    out = run_python(
        """
        import sys
        import sauvegarde.crypto.kdf
        print("sauvegarde.crypto.aead" in sys.modules)
        from sauvegarde.crypto import Cipher
        import sauvegarde.crypto as crypto
        print("sauvegarde.crypto.aead" in sys.modules, Cipher is sys.modules["sauvegarde.crypto.aead"].Cipher)
        print("Cipher" in vars(crypto))
        try:
            crypto.Nothing
        except AttributeError as exc:
            print(exc)
        """
    )
    assert out.splitlines() == ["False", "True True", "True", "module 'sauvegarde.crypto' has no attribute 'Nothing'"]
