"""util.forked: a forked child's messages and result come back; a child that raises or dies gives ChildFailed."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest

from sauvegarde.util.forked import Child, ChildFailed, Send, Turns, start_children


def test_messages_arrive_in_order_then_the_result() -> None:
    got: list[Any] = []
    parent = os.getpid()

    def work(send: Send) -> dict[str, int]:
        for i in range(500):
            send(i)
        return {"pid": os.getpid(), "sum": sum(range(500))}

    child = Child(work, got.append)
    result = child.wait()
    assert result["sum"] == 124750 and result["pid"] == child.pid != parent
    assert got == list(range(500))


def test_the_child_works_on_a_copy_of_the_parent() -> None:
    state = {"seen": 0}

    def work(send: Send) -> int:
        state["seen"] += 1  # the child's copy
        return state["seen"] + 41

    assert Child(work, lambda m: None).wait() == 42
    assert state == {"seen": 0}


def test_an_exception_in_the_child_is_reported_not_raised_there() -> None:
    def work(send: Send) -> None:
        raise ValueError("no space in the batch")

    with pytest.raises(ChildFailed, match=r"worker process failed: ValueError: no space in the batch at .*"):
        Child(work, lambda m: None).wait()


def test_a_child_that_dies_gives_no_result() -> None:
    def work(send: Send) -> int:
        send("started")
        os.kill(os.getpid(), signal.SIGKILL)
        return 1  # never reached

    got: list[Any] = []
    with pytest.raises(ChildFailed, match=r"ended without a result \(killed by signal 9\)"):
        Child(work, got.append).wait()
    assert got == ["started"]


def test_kill_stops_a_child_that_runs_on() -> None:
    def work(send: Send) -> None:
        threading.Event().wait(60)

    child = Child(work, lambda m: None)
    child.kill()
    with pytest.raises(ChildFailed, match="signal 9"):
        child.wait()


def test_interrupts_are_left_to_the_parent() -> None:
    """SIGINT and SIGTERM sent to the child alone do not stop it (the parent decides; kill still does)."""

    def work(send: Send) -> str:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        return "finished"

    assert Child(work, lambda m: None).wait() == "finished"


def test_turns_hand_each_number_to_exactly_one_process() -> None:
    turns = Turns(3000)

    def work(send: Send) -> list[int]:
        return list(iter(turns.take, None))

    children = [Child(work, lambda message: None) for _ in range(2)]
    mine = list(iter(turns.take, None))
    theirs = [child.wait() for child in children]
    taken = sorted(mine + theirs[0] + theirs[1])
    assert taken == list(range(3000))
    assert turns.take() is None


def test_start_children_stops_at_the_first_refused_process() -> None:
    made: list[Child] = []

    def make() -> Child:
        if len(made) == 2:
            raise OSError(11, "Resource temporarily unavailable")  # what fork gives when no process is left
        child = Child(lambda send: len(made), lambda message: None)
        made.append(child)
        return child

    children = start_children(5, make)
    assert children == made and len(children) == 2
    assert sorted(child.wait() for child in children) == [0, 1]
