"""The experience view's exceptions groups: a supervisor marks one "add to the phone tree" and
downloads it as a draft intent, within the Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, expect

from .conftest import Ivr, Server
from .csp import watch_csp

pytestmark = pytest.mark.browser

WORDS = ["my late husband's account", "account of my husband who died"]


def test_a_group_is_marked_and_its_draft_intent_downloaded(
    server: Server, ivr: Ivr, sign_in: Callable[..., Page], tmp_path: Path
) -> None:
    for words in WORDS:
        call_id = ivr.start()
        ivr.verify(call_id)
        ivr.handoff(call_id, key=f'"{words}"', utterance=words)

    boss = sign_in("super")
    csp = watch_csp(boss)
    boss.get_by_test_id("reports-link").click()
    group = boss.get_by_test_id("exception-group")
    expect(group).to_have_count(1)

    group.get_by_test_id("exception-mark").click()
    expect(group.get_by_test_id("exception-marked")).to_have_text("Marked: add to the phone tree")
    expect(group.get_by_test_id("exception-mark")).to_have_count(0)
    # The mark is the server's, not the page's.
    boss.reload()
    expect(
        boss.get_by_test_id("exception-group").get_by_test_id("exception-marked")
    ).to_be_visible()

    with boss.expect_download() as info:
        boss.get_by_test_id("exception-group").get_by_test_id("exception-draft").click()
    download = info.value
    assert download.suggested_filename.endswith(".yaml")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    text = saved.read_text(encoding="utf-8")
    ((name, intent),) = yaml.safe_load(text).items()
    assert "husband" in name and intent["queue"] == "escalations"
    assert "husband" in intent["keywords"]["en"]
    assert "my late husband's account" in text

    assert csp.without_policy == []
    assert csp.violations == []
