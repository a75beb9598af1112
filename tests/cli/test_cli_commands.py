"""ls, dump, backup --stdin, diff, snapshots and the --json output of every command, through the real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cli_harness import CHEAP_KDF, Cli
from cli_trees import MiB, random_bytes, write_file

SUMMARY_KEYS = {
    "snapshot_id",
    "files_new",
    "files_changed",
    "files_unmodified",
    "bytes_processed",
    "bytes_added",
    "duration_s",
    "errors",
}


def _small_tree(root: Path) -> None:
    (root / "docs" / "sub").mkdir(parents=True)
    write_file(root / "docs" / "a.txt", b"alpha\n")
    write_file(root / "docs" / "sub" / "b.txt", b"bravo\n" * 100)
    write_file(root / "big.bin", random_bytes(2 * MiB + 3, seed=7))
    write_file(os.path.join(os.fsencode(root), b"caf\xe9"), b"non-UTF-8 name\n")
    os.symlink("docs/a.txt", root / "link")


def test_ls_lists_every_entry_with_absolute_paths(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _small_tree(src)
    cli.run("backup", src)
    lines = cli.run("ls", "latest").stdout.splitlines()
    s = os.fsencode(src)
    for rel in (b"docs", b"docs/a.txt", b"docs/sub/b.txt", b"big.bin", b"caf\xe9", b"link"):
        assert s + b"/" + rel in lines, (rel, lines)
    # names are printed as their bytes, even where the locale would refuse them (as with LANG=en_US.UTF-8)
    strict = cli.run("ls", "latest", env={"PYTHONIOENCODING": "utf-8:strict"}).stdout.splitlines()
    assert s + b"/caf\xe9" in strict
    # ancestors of the backed-up path are listed too (files are stored at their absolute path)
    assert s in lines
    # below a path, and not recursive
    sub = cli.run("ls", "latest", src / "docs", "--no-recursive").stdout.splitlines()
    assert sub == [s + b"/docs", s + b"/docs/a.txt", s + b"/docs/sub"]
    long = cli.run("ls", "-l", "latest", src / "docs").stdout.decode()
    assert "-rw-" in long and " 600 " in long  # mode and size of b.txt
    assert cli.run("ls", "-l", "latest", src / "link").stdout.decode().rstrip().endswith("link -> docs/a.txt")
    listing = cli.json("ls", "latest", src)
    by_path = {n["path"]: n for n in listing["nodes"]}
    assert by_path[f"{src}/big.bin"]["size"] == 2 * MiB + 3
    assert by_path[f"{src}/big.bin"]["type"] == "file"
    assert by_path[f"{src}/link"]["link_target"] == "docs/a.txt"
    assert os.fsencode(f"{src}/caf\udce9") in map(os.fsencode, by_path)


def test_dump_writes_the_file_content(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _small_tree(src)
    cli.run("backup", src)
    assert cli.run("dump", "latest", src / "big.bin").stdout == (src / "big.bin").read_bytes()
    assert cli.run("dump", "latest", src / "docs" / "a.txt").stdout == b"alpha\n"
    assert cli.run("dump", "latest", os.fsencode(src) + b"/caf\xe9").stdout == b"non-UTF-8 name\n"
    # a directory is not something to dump
    res = cli.run("dump", "latest", src / "docs", check_exit=2)
    assert b"not a regular file" in res.stderr
    assert cli.run("dump", "latest", src / "missing", check_exit=None).returncode != 0


def test_backup_stdin_then_dump_gives_the_input_back(cli: Cli, repo: Path) -> None:
    data = random_bytes(3 * MiB + 1, seed=11) + b"\x00" * 100_000 + b"tail"
    summary = cli.backup_json("--stdin", "--stdin-filename", "db/dump.sql", input=data)
    assert summary["files_new"] == 1
    assert summary["bytes_processed"] == len(data)
    assert cli.run("dump", "latest", "/db/dump.sql").stdout == data
    snaps = cli.json("snapshots")
    assert snaps[-1]["paths"] == ["/db/dump.sql"]
    # a name that would climb out of the restore target is refused
    cli.run("backup", "--stdin", "--stdin-filename", "../etc/passwd", input=b"x", check_exit=2)
    # empty input is a valid, empty file
    cli.run("backup", "--stdin", "--stdin-filename", "empty", input=b"")
    assert cli.run("dump", "latest", "/empty").stdout == b""


def test_diff_lists_added_removed_and_modified(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _small_tree(src)
    first = cli.backup_json(src)["snapshot_id"]
    (src / "docs" / "a.txt").write_bytes(b"alpha, changed\n")
    (src / "docs" / "sub" / "b.txt").unlink()
    write_file(src / "new.txt", b"new\n")
    second = cli.backup_json(src)["snapshot_id"]

    text = cli.run("diff", first[:8], second).stdout.decode()
    assert f"+    {src}/new.txt" in text
    assert f"-    {src}/docs/sub/b.txt" in text
    assert f"M    {src}/docs/a.txt" in text
    assert "big.bin" not in text
    assert "1 added, 1 removed, 1 modified" in text

    doc = cli.json("diff", first, "latest")
    assert (doc["first"], doc["second"]) == (first, second)
    changes = {(c["change"], c["path"]) for c in doc["changes"]}
    assert {("+", f"{src}/new.txt"), ("-", f"{src}/docs/sub/b.txt"), ("M", f"{src}/docs/a.txt")} <= changes
    assert (doc["added"], doc["removed"], doc["modified"]) == (1, 1, 1)


def test_snapshots_json_is_a_list_of_snapshots(cli: Cli, repo: Path, tmp_path: Path) -> None:
    assert cli.json("snapshots") == []
    src = tmp_path / "src"
    _small_tree(src)
    ids = [cli.backup_json(src, "--tag", "one")["snapshot_id"], cli.backup_json(src, "--tag", "two,x")["snapshot_id"]]
    snaps = cli.json("snapshots")
    assert isinstance(snaps, list)
    assert [s["id"] for s in snaps] == ids
    assert snaps[0]["paths"] == [str(src)]
    assert snaps[1]["tags"] == ["two", "x"]
    assert snaps[1]["parent"] == ids[0]
    assert [s["id"] for s in cli.json("snapshots", "--tag", "x")] == [ids[1]]
    text = cli.run("snapshots").stdout.decode()
    assert ids[0][:8] in text and ids[1][:8] in text and "2 snapshot(s)" in text


def test_backup_json_ends_with_one_summary_object(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _small_tree(src)
    res = cli.run("--json", "backup", src)
    lines = res.stdout.decode().splitlines()
    docs = [json.loads(line) for line in lines]
    assert [d.get("message_type") for d in docs].count("summary") == 1
    summary = docs[-1]
    assert summary.keys() >= SUMMARY_KEYS
    assert summary["files_new"] == 4  # regular files: a.txt, b.txt, big.bin, café
    assert summary["errors"] == []
    assert summary["bytes_processed"] >= 2 * MiB
    assert summary["bytes_added"] > 2 * MiB
    assert summary["snapshot_id"] == cli.json("snapshots")[0]["id"]
    # global options are accepted after the command name too, as with restic
    assert json.loads(cli.run("backup", src, "--json").stdout.splitlines()[-1])["files_unmodified"] == 4


def test_json_output_of_other_commands(cli: Cli, tmp_path: Path) -> None:
    doc = cli.json("init", *CHEAP_KDF)
    assert isinstance(doc, dict) and doc["message"] == "initialized"
    src = tmp_path / "src"
    _small_tree(src)
    cli.backup_json(src)
    assert isinstance(cli.json("ls", "latest"), dict)
    assert isinstance(cli.json("diff", "latest", "latest")["changes"], list)
    keys = cli.json("key", "list")
    assert isinstance(keys, list) and len(keys) == 1
    restore = cli.json("restore", "latest", "--target", tmp_path / "t")
    assert restore["message_type"] == "summary"
    assert (restore["files"], restore["other"]) == (4, 1)  # the symlink is "other"
    # commands that print nothing but JSON to stdout with --json
    for args in (("snapshots",), ("ls", "latest"), ("key", "list")):
        res = cli.run("--json", *args)
        json.loads(res.stdout)
        assert res.stderr == b""
