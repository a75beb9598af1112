"""AppContext.emit_json_list: a list written as it comes is the same line json.dumps makes of it whole."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from sauvegarde.cli.context import AppContext


@pytest.mark.parametrize("count", [0, 1, 2, 1023, 1024, 1025, 2048, 3000])
@pytest.mark.parametrize("shape", ["head and tail", "head only", "nothing else"])
def test_the_streamed_list_is_the_whole_document(count: int, shape: str, capsys: pytest.CaptureFixture[str]) -> None:
    head = {"snapshot": "ab", "n": 3} if shape != "nothing else" else {}
    items = [{"path": f"/d/f{i}", "bytes": b"\x01\x02", "k": i} for i in range(count)]
    seen: list[int] = []

    def given() -> Iterator[dict[str, object]]:
        for item in items:
            seen.append(1)
            yield item

    tail = (lambda: {"added": len(seen), "removed": 0}) if shape == "head and tail" else None
    AppContext(json=True).emit_json_list(head, "nodes", given(), tail)
    AppContext(json=True).emit_json({**head, "nodes": items, **(tail() if tail else {})})
    streamed, whole, rest = capsys.readouterr().out.split("\n")
    assert streamed == whole and rest == ""
    assert (
        json.loads(streamed)["nodes"][-1:]
        == [{"path": f"/d/f{count - 1}", "bytes": "0102", "k": count - 1}][: min(count, 1)]
    )
