"""The page tests' browser: where it is missing, the reason names what to install."""

from __future__ import annotations

from chatra_sandbox import browser


def test_a_missing_chromium_is_named_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "no-chromium")

    reason = browser.missing_reason()

    assert reason is not None
    assert str(tmp_path / "no-chromium") in reason
    assert "chromium package" in reason


def test_a_file_that_is_not_executable_is_not_a_browser(monkeypatch, tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n", encoding="utf-8")
    monkeypatch.setattr(browser, "CHROMIUM", fake)

    assert browser.missing_reason() is not None
