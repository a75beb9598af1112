"""The real ``sauvegarde`` command on S3 (a private SeaweedFS): end to end, immutability attacks, a crashing server.

The attacker in these tests holds the bucket's credentials (as a compromised backup client would) and talks to S3
directly with boto3; it never has the repository password.
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cli_harness import CHEAP_KDF, PASSWORD, Cli
from cli_trees import MiB, assert_same_tree, random_bytes, restored, write_file

from s3_server import ACCESS_KEY, SECRET_KEY, WeedServer
from sauvegarde.engine.retention_lock import extend_retention
from sauvegarde.repository import Repository
from sauvegarde.storage import open_storage
from sauvegarde.storage.s3_lock import authentic_version


def _s3_env(server: WeedServer, url: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "SAUVEGARDE_REPOSITORY": url,
    }


@pytest.fixture
def s3cli(cli: Cli, s3_server: WeedServer) -> tuple[Cli, str]:
    """The CLI pointed at a repository location in a fresh bucket (not created yet)."""
    url = s3_server.url(f"cli-{os.urandom(8).hex()}", "repo")
    cli.env.update(_s3_env(s3_server, url))
    return cli, url


def _make_tree(root: Path, seed: int) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    write_file(root / "big.bin", random_bytes(3 * MiB, seed))
    write_file(root / "sub" / "small.txt", f"small {seed}\n".encode())
    write_file(root / "sub" / "deeper" / "mid.bin", random_bytes(300_000, seed + 1))
    os.symlink("small.txt", root / "sub" / "link")
    return root


def _snapshot_ids(cli: Cli) -> list[str]:
    return [s["id"] for s in cli.json("snapshots")]


# ---- end to end -------------------------------------------------------------------------------------------


def test_s3_end_to_end(s3cli: tuple[Cli, str], tmp_path: Path) -> None:
    cli, url = s3cli
    src = _make_tree(tmp_path / "src", 1)
    cli.run("init", *CHEAP_KDF)
    cli.run("backup", src)
    write_file(src / "sub" / "small.txt", b"changed\n")
    write_file(src / "new.bin", random_bytes(700_000, 9))
    cli.run("backup", src)
    assert len(_snapshot_ids(cli)) == 2
    cli.run("restore", "latest", "--target", tmp_path / "r1")
    assert_same_tree(src, restored(tmp_path / "r1", src))
    cli.run("check", "--read-data")

    cli.run("forget", "--keep-last", "1", "--prune")
    assert len(_snapshot_ids(cli)) == 1
    cli.run("check", "--read-data")
    cli.run("restore", "latest", "--target", tmp_path / "r2")
    assert_same_tree(src, restored(tmp_path / "r2", src))

    # copy S3 -> local, then local -> a second S3 repository
    local = tmp_path / "local-repo"
    cli.run("init", *CHEAP_KDF, env={"SAUVEGARDE_REPOSITORY": str(local)})
    from_s3 = {"SAUVEGARDE_REPOSITORY": str(local), "SAUVEGARDE_FROM_REPOSITORY": url}
    cli.run("copy", env={**from_s3, "SAUVEGARDE_FROM_PASSWORD": cli.env["SAUVEGARDE_PASSWORD"]})
    cli.run("restore", "latest", "--target", tmp_path / "r3", env={"SAUVEGARDE_REPOSITORY": str(local)})
    assert_same_tree(src, restored(tmp_path / "r3", src))
    second = url.rsplit("/", 1)[0] + "/second"
    cli.run("init", *CHEAP_KDF, env={"SAUVEGARDE_REPOSITORY": second})
    to_s3 = {"SAUVEGARDE_REPOSITORY": second, "SAUVEGARDE_FROM_REPOSITORY": str(local)}
    cli.run("copy", env={**to_s3, "SAUVEGARDE_FROM_PASSWORD": cli.env["SAUVEGARDE_PASSWORD"]})
    cli.run("restore", "latest", "--target", tmp_path / "r4", env={"SAUVEGARDE_REPOSITORY": second})
    assert_same_tree(src, restored(tmp_path / "r4", src))
    cli.run("check", "--read-data", env={"SAUVEGARDE_REPOSITORY": second})


def test_s3_errors_are_one_line(s3cli: tuple[Cli, str], tmp_path: Path) -> None:
    cli, url = s3cli
    cli.run("init", *CHEAP_KDF)
    res = cli.run("snapshots", check_exit=1, env={"AWS_SECRET_ACCESS_KEY": "wrong"})
    err = res.stderr.decode()
    assert "access denied" in err and "wrong" not in err and err.count("\n") == 1, err
    res = cli.run("snapshots", check_exit=10, env={"SAUVEGARDE_REPOSITORY": url.rsplit("/", 2)[0] + "/nosuchbucket"})
    assert res.stderr.decode().count("\n") == 1
    res = cli.run(
        "snapshots",
        check_exit=1,
        env={"SAUVEGARDE_REPOSITORY": "s3:http://127.0.0.1:9/bucket", "SAUVEGARDE_STORAGE_RETRIES": "0"},
    )
    err = res.stderr.decode()
    assert "cannot reach http://127.0.0.1:9" in err and err.count("\n") == 1, err
    res = cli.run("init", "--immutable-days", "1", *CHEAP_KDF, check_exit=2, env={"SAUVEGARDE_REPOSITORY": url + "x"})
    assert "Object Lock" in res.stderr.decode()  # the bucket exists without Object Lock: refused


# ---- immutability -----------------------------------------------------------------------------------------


def _versions(client: Any, bucket: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            out.setdefault(v["Key"], []).append(v)
    return out


def _denied(fn: Any, **kwargs: Any) -> bool:
    try:
        fn(**kwargs)
    except ClientError:
        return True
    return False


def test_compromised_client_cannot_destroy_an_immutable_repository(
    s3cli: tuple[Cli, str], s3_server: WeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli, url = s3cli
    bucket = url.split("/")[3]
    srcs = [_make_tree(tmp_path / f"src{i}", 10 * i) for i in range(2)]
    out = cli.run("init", "--immutable-days", "1", "--lock-mode", "compliance", *CHEAP_KDF).stdout.decode()
    assert "retained for 1 day(s) in compliance mode" in out
    for src in srcs:
        cli.run("backup", src)
    snaps = _snapshot_ids(cli)
    assert len(snaps) == 2

    attacker = s3_server.client()
    versions = _versions(attacker, bucket)
    data_keys = [k for k in versions if "/locks/" not in k]
    assert any("/data/" in k for k in data_keys) and any(k.endswith("/config") for k in data_keys)
    soon = attacker.head_object(Bucket=bucket, Key=data_keys[0])["ObjectLockRetainUntilDate"]

    # 1. destroy every version (also claiming a governance bypass), shorten retention, drop the bucket's protection
    for key in data_keys:
        for v in versions[key]:
            vid = v["VersionId"]
            assert _denied(attacker.delete_object, Bucket=bucket, Key=key, VersionId=vid), key
            assert _denied(
                attacker.delete_object, Bucket=bucket, Key=key, VersionId=vid, BypassGovernanceRetention=True
            ), key
            shorter = {"Mode": "GOVERNANCE", "RetainUntilDate": soon.replace(year=soon.year - 1)}
            assert _denied(attacker.put_object_retention, Bucket=bucket, Key=key, VersionId=vid, Retention=shorter)
    batch = [{"Key": k, "VersionId": v["VersionId"]} for k in data_keys for v in versions[k]]
    resp = attacker.delete_objects(Bucket=bucket, Delete={"Objects": batch[:1000]})
    assert not resp.get("Deleted"), resp.get("Deleted")
    assert _denied(attacker.put_bucket_versioning, Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert _denied(attacker.delete_bucket, Bucket=bucket)

    # 2. overwrite every object (S3 keeps the original as an older, still retained version), then hide everything
    for key in data_keys:
        attacker.put_object(Bucket=bucket, Key=key, Body=b"ransom note")
    for key in data_keys:
        attacker.delete_object(Bucket=bucket, Key=key)
    for key in data_keys:
        with pytest.raises(ClientError):
            attacker.head_object(Bucket=bucket, Key=key)
    after = _versions(attacker, bucket)
    for key in data_keys:  # every original version is still there
        assert {v["VersionId"] for v in versions[key]} <= {v["VersionId"] for v in after[key]}, key

    # 3. a plain restore still gives back every snapshot exactly, and says what it read through
    for i, (sid, src) in enumerate(zip(sorted(snaps, key=snaps.index), srcs, strict=True)):
        res = cli.run("restore", sid, "--target", tmp_path / f"r{i}")
        assert_same_tree(src, restored(tmp_path / f"r{i}", src))
        assert b"hidden behind delete markers (tampering?)" in res.stderr, res.stderr
    # 4. check reports the tampering, naming the objects
    res = cli.run("check", "--read-data", check_exit=1)
    err = res.stderr.decode()
    assert "tampering" in err and "config" in err and "snapshots/" in err, err
    report = cli.json("check", check_exit=1)
    named = {p["object"] for p in report["problems"] if p["kind"] == "tampering"}
    assert named == {k.split("/", 1)[1] for k in data_keys}

    # 5. retention upkeep reaches the hidden originals too, or hiding would win once their retention lapsed
    later = datetime.now(UTC) + timedelta(hours=15)  # less than half of the 1-day period left by then
    with monkeypatch.context() as m:
        for k, v in cli.env.items():
            if k.startswith(("AWS_", "SAUVEGARDE_")):
                m.setenv(k, v)
        repo = Repository.open(open_storage(url), PASSWORD.encode())
        try:
            upkeep = extend_retention(repo, now=later)
        finally:
            repo.close()
    assert upkeep.hidden == len(data_keys) and upkeep.extended >= len(data_keys)
    for key in data_keys:
        (original,) = versions[key]  # the only version before the attack
        head = attacker.head_object(Bucket=bucket, Key=key, VersionId=original["VersionId"])
        assert head["ObjectLockRetainUntilDate"] > later + timedelta(hours=23), key


def test_prune_on_an_immutable_repository_logs_deletions_and_check_stays_clean(
    s3cli: tuple[Cli, str], s3_server: WeedServer, tmp_path: Path
) -> None:
    cli, url = s3cli
    bucket = url.split("/")[3]
    src = _make_tree(tmp_path / "src", 5)
    cli.run("init", "--immutable-days", "1", *CHEAP_KDF)
    cli.run("backup", src)
    write_file(src / "big.bin", random_bytes(3 * MiB, 77))
    cli.run("backup", src)
    out = cli.run("forget", "--keep-last", "1", "--prune").stdout.decode()
    assert "removed" in out
    client = s3_server.client()
    listed = client.list_objects_v2(Bucket=bucket, Prefix="repo/deletions/").get("Contents", [])
    assert listed, "prune and forget write deletion logs before deleting"
    cli.run("check", "--read-data")  # deleted by the repository itself: no tampering reported
    report = cli.json("retention", "extend")
    assert report["checked"] > 0 and report["extended"] == 0  # all written just now
    cli.run("restore", "latest", "--target", tmp_path / "r")
    assert_same_tree(src, restored(tmp_path / "r", src))


# ---- a server crash in the middle of a backup -------------------------------------------------------------


def test_backup_survives_or_fails_cleanly_when_the_server_is_killed(cli: Cli, tmp_path: Path) -> None:
    server = WeedServer(tmp_path / "weed-crash")
    server.start()
    try:
        url = server.url(server.new_bucket(), "repo")
        cli.env.update(_s3_env(server, url))
        src = tmp_path / "src"
        src.mkdir()
        for i in range(6):
            write_file(src / f"f{i}.bin", random_bytes(6 * MiB, 100 + i))
        cli.run("init", *CHEAP_KDF)
        env = {"SAUVEGARDE_STORAGE_RETRIES": "4"}
        import subprocess

        proc = cli.popen("backup", src, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        client = server.client()
        while time.monotonic() < deadline:  # wait for the first pack to land
            listed = client.list_objects_v2(Bucket=url.split("/")[3], Prefix="repo/data/").get("Contents", [])
            if listed or proc.poll() is not None:
                break
            time.sleep(0.05)
        server.kill()
        time.sleep(1.0)
        server.start()
        _out, err = proc.communicate(timeout=240)
        print(f"backup across the server crash: exit {proc.returncode}: {err.decode().strip()[-300:]}")
        if proc.returncode != 0:
            lines = [ln for ln in err.decode().splitlines() if ln.startswith("sauvegarde: error")]
            assert len(lines) == 1 and "Traceback" not in err.decode(), err
        cli.run("backup", src)  # reruns reuse what was uploaded
        cli.run("check", "--read-data")
        cli.run("restore", "latest", "--target", tmp_path / "r")
        assert_same_tree(src, restored(tmp_path / "r", src))
    finally:
        with contextlib.suppress(Exception):
            server.stop()


def test_authentic_version_rules() -> None:
    from sauvegarde.storage.s3_lock import Version

    def v(vid: str, marker: bool = False, latest: bool = False) -> Version:
        return Version("n", vid, latest, marker, None)

    assert authentic_version([v("a", latest=True)]) is None  # untouched
    assert authentic_version([v("m", True, True), v("a")]).version_id == "a"  # type: ignore[union-attr]
    assert authentic_version([v("x", latest=True), v("a")]).version_id == "a"  # type: ignore[union-attr]
    assert authentic_version([v("m", True, True), v("x"), v("a")]).version_id == "a"  # type: ignore[union-attr]
    assert authentic_version([v("m", True, True)]) is None  # deleted for good
