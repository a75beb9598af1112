"""Lazy imports: NumPy, rich, cryptography, zstandard and pyfastcdc come after the key derivation, so Argon2id's
64 MiB sit on a smaller process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

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


def test_key_is_derived_before_numpy_is_imported(tmp_path: Path) -> None:
    Repository.init(LocalStorage(str(tmp_path / "repo")), b"pw", KdfParams.cheap()).close()
    out = run_python(
        f"""
        import sys
        from sauvegarde.crypto import kdf
        from sauvegarde.repository import Repository
        from sauvegarde.storage.local import LocalStorage
        seen = []
        real = kdf.argon2id
        def spy(*args):
            seen.append("numpy" in sys.modules)
            return real(*args)
        kdf.argon2id = spy
        repo = Repository.open(LocalStorage({str(tmp_path / "repo")!r}), b"pw")
        print(seen, "numpy" in sys.modules, len(repo.index))
        """
    )
    assert out == "[False] True 0"


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
