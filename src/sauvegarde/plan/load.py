"""Reading a plan file: TOML, validated by :mod:`sauvegarde.plan.model`, with errors that name file, line and field.

``tomllib`` gives no positions, so :func:`key_lines` scans the text once and records the line of every table header
and key (dotted keys, ``[[arrays]]`` with their index, and the elements of multi-line arrays). An error's location
is matched against that map, falling back to the longest known prefix (the enclosing table).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sauvegarde.errors import SauvegardeError, UsageError

if TYPE_CHECKING:
    from pydantic import ValidationError

    from sauvegarde.plan.model import Plan

# The model (pydantic) is imported when a plan is parsed, not with this module; finding where the plan file is
# (sauvegarde.plan.paths) does not import this module either: a guarded backup does it, with no plan most of the time.

Location = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


class PlanInvalid(SauvegardeError):
    """The plan file is missing, not TOML, or does not validate; one line per problem, ``file:line: field: why``."""

    exit_code = 2

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def load_plan(path: str) -> Plan:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"no plan at {path}: write one (see docs/plan.md) or run `sauvegarde quickstart`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanInvalid([f"{path}: cannot read the plan ({exc})"]) from None
    return parse_plan(text, path)


def parse_plan(text: str, path: str = "plan.toml") -> Plan:
    """Validate ``text``; raise :class:`PlanInvalid` listing every problem found."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanInvalid([_toml_error(path, exc)]) from None
    from pydantic import ValidationError

    from sauvegarde.plan.model import Plan

    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanInvalid(describe_errors(exc, text, path)) from None
    return plan.model_copy(update={"source": os.path.abspath(path)})


def _toml_error(path: str, exc: tomllib.TOMLDecodeError) -> str:
    m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
    where = f"{path}:{m.group(1)}" if m else path
    message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
    return f"{where}: not valid TOML: {message}"


def describe_errors(exc: ValidationError, text: str, path: str) -> list[str]:
    from sauvegarde.plan.model import ReferenceProblems

    lines = key_lines(text)
    out = []
    for err in exc.errors():
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, ReferenceProblems):
            for problem in ctx_error.problems:
                dotted, _, message = problem.partition(": ")
                loc = tuple(int(p) if p.isdigit() else p for p in dotted.split("."))
                out.append(f"{path}:{line_of(lines, loc)}: {dotted}: {message}")
            continue
        loc = _clean_loc(err["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        out.append(f"{path}:{line_of(lines, loc)}: {field}: {_message(err)}")
    return out


def _clean_loc(loc: tuple[Any, ...]) -> Location:
    """Drop pydantic's validator tags (``function-after[...]``) from a location."""
    return tuple(p for p in loc if isinstance(p, int) or not (("[" in p and "]" in p) or p.startswith("function-")))


def _message(err: Any) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    if kind == "extra_forbidden":
        return "unknown field (misspelt? see docs/plan.md for the fields allowed here)"
    if kind == "missing":
        return "required field missing"
    if kind == "literal_error":
        return f"{msg.replace('Input should be', 'expected')} (got {err.get('input')!r})"
    msg = msg.removeprefix("Value error, ")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"{msg.replace('Input should be', 'expected')} (got {err.get('input')!r})"
    return msg.replace("Input should be", "expected")


def line_of(lines: dict[Location, int], loc: Location) -> int:
    """The line of ``loc``, or of its longest known prefix (the enclosing table); 1 when nothing matches."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return 1


def key_lines(text: str) -> dict[Location, int]:
    """Map every table, key and multi-line array element of a TOML text to its line (1-based)."""
    out: dict[Location, int] = {}
    table: Location = ()
    counts: dict[Location, int] = {}
    array_key: Location | None = None  # inside a multi-line array value
    array_index = 0
    depth = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw)
        if array_key is not None:
            if line.strip() and not line.strip().startswith("]"):
                out.setdefault((*array_key, array_index), number)
                array_index += line.count(",") if line.rstrip().endswith(",") else 1
            depth += _depth(line)
            if depth <= 0:
                array_key = None
            continue
        header = _HEADER.match(line)
        if header and not _KEY.match(line):
            parts = _split_key(header.group(2))
            if header.group(1) == "[[":
                index = counts.get(parts, 0)
                counts[parts] = index + 1
                out.setdefault(parts, number)
                table = (*parts, index)
            else:
                table = parts
            out.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            loc = (*table, *_split_key(key.group(1)))
            out.setdefault(loc, number)
            value = line[key.end() :]
            depth = _depth(value)
            if depth > 0:
                array_key, array_index = loc, 0
                inner = value.strip()[1:].strip()
                if inner:
                    out.setdefault((*loc, 0), number)
                    array_index = inner.count(",")
    return out


def _split_key(text: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", text)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def _strip_comment(line: str) -> str:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _depth(text: str) -> int:
    """Net count of open brackets and braces outside strings."""
    depth, quote = 0, ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return depth
