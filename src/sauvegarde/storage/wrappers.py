"""Storage wrappers for what cuts across backends: retry, connection limits, metrics, and fault injection for tests.

Each wrapper is itself a :class:`~sauvegarde.storage.base.Storage` around an inner one, so they stack;
:func:`sauvegarde.storage.registry.open_storage` puts remote backends inside
``MetricsStorage(RetryingStorage(LimitedStorage(backend)))``: metrics count what the repository asked for, the
retry loop sleeps without holding a connection slot, and the limiter bounds what reaches the server.

``list`` is materialised by every wrapper here (the whole listing is fetched, then yielded): a listing retried
half-way would repeat names, and a generator holding a connection slot while its caller loads objects could
deadlock the limiter.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from sauvegarde.errors import ObjectExists, ObjectNotFound, TransientStorageError
from sauvegarde.storage.base import Buffer, ObjectInfo, Storage

T = TypeVar("T")

OPERATIONS = ("exists", "create", "save", "load", "stat", "list", "delete")


class ForwardingStorage:
    """Forwards every call to ``inner``; the base of the wrappers."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.location = inner.location

    def exists(self) -> bool:
        return self.inner.exists()

    def create(self) -> None:
        self.inner.create()

    def save(self, name: str, data: Buffer) -> None:
        self.inner.save(name, data)

    def load(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return self.inner.load(name, offset, length)

    def stat(self, name: str) -> ObjectInfo:
        return self.inner.stat(name)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def delete(self, name: str) -> None:
        self.inner.delete(name)

    def close(self) -> None:
        self.inner.close()


# ---- retry ------------------------------------------------------------------------------------------------


class RetryingStorage(ForwardingStorage):
    """Retries :class:`TransientStorageError` with bounded exponential backoff and jitter; all else passes through.

    The n-th retry waits ``min(max_delay, base_delay * 2**(n-1))`` scaled by a random factor in [0.5, 1]
    ("equal jitter"), so parallel clients spread out and no wait exceeds ``max_delay``. ``attempts`` counts the
    first try: ``attempts=1`` never retries.

    Ambiguous failures: a save whose reply was lost may have been stored. If a retry then meets
    :class:`ObjectExists`, the stored object is compared with ``data`` (size, then bytes): identical means the
    earlier attempt landed and the save succeeded; different raises :class:`ObjectExists`. Likewise a delete
    retried into :class:`ObjectNotFound` succeeded. An :class:`ObjectExists` on the first attempt is a genuine
    conflict and is raised at once.
    """

    def __init__(
        self,
        inner: Storage,
        attempts: int = 6,
        base_delay: float = 0.5,
        max_delay: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(inner)
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._jitter = jitter
        self._lock = threading.Lock()
        self.retries = 0  # retries made so far, all operations together

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(retry - 1, 62))
        return ceiling * (0.5 + 0.5 * self._jitter())

    def _backoff(self, attempt: int, exc: TransientStorageError) -> None:
        if attempt >= self.attempts:
            suffix = f" (gave up after {self.attempts} attempts)" if self.attempts > 1 else ""
            raise TransientStorageError(f"{exc}{suffix}") from exc
        with self._lock:
            self.retries += 1
        self._sleep(self.delay(attempt))

    def _call(self, fn: Callable[[], T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except TransientStorageError as exc:
                self._backoff(attempt, exc)

    def exists(self) -> bool:
        return self._call(self.inner.exists)

    def create(self) -> None:
        self._call(self.inner.create)

    def load(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._call(lambda: self.inner.load(name, offset, length))

    def stat(self, name: str) -> ObjectInfo:
        return self._call(lambda: self.inner.stat(name))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return iter(self._call(lambda: list(self.inner.list(prefix))))

    def save(self, name: str, data: Buffer) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                self.inner.save(name, data)
                return
            except ObjectExists:
                if attempt == 1:
                    raise
                self._confirm_saved(name, data)
                return
            except TransientStorageError as exc:
                self._backoff(attempt, exc)

    def _confirm_saved(self, name: str, data: Buffer) -> None:
        """After an ambiguous save, accept an existing object only if it holds exactly ``data``."""
        size = memoryview(data).nbytes
        stored = self.stat(name).size
        if stored != size:
            raise ObjectExists(f"{name}: already exists with another size ({stored} bytes, not {size})")
        if self.load(name) != bytes(data):
            raise ObjectExists(f"{name}: already exists with other content")

    def delete(self, name: str) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                self.inner.delete(name)
                return
            except ObjectNotFound:
                if attempt == 1:
                    raise
                return  # an earlier attempt deleted it before its reply was lost
            except TransientStorageError as exc:
                self._backoff(attempt, exc)


# ---- connection limit -------------------------------------------------------------------------------------


class LimitedStorage(ForwardingStorage):
    """At most ``connections`` operations in flight at once; callers beyond that wait their turn."""

    def __init__(self, inner: Storage, connections: int) -> None:
        super().__init__(inner)
        if connections < 1:
            raise ValueError("connections must be at least 1")
        self.connections = connections
        self._slots = threading.BoundedSemaphore(connections)

    def exists(self) -> bool:
        with self._slots:
            return self.inner.exists()

    def create(self) -> None:
        with self._slots:
            self.inner.create()

    def save(self, name: str, data: Buffer) -> None:
        with self._slots:
            self.inner.save(name, data)

    def load(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        with self._slots:
            return self.inner.load(name, offset, length)

    def stat(self, name: str) -> ObjectInfo:
        with self._slots:
            return self.inner.stat(name)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._slots:
            items = list(self.inner.list(prefix))
        return iter(items)

    def delete(self, name: str) -> None:
        with self._slots:
            self.inner.delete(name)


# ---- metrics ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OperationMetrics:
    """Totals for one operation: calls, calls that raised, payload bytes moved, and time spent."""

    calls: int = 0
    errors: int = 0
    bytes: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class StorageMetrics:
    """A consistent snapshot of a :class:`MetricsStorage`'s counters, keyed by operation name."""

    operations: Mapping[str, OperationMetrics] = field(default_factory=dict)

    def of(self, op: str) -> OperationMetrics:
        return self.operations.get(op, OperationMetrics())

    @property
    def bytes_in(self) -> int:
        """Bytes loaded from the storage."""
        return self.of("load").bytes

    @property
    def bytes_out(self) -> int:
        """Bytes saved to the storage."""
        return self.of("save").bytes

    @property
    def errors(self) -> int:
        return sum(m.errors for m in self.operations.values())


class MetricsStorage(ForwardingStorage):
    """Counts operations, errors, bytes in and out and time per operation; :meth:`snapshot` reads them."""

    def __init__(self, inner: Storage, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(inner)
        self._clock = clock
        self._lock = threading.Lock()
        self._ops: dict[str, OperationMetrics] = {}

    def snapshot(self) -> StorageMetrics:
        with self._lock:
            return StorageMetrics(dict(self._ops))

    def _record(self, op: str, start: float, nbytes: int = 0, failed: bool = False) -> None:
        elapsed = self._clock() - start
        with self._lock:
            m = self._ops.get(op, OperationMetrics())
            self._ops[op] = OperationMetrics(m.calls + 1, m.errors + int(failed), m.bytes + nbytes, m.seconds + elapsed)

    def _measure(self, op: str, fn: Callable[[], T], size: Callable[[T], int] = lambda _: 0) -> T:
        start = self._clock()
        try:
            result = fn()
        except BaseException:
            self._record(op, start, failed=True)
            raise
        self._record(op, start, size(result))
        return result

    def exists(self) -> bool:
        return self._measure("exists", self.inner.exists)

    def create(self) -> None:
        self._measure("create", self.inner.create)

    def save(self, name: str, data: Buffer) -> None:
        nbytes = memoryview(data).nbytes
        self._measure("save", lambda: self.inner.save(name, data), lambda _: nbytes)

    def load(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._measure("load", lambda: self.inner.load(name, offset, length), len)

    def stat(self, name: str) -> ObjectInfo:
        return self._measure("stat", lambda: self.inner.stat(name))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return iter(self._measure("list", lambda: list(self.inner.list(prefix))))

    def delete(self, name: str) -> None:
        self._measure("delete", lambda: self.inner.delete(name))


# ---- fault injection (tests) ------------------------------------------------------------------------------


@dataclass
class _Fault:
    op: str
    first: int
    last: int
    error: BaseException
    after: bool


class FaultInjectingStorage(ForwardingStorage):
    """Makes chosen calls fail, for tests: ``fail("save", nth=2, error=...)`` breaks the second save.

    Calls are counted per operation from the wrapper's creation (``calls["save"]``). With ``after=True`` the
    operation is carried out before the error is raised, as when a reply is lost after the server acted.
    """

    def __init__(self, inner: Storage) -> None:
        super().__init__(inner)
        self.calls: Counter[str] = Counter()
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    def fail(
        self, op: str, nth: int = 1, error: BaseException | None = None, times: int = 1, after: bool = False
    ) -> None:
        """Fail calls ``nth`` .. ``nth + times - 1`` of ``op`` (1-based) with ``error`` (default: transient)."""
        if op not in OPERATIONS:
            raise ValueError(f"unknown storage operation {op!r}")
        err = error if error is not None else TransientStorageError(f"injected fault in {op}")
        with self._lock:
            self._faults.append(_Fault(op, nth, nth + times - 1, err, after))

    def _run(self, op: str, fn: Callable[[], T]) -> T:
        with self._lock:
            self.calls[op] += 1
            n = self.calls[op]
            fault = next((f for f in self._faults if f.op == op and f.first <= n <= f.last), None)
        if fault is None:
            return fn()
        if fault.after:
            fn()
        raise fault.error

    def exists(self) -> bool:
        return self._run("exists", self.inner.exists)

    def create(self) -> None:
        self._run("create", self.inner.create)

    def save(self, name: str, data: Buffer) -> None:
        self._run("save", lambda: self.inner.save(name, data))

    def load(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._run("load", lambda: self.inner.load(name, offset, length))

    def stat(self, name: str) -> ObjectInfo:
        return self._run("stat", lambda: self.inner.stat(name))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return iter(self._run("list", lambda: list(self.inner.list(prefix))))

    def delete(self, name: str) -> None:
        self._run("delete", lambda: self.inner.delete(name))


def is_remote(storage: object) -> bool:
    """Whether ``storage`` is a remote backend (the registry wraps those in a :class:`LimitedStorage`)."""
    for _ in range(16):
        if isinstance(storage, LimitedStorage):
            return True
        storage = getattr(storage, "inner", None)
        if storage is None:
            return False
    return False
