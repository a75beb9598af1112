"""Modules imported on first use rather than at import time.

Opening a repository derives the key with Argon2id, which takes 64 MiB for a moment; whatever is imported before
that adds to the process's peak memory. NumPy (15 MiB) is only needed once the index is built or the ransomware
guard samples a file, both after the key is derived, so those modules reach it through :func:`lazy_module`.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

TYPE_CHECKING = False  # typing itself is imported after the key derivation (sauvegarde.cli.entry)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class _LazyModule(ModuleType):
    """Stands for a module until an attribute is asked for, then imports it and takes a copy of its namespace.

    Thread-safe: the import itself is serialised by the import system, and copying the same namespace twice is
    harmless. Attributes the module adds after the first access are still found through ``__getattr__``.
    """

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__name__)
        self.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
        return getattr(module, attr)


def lazy_module(name: str) -> ModuleType:
    """A stand-in for module ``name`` that imports it on its first attribute access (``sys.modules`` untouched)."""
    return _LazyModule(name)


def lazy_names(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A PEP 562 ``__getattr__`` for ``package``: each name in ``homes`` is imported from its submodule
    (``homes[name]``) on first use and then kept in the package's namespace."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
