"""Shared options for choosing snapshots: --host, --path, --tag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from sauvegarde.engine.find import SnapshotFilter

F = TypeVar("F", bound=Callable[..., Any])


def filter_options(f: F) -> F:
    f = click.option("--tag", "tags", multiple=True, metavar="TAG[,TAG]", help="Only snapshots with these tags.")(f)
    f = click.option("--path", "paths", multiple=True, metavar="PATH", help="Only snapshots of exactly these paths.")(f)
    f = click.option("-H", "--host", "hosts", multiple=True, metavar="HOST", help="Only snapshots from HOST.")(f)
    return f


def make_filter(hosts: tuple[str, ...], paths: tuple[str, ...], tags: tuple[str, ...]) -> SnapshotFilter:
    return SnapshotFilter(hosts=hosts, paths=paths, tags=tags)
