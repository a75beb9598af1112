"""The fully commented example in docs/plan.md is the fixture here, so it always validates."""

from __future__ import annotations

import re
from pathlib import Path

from sauvegarde.plan.load import load_plan

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "example-plan.toml"


def test_example_plan_is_valid() -> None:
    plan = load_plan(str(FIXTURE))
    assert set(plan.assets) == {"care-records", "documents"}
    assert plan.assets["care-records"].repositories == ["nas", "offsite", "usb"]
    assert plan.repositories["offsite"].immutable


def test_docs_show_the_fixture_verbatim() -> None:
    doc = (ROOT / "docs" / "plan.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", doc, re.S)
    assert FIXTURE.read_text(encoding="utf-8") in blocks
