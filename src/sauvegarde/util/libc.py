"""The C library, for the few calls Python does not wrap (glibc's ``mallopt``/``malloc_trim``, Linux's ``prctl``)."""

from __future__ import annotations

import ctypes
import functools


@functools.cache
def libc() -> ctypes.CDLL:
    """The C library the process runs on, through the process's own symbols (``dlopen(NULL)``: the library is
    loaded already). A missing function raises AttributeError when looked up. (``ctypes.util.find_library``
    runs ``ldconfig -p`` to find its name: 13 ms and 2 MiB at the start of every command.)"""
    return ctypes.CDLL(None, use_errno=True)
