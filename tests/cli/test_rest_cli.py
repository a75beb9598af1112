"""The CLI end to end on ``rest:`` repositories served by a private ``sauvegarde serve``: init, backup, restore,
check and forget --prune; an append-only server refusing forget --prune with one clear line while backups go on
(then the provider prunes the directory itself); and ten clients backing up at once."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli_harness import CHEAP_KDF, Cli
from cli_trees import assert_same_tree, random_bytes, restored, write_file

from rest_server import RestServer


def _source(root: Path, seed: int, files: int = 6, size: int = 300_000) -> Path:
    root.mkdir(parents=True)
    (root / "sub").mkdir()
    for i in range(files):
        write_file(root / ("sub" if i % 2 else ".") / f"f{i}.bin", random_bytes(size + i, seed * 100 + i))
    write_file(root / "dup.bin", random_bytes(size, seed * 100))  # same content as f0.bin
    return root


def _count_snapshots(cli: Cli, env: dict[str, str]) -> int:
    return len(cli.json("snapshots", env=env))


def test_init_backup_restore_check_forget_prune_on_rest(cli: Cli, rest_server: RestServer, tmp_path: Path) -> None:
    env = {"SAUVEGARDE_REPOSITORY": rest_server.url("cli-e2e")}
    src = _source(tmp_path / "src", seed=1)
    res = cli.run("init", *CHEAP_KDF, env=env)
    assert b"alice-secret" not in res.stdout + res.stderr
    cli.run("backup", src, env=env)
    write_file(src / "new.bin", random_bytes(200_000, 99))
    cli.run("backup", src, env=env)
    cli.run("restore", "latest", "--target", tmp_path / "out", env=env)
    assert_same_tree(src, restored(tmp_path / "out", src))
    cli.run("check", "--read-data", env=env)
    cli.run("forget", "--keep-last", "1", "--prune", env=env)
    assert _count_snapshots(cli, env) == 1
    cli.run("check", "--read-data", env=env)
    assert (rest_server.data / "cli-e2e" / "config").is_file()  # the served directory is a repository


def test_append_only_server_refuses_prune_and_keeps_backing_up(
    cli: Cli, rest_server_factory: Callable[..., RestServer], tmp_path: Path
) -> None:
    server = rest_server_factory("--append-only")
    env = {"SAUVEGARDE_REPOSITORY": server.url("ao")}
    src = _source(tmp_path / "src", seed=2)
    cli.run("init", *CHEAP_KDF, env=env)
    cli.run("backup", src, env=env)
    write_file(src / "f0.bin", random_bytes(100_000, 7))
    cli.run("backup", src, env=env)

    res = cli.run("forget", "--keep-last", "1", "--prune", env=env, check_exit=1)
    err = res.stderr.decode().strip().splitlines()
    assert len(err) == 1, err
    assert "append-only" in err[0] and "pruning belong to the server side" in err[0], err[0]
    assert "alice-secret" not in err[0]
    assert _count_snapshots(cli, env) == 2

    write_file(src / "later.bin", random_bytes(50_000, 8))
    cli.run("backup", src, env=env)  # backups go on
    cli.run("restore", "latest", "--target", tmp_path / "out", env=env)
    assert_same_tree(src, restored(tmp_path / "out", src))
    assert _count_snapshots(cli, env) == 3

    # the provider prunes on the server side, on the directory itself
    direct = {"SAUVEGARDE_REPOSITORY": str(server.data / "ao")}
    cli.run("forget", "--keep-last", "1", env=direct)
    cli.run("prune", env=direct)
    assert _count_snapshots(cli, env) == 1
    cli.run("check", "--read-data", env=env)


def test_ten_clients_back_up_at_once(cli: Cli, rest_server: RestServer, tmp_path: Path) -> None:
    """Eight clients to their own repositories and two to a shared one: all complete and check clean."""
    jobs: list[tuple[dict[str, str], Path]] = []
    for i in range(8):
        env = {"SAUVEGARDE_REPOSITORY": rest_server.url(f"load-{i}", user=f"user{i}")}
        jobs.append((env, _source(tmp_path / f"src{i}", seed=10 + i, files=4)))
    shared = [rest_server.url("load-shared", user=u) for u in ("alice", "bob")]
    for j, url in enumerate(shared):
        jobs.append(({"SAUVEGARDE_REPOSITORY": url}, _source(tmp_path / f"shared{j}", seed=30 + j, files=4)))
    repos = [env for env, _ in jobs[:9]]

    def all_at_once(make_args: Callable[[dict[str, str], Path], list[Any]], items: list[tuple[dict[str, str], Path]]):
        start = time.monotonic()
        procs = [
            cli.popen(*make_args(env, src), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for env, src in items
        ]
        for p in procs:
            _out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err.decode(errors="replace")
            assert b"Traceback" not in err
        return time.monotonic() - start

    all_at_once(lambda env, src: ["init", *CHEAP_KDF], [(env, Path()) for env in repos])
    took = all_at_once(lambda env, src: ["backup", src], jobs)
    all_at_once(lambda env, src: ["check", "--read-data"], [(env, Path()) for env in repos])
    assert _count_snapshots(cli, {"SAUVEGARDE_REPOSITORY": shared[0]}) == 2
    print(f"ten concurrent backups through the server: {took:.1f} s")
