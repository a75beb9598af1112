"""XDG base directories for Sauvegarde's config, data, state and cache."""

from __future__ import annotations

import os


def _base(var: str, default: str) -> str:
    value = os.environ.get(var, "")
    return value if os.path.isabs(value) else os.path.join(os.path.expanduser("~"), default)


def config_dir() -> str:
    return os.path.join(_base("XDG_CONFIG_HOME", ".config"), "sauvegarde")


def data_dir() -> str:
    return os.path.join(_base("XDG_DATA_HOME", ".local/share"), "sauvegarde")


def state_dir() -> str:
    return os.path.join(_base("XDG_STATE_HOME", ".local/state"), "sauvegarde")


def cache_dir() -> str:
    return os.path.join(_base("XDG_CACHE_HOME", ".cache"), "sauvegarde")


def default_repository() -> str:
    return os.path.join(data_dir(), "repository")


def default_password_file() -> str:
    return os.path.join(config_dir(), "repository.password")
