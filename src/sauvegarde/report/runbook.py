"""Step-by-step restore runbooks, one per asset, with the exact commands: restoring on the host from the nearest
copy, and rebuilding on a new machine from the off-site copy with the key from escrow.

The commands name the plan's real repository URLs (without any password they carry) and tell where each password
comes from; no secret is ever written into a runbook.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from sauvegarde import __version__
from sauvegarde.plan.access import password_file_path
from sauvegarde.plan.model import Asset, Plan, RepositoryPlan, format_duration
from sauvegarde.plan.observe import asset_tag
from sauvegarde.report.content import password_source
from sauvegarde.util.urls import redact_url, url_without_password

OFF_SITE = ("cloud", "off-site")


@dataclass(frozen=True)
class Step:
    title: str
    text: str = ""
    commands: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Procedure:
    title: str
    intro: str
    steps: list[Step]


@dataclass(frozen=True)
class KeyPlace:
    repository: str
    url: str
    password_source: str
    key_escrow: str


@dataclass(frozen=True)
class Runbook:
    asset: str
    summary: str
    procedures: list[Procedure]
    keys: list[KeyPlace]


def q(value: str) -> str:
    return shlex.quote(value)


def offsite_repository(plan: Plan, asset: Asset) -> str | None:
    """The copy to rebuild from after losing the site: the asset's first off-site or cloud repository."""
    return next((r for r in asset.repositories if plan.repositories[r].failure_domain in OFF_SITE), None)


def password_exports(plan: Plan, repo: RepositoryPlan) -> list[str]:
    """The variables that give ``sauvegarde`` the repository's password as the plan does on the protected host."""
    if repo.password_file:
        return [f"export SAUVEGARDE_PASSWORD_FILE={q(password_file_path(plan, repo) or repo.password_file)}"]
    if repo.password_command:
        return [f"export SAUVEGARDE_PASSWORD_COMMAND={q(repo.password_command)}"]
    return [f'export SAUVEGARDE_PASSWORD="${repo.password_env}"   # as set on the host']


def access_step(repo: RepositoryPlan) -> Step | None:
    """What a new machine needs before it can reach the repository's storage (credentials, a mounted disk)."""
    url = repo.url
    if url.startswith("s3:") or url.startswith("s3://"):
        return Step(
            "Give the new machine the object storage credentials",
            "The access key of the bucket's account (kept by whoever manages that account, not in this document).",
            ["export AWS_ACCESS_KEY_ID='<access key id>'", "export AWS_SECRET_ACCESS_KEY='<secret access key>'"],
        )
    if url.startswith("rest:"):
        return Step(
            "Give the new machine the repository server's login",
            "The server's user name and password (kept by whoever runs the server, not in this document).",
            ["export SAUVEGARDE_REST_USER='<user>'", "export SAUVEGARDE_REST_PASSWORD='<password>'"],
        )
    if url.startswith("sftp:"):
        return Step(
            "Give the new machine SSH access to the server",
            "An SSH key authorised on the server (ssh-keygen, then have it added to authorized_keys there).",
            [
                "ssh-keygen -t ed25519",
                "ssh -o BatchMode=yes " + q(url.removeprefix("sftp:").split(":", 1)[0]) + " true",
            ],
        )
    parent = repo.local_path or url
    mount_point = parent.rsplit("/", 1)[0] or "/"
    what = {
        "removable-disk": "Fetch the disk from where it is kept and plug it in; mount it",
        "nas": "Mount the NAS share",
        "tape": "Load the tape and restore the repository directory from it",
        "optical": "Insert the disc and mount it",
    }.get(repo.medium, "Make the repository directory available")
    return Step(
        what,
        f"The repository must appear at {parent}.",
        [f"mkdir -p {q(mount_point)}", f"mount <device or share> {q(mount_point)}", f"ls {q(parent)}/config"],
    )


def _restore_command(name: str, asset: Asset, target: str) -> list[str]:
    tag = asset_tag(name)
    if asset.command is not None:
        file = "/" + (asset.filename or name)
        out = f"{target}{file}"
        return [
            f"mkdir -p {q(out.rsplit('/', 1)[0])}",
            f"sauvegarde dump latest {q(file)} --tag {q(tag)} > {q(out)}",
        ]
    return [f"sauvegarde restore latest --tag {q(tag)} --target {q(target)} --verify"]


def load_back(asset: Asset, name: str, target: str) -> Step:
    """Putting restored data back where it belongs (files), or loading a dump with the matching tool."""
    if asset.command is None:
        commands = [f"rsync -aHAX {q(target + p.rstrip('/'))}/ {q(p.rstrip('/'))}/" for p in asset.expanded_paths()]
        return Step(
            "Put the files back",
            "Files are restored under the target at their original absolute path. Compare first, then copy back "
            "(add --delete to make the place an exact copy of the snapshot).",
            commands,
        )
    file = f"{target}/{asset.filename or name}"
    words = shlex.split(asset.command)
    tool = words[0].rsplit("/", 1)[-1] if words else ""
    database = next((w for w in reversed(words[1:]) if not w.startswith("-")), "<database>")
    custom = any(w in ("-Fc", "--format=custom", "--format=c", "-Fd") for w in words)
    if tool == "pg_dump":
        cmd = (
            f"pg_restore --clean --if-exists --dbname={q(database)} {q(file)}"
            if custom
            else f"psql --dbname={q(database)} --file={q(file)}"
        )
    elif tool in ("mysqldump", "mariadb-dump"):
        cmd = f"mysql {q(database)} < {q(file)}"
    else:
        cmd = ""
    return Step(
        "Load the dump back",
        f"The backup is the output of `{asset.command}`; load it with the matching tool"
        + (" (stop the applications using it first)." if cmd else "."),
        [cmd] if cmd else [],
    )


def local_restore(plan: Plan, name: str, asset: Asset) -> Procedure:
    first = asset.repositories[0]
    repo = plan.repositories[first]
    target = f"/var/tmp/restore-{name}"
    steps = [
        Step(
            "Point sauvegarde at the repository and its password",
            f"Repository {first} ({repo.medium}, {repo.failure_domain}), the one every backup goes to first.",
            [
                f"export SAUVEGARDE_REPOSITORY={q(url_without_password(repo.url))}",
                *(
                    ["export SAUVEGARDE_REST_PASSWORD='<the server password in the plan's url>'"]
                    if repo.url.startswith("rest:") and url_without_password(repo.url) != repo.url
                    else []
                ),
                *password_exports(plan, repo),
            ],
        ),
        Step(
            "Choose the snapshot",
            "The newest is `latest`; after ransomware, take the newest one from before the attack (the Guard column "
            "says which snapshots looked suspicious) and use its ID instead of `latest` below.",
            [f"sauvegarde snapshots --tag {q(asset_tag(name))}"],
        ),
        Step("Restore it into a scratch directory", "", _restore_command(name, asset, target)),
        load_back(asset, name, target),
        Step("Check the repository", "Proves the repository is still whole (exit 0: no error).", ["sauvegarde check"]),
    ]
    return Procedure(
        f"Restore on this host from {first}",
        "When the host still works and the data was deleted, damaged or encrypted.",
        steps,
    )


def new_machine(plan: Plan, name: str, asset: Asset) -> Procedure:
    chosen = offsite_repository(plan, asset)
    warning = ""
    if chosen is None:
        chosen = asset.repositories[-1]
        warning = " This asset has NO off-site copy: if the site is lost, so is this asset (see the findings)."
    repo = plan.repositories[chosen]
    pw = f"/root/sauvegarde-{chosen}.password"
    target = f"/var/tmp/restore-{name}"
    escrow = repo.key_escrow or "nowhere: no key escrow is recorded for this repository"
    steps = [
        Step(
            "Install Sauvegarde",
            "On the new machine (Python 3.11 or newer); from a source checkout `pip install .` does the same.",
            [
                "python3 -m venv /opt/sauvegarde",
                f"/opt/sauvegarde/bin/pip install 'sauvegarde=={__version__}'",
                "export PATH=/opt/sauvegarde/bin:$PATH",
            ],
        )
    ]
    access = access_step(repo)
    if access is not None:
        steps.append(access)
    steps += [
        Step(
            "Get the key from escrow",
            f"Where it is: {escrow}. With the repository's password, write it to {pw} (first command, type it, "
            "then Ctrl-D). With the recovery sheet instead, make a new password and add it from the sheet's master "
            "key (last two commands; type the groups of the sheet, then an empty line).",
            [
                f"(umask 077; cat > {pw})",
                f"(umask 077; head -c 24 /dev/urandom | base64 > {pw})",
                f"sauvegarde key recover --repo {q(url_without_password(repo.url))} --new-password-file {pw}",
            ],
        ),
        Step(
            "Point sauvegarde at the off-site copy",
            "",
            [
                f"export SAUVEGARDE_REPOSITORY={q(url_without_password(repo.url))}",
                f"export SAUVEGARDE_PASSWORD_FILE={pw}",
            ],
        ),
        Step("List the snapshots of the asset", "", [f"sauvegarde snapshots --tag {q(asset_tag(name))}"]),
        Step("Restore and verify every file", "", _restore_command(name, asset, target)),
        load_back(asset, name, target),
        Step(
            "Verify the repository",
            "Reads the structure and 10% of the data; `--read-data` reads everything.",
            ["sauvegarde check --read-data-subset 10%"],
        ),
        Step(
            "Protect the new machine",
            "Put the plan file (and its password files) on the new machine, then check it and schedule it.",
            ["sauvegarde plan check", "sauvegarde install-service"],
        ),
    ]
    return Procedure(
        f"Rebuild on a new machine from {chosen}",
        f"When the host or the whole site is lost: fire, theft, flood, ransomware that took the host.{warning}",
        steps,
    )


def runbook(plan: Plan, name: str, first_call: str) -> Runbook:
    asset = plan.assets[name]
    summary = (
        f"Criticality {asset.criticality}; must be back within {format_duration(asset.rto)} (RTO) losing at most "
        f"{format_duration(asset.rpo)} of work (RPO). Call first: {first_call}."
    )
    keys = [
        KeyPlace(
            r,
            redact_url(plan.repositories[r].url),
            password_source(plan, plan.repositories[r]),
            plan.repositories[r].key_escrow or "NOT RECORDED",
        )
        for r in asset.repositories
    ]
    return Runbook(name, summary, [local_restore(plan, name, asset), new_machine(plan, name, asset)], keys)


def runbooks(plan: Plan) -> list[Runbook]:
    org = plan.organisation
    people = [*org.contacts, *([org.provider] if org.provider else [])]
    first = people[0] if people else None
    first_call = f"{first.name} ({first.phone or first.email})" if first else "nobody is named in the plan"
    return [runbook(plan, name, first_call) for name in plan.assets]
