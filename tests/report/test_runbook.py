"""Runbooks and the document's small pieces, from plans built by hand: which copy a rebuild uses, what a new machine
needs for each kind of storage, how a dump is loaded back, password sources and URLs without their secrets."""

from __future__ import annotations

from typing import Any

from sauvegarde.plan.model import Plan
from sauvegarde.report.content import alert_channels, contacts, password_source, retention_text
from sauvegarde.report.runbook import offsite_repository, runbook, runbooks
from sauvegarde.util.urls import redact_url

REPOS: dict[str, dict[str, Any]] = {
    "nas": {"url": "/mnt/nas/repo", "password_file": "nas.pw", "failure_domain": "same-site", "medium": "nas"},
    "usb": {
        "url": "/media/usb/repo",
        "password_env": "USB_PW",
        "failure_domain": "off-site",
        "medium": "removable-disk",
        "offline": True,
        "key_escrow": "sheet in the safe",
    },
    "s3": {
        "url": "s3://s3.example/bucket/repo",
        "password_command": "pass show backup/s3",
        "failure_domain": "cloud",
        "medium": "object-storage",
        "key_escrow": "provider's password manager",
    },
    "rest": {
        "url": "rest:https://alice:hunter2@backup.example:8000/tilleuls",
        "password_env": "REST_PW",
        "failure_domain": "off-site",
        "medium": "server",
    },
}


def plan_with(repos: list[str], **asset: Any) -> Plan:
    fields: dict[str, Any] = {
        "paths": ["/srv/data", "/etc/app/"],
        "criticality": "critical",
        "rpo": "4h",
        "rto": "2h",
        "schedule": "hourly",
        "retention": {"keep_hourly": 24, "keep_daily": 35, "keep_within": "1y"},
        "repositories": repos,
    }
    fields.update(asset)
    if "command" in asset:
        fields.pop("paths")
    return Plan.model_validate(
        {
            "organisation": {
                "name": "T",
                "contacts": [{"name": "Ann", "phone": "1"}, {"name": "Bob", "email": "b@x.example"}],
                "provider": {"name": "Prov", "phone": "9"},
            },
            "repositories": {n: REPOS[n] for n in {"nas", "usb", "s3", "rest"}},
            "assets": {"data": fields},
            "source": "/etc/sauvegarde/plan.toml",
        }
    )


def commands(plan: Plan, procedure: int) -> list[str]:
    rb = runbook(plan, "data", "Ann (1)")
    return [c for step in rb.procedures[procedure].steps for c in step.commands]


def test_rebuild_uses_the_first_off_site_or_cloud_copy() -> None:
    plan = plan_with(["nas", "s3", "usb"])
    assert offsite_repository(plan, plan.assets["data"]) == "s3"
    rebuild = commands(plan, 1)
    assert "export AWS_ACCESS_KEY_ID='<access key id>'" in rebuild  # object storage needs its credentials
    assert (
        "sauvegarde key recover --repo s3://s3.example/bucket/repo --new-password-file /root/sauvegarde-s3.password"
        in rebuild
    )
    assert "export SAUVEGARDE_REPOSITORY=s3://s3.example/bucket/repo" in rebuild
    assert "sauvegarde restore latest --tag asset:data --target /var/tmp/restore-data --verify" in rebuild
    text = " ".join(s.text for s in runbook(plan, "data", "Ann").procedures[1].steps)
    assert "provider's password manager" in text


def test_local_restore_from_the_first_repository_with_its_password_source() -> None:
    plan = plan_with(["nas", "usb"])
    local = commands(plan, 0)
    assert local[:2] == [
        "export SAUVEGARDE_REPOSITORY=/mnt/nas/repo",
        "export SAUVEGARDE_PASSWORD_FILE=/etc/sauvegarde/nas.pw",
    ]
    assert "rsync -aHAX /var/tmp/restore-data/srv/data/ /srv/data/" in local
    assert "rsync -aHAX /var/tmp/restore-data/etc/app/ /etc/app/" in local
    assert local[-1] == "sauvegarde check"
    usb = plan_with(["usb", "nas"])
    assert 'export SAUVEGARDE_PASSWORD="$USB_PW"   # as set on the host' in commands(usb, 0)
    s3 = plan_with(["s3"])
    assert "export SAUVEGARDE_PASSWORD_COMMAND='pass show backup/s3'" in commands(s3, 0)


def test_a_removable_disk_is_fetched_and_mounted_on_the_new_machine() -> None:
    plan = plan_with(["nas", "usb"])
    rb = runbook(plan, "data", "Ann")
    steps = rb.procedures[1].steps
    mount = next(s for s in steps if s.title.startswith("Fetch the disk"))
    assert "mount <device or share> /media/usb" in mount.commands and "ls /media/usb/repo/config" in mount.commands
    assert "sheet in the safe" in " ".join(s.text for s in steps)


def test_no_off_site_copy_is_said_loudly() -> None:
    plan = plan_with(["nas"])
    rb = runbook(plan, "data", "Ann")
    assert "NO off-site copy" in rb.procedures[1].intro
    assert "no key escrow is recorded" in " ".join(s.text for s in rb.procedures[1].steps)
    assert rb.keys[0].key_escrow == "NOT RECORDED"


def test_rest_urls_lose_their_password_everywhere() -> None:
    plan = plan_with(["rest"])
    rb = runbook(plan, "data", "Ann")
    everything = [c for p in rb.procedures for s in p.steps for c in [s.text, *s.commands]] + [rb.keys[0].url]
    assert not [line for line in everything if "hunter2" in line]
    assert "export SAUVEGARDE_REPOSITORY=rest:https://alice@backup.example:8000/tilleuls" in commands(plan, 1)
    assert rb.keys[0].url == "rest:https://alice:***@backup.example:8000/tilleuls"
    assert "export SAUVEGARDE_REST_PASSWORD='<password>'" in commands(plan, 1)
    assert (
        redact_url("sftp://bob:pw@host/x and rest:http://u:p@h:1/")
        == "sftp://bob:***@host/x and rest:http://u:***@h:1/"
    )
    assert redact_url("/plain/path") == "/plain/path"


def test_dumps_are_loaded_back_with_the_matching_tool() -> None:
    pg = plan_with(["nas", "s3"], command="pg_dump --format=custom care", filename="care.pgdump")
    local = commands(pg, 0)
    assert "sauvegarde dump latest /care.pgdump --tag asset:data > /var/tmp/restore-data/care.pgdump" in local
    assert "pg_restore --clean --if-exists --dbname=care /var/tmp/restore-data/care.pgdump" in local
    plain = plan_with(["nas"], command="pg_dump shop", filename="shop.sql")
    assert "psql --dbname=shop --file=/var/tmp/restore-data/shop.sql" in commands(plain, 0)
    mysql = plan_with(["nas"], command="mysqldump --single-transaction crm")
    assert "mysql crm < /var/tmp/restore-data/data" in commands(mysql, 0)
    other = plan_with(["nas"], command="tar -c /opt/x", filename="x.tar")
    step = next(s for s in runbook(other, "data", "Ann").procedures[0].steps if s.title == "Load the dump back")
    assert step.commands == [] and "tar -c /opt/x" in step.text


def test_call_list_retention_password_sources_and_alert_channels() -> None:
    plan = plan_with(["nas", "s3"])
    assert [(c.order, c.name, c.provider) for c in contacts(plan)] == [
        (1, "Ann", False),
        (2, "Bob", False),
        (3, "Prov", True),
    ]
    assert retention_text(plan.assets["data"]) == "hourly 24, daily 35, everything within 1y"
    assert password_source(plan, plan.repositories["nas"]) == "file /etc/sauvegarde/nas.pw"
    assert password_source(plan, plan.repositories["s3"]) == "output of the command `pass show backup/s3`"
    assert password_source(plan, plan.repositories["usb"]) == "environment variable $USB_PW"
    assert runbooks(plan)[0].summary.endswith("Call first: Ann (1).")
    assert alert_channels(plan) == []
    alerted = Plan.model_validate(
        plan.model_dump(exclude={"assets", "repositories"})
        | {
            "repositories": {"nas": REPOS["nas"]},
            "assets": {"data": plan.assets["data"].model_dump() | {"repositories": ["nas"]}},
            "alerts": {
                "email": ["it@x.example"],
                "webhook": ["https://hooks.slack.com/services/T/B/tokentoken"],
                "smtp": {"host": "mail.x.example", "username": "u", "password_env": "SMTP_PW"},
            },
        }
    )
    channels = alert_channels(alerted)
    assert "email to it@x.example" in channels and "json webhook on hooks.slack.com" in channels
    assert not [c for c in channels if "tokentoken" in c]
