"""key add / list / remove / passwd: several passwords open one repository, and removed ones stop working."""

from __future__ import annotations

from pathlib import Path

from cli_harness import PASSWORD, Cli

KDF = ("--kdf-memory", "64")


def _pw(password: str) -> dict[str, str | None]:
    return {"SAUVEGARDE_PASSWORD": password}


def test_key_add_list_remove_passwd(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("data\n")
    cli.run("backup", src)
    second = tmp_path / "second.pw"
    second.write_text("second password\n")

    added = cli.json("key", "add", "--new-password-file", second, *KDF)["added"]
    keys = cli.json("key", "list")
    assert len(keys) == 2
    assert {k["id"] for k in keys if not k["current"]} == {added}
    first_id = next(k["id"] for k in keys if k["current"])

    # either password opens the repository, and the data
    for pw in (PASSWORD, "second password"):
        assert cli.run("dump", "latest", src / "f", env=_pw(pw)).stdout == b"data\n"
    keys2 = cli.json("key", "list", env=_pw("second password"))
    assert {k["id"] for k in keys2 if k["current"]} == {added}
    # the password file option works as well as the environment
    assert len(cli.json("--password-file", second, "snapshots", env={"SAUVEGARDE_PASSWORD": None})) == 1

    # the key in use cannot be removed; another one can, by a unique prefix of its ID
    res = cli.run("key", "remove", first_id, check_exit=1)
    assert "in use" in res.stderr.decode()
    removed = cli.json("key", "remove", first_id[:10], env=_pw("second password"))
    assert removed == {"removed": first_id}
    cli.run("snapshots", check_exit=12)  # the first password no longer opens it
    assert [k["id"] for k in cli.json("key", "list", env=_pw("second password"))] == [added]
    cli.run("key", "remove", "ffff", env=_pw("second password"), check_exit=1)

    # passwd replaces the current key
    third = tmp_path / "third.pw"
    third.write_text("third password\n")
    doc = cli.json("key", "passwd", "--new-password-file", third, *KDF, env=_pw("second password"))
    assert doc["removed"] == added
    cli.run("snapshots", env=_pw("second password"), check_exit=12)
    keys3 = cli.json("key", "list", env=_pw("third password"))
    assert [k["id"] for k in keys3] == [doc["added"]] and keys3[0]["current"]
    assert cli.run("dump", "latest", src / "f", env=_pw("third password")).stdout == b"data\n"


def test_key_add_refuses_an_empty_password(cli: Cli, repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.pw"
    empty.write_text("\n")
    cli.run("key", "add", "--new-password-file", empty, *KDF, check_exit=2)
    # without a TTY and without a file there is no way to ask
    cli.run("key", "add", *KDF, check_exit=2)
    cli.run("key", "add", "--new-password-file", tmp_path / "missing.pw", *KDF, check_exit=2)
    assert len(cli.json("key", "list")) == 1
