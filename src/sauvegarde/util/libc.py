"""The C library, for the few calls Python does not wrap (glibc's ``mallopt``/``malloc_trim``, Linux's ``prctl``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def libc() -> ctypes.CDLL:
    """The process's C library (loaded once); raises OSError where there is none to load."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
