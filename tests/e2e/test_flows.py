"""Real-browser flows through the running app (Chromium, Streamlit server, PostgreSQL, provider stub).

The main flow is one test because each step needs the previous one (an account, a profile, runs):
sign up → profile and vibe → prompt preview → chat (streamed, then with a fallback) → analytics →
export → delete account → signed out. Screenshots of every step go to the test's ``tmp_path``.
"""

from __future__ import annotations

import json
import re
import uuid
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ProviderStub
from tests.e2e.helpers import BrowserSession

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-42!"
FIRST_ANSWER = "Start with a two-week discovery spike, then cut scope to the smallest shippable slice."
FALLBACK_ANSWER = "Anthropic here: hire one senior SRE before the second platform engineer."
SHA256 = re.compile(r"\b[0-9a-f]{64}\b")


def send_chat(s: BrowserSession, text: str) -> None:
    box = s.page.locator("[data-testid=stChatInputTextArea]")
    box.fill(text)
    s.act(lambda: box.press("Enter"))


def test_main_flow(session: BrowserSession, stub: ProviderStub, tmp_path: Path) -> None:
    s = session
    page = s.page
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.com"

    # -- sign up: the first user becomes an admin -------------------------------------------------
    s.goto("/")
    s.expect_sign_in_view()
    s.shot("sign-in")
    s.sign_up(email, PASSWORD)
    expect(s.main.locator("h1", has_text="Chat")).to_be_visible()
    expect(s.sidebar).to_contain_text(f"Signed in as {email} · admin")
    expect(page.locator("[data-testid=stSidebarNav] a", has_text="Admin")).to_be_visible()
    s.shot("chat-empty")

    # -- profile and vibe -------------------------------------------------------------------------
    s.navigate("Profile & vibe")
    s.choose("Role", "VP Engineering")
    s.multi_choose("Stack", ["Python", "PostgreSQL"])
    s.choose("Vertical", "Fintech")
    s.click_button("Save profile")
    expect(s.main.get_by_text("Profile saved.")).to_be_visible()

    name_box = s.main.get_by_role("textbox", name="Name", exact=True)
    name_box.fill("E2E vibe")
    s.act(lambda: name_box.press("Enter"))
    playfulness = s.move_slider("Playfulness", 3)
    s.wait_idle()
    s.shot("vibe-edited")
    s.click_button("Save")
    expect(s.main.get_by_text("Saved “E2E vibe”.")).to_be_visible()
    expect(s.main.get_by_role("combobox", name="Vibe config", exact=True)).to_have_value("E2E vibe · active")
    assert s.slider_value("Playfulness") == playfulness
    s.shot("vibe-saved")

    # -- prompt preview: the prompt and its sha256 -----------------------------------------------
    s.navigate("Prompt preview")
    expect(s.main.get_by_text("Active vibe: E2E vibe")).to_be_visible()
    codes = s.main.locator("[data-testid=stCode]")
    expect(codes.first).to_be_visible()
    sha = (codes.nth(0).inner_text()).strip()
    assert SHA256.fullmatch(sha), f"first code block is not a sha256: {sha!r}"
    prompt_text = codes.nth(1).inner_text()
    assert "VP Engineering" in prompt_text, prompt_text[:500]
    assert "Fintech" in prompt_text, prompt_text[:500]
    s.shot("prompt-preview")

    # -- chat: a streamed answer with its metadata line -------------------------------------------
    stub.reply("*", {"text": FIRST_ANSWER, "input_tokens": 120, "output_tokens": 17})
    s.navigate("Chat")
    send_chat(s, "How should we plan the next quarter?")
    answers = s.main.locator("[data-testid=stChatMessage]")
    expect(answers.filter(has_text=FIRST_ANSWER)).to_have_count(1)
    first_meta = answers.filter(has_text=FIRST_ANSWER).locator("[data-testid=stCaptionContainer]").last
    expect(first_meta).to_contain_text(re.compile(r"^openai · gpt-4o-mini · .*tokens"))
    expect(first_meta).not_to_contain_text("fell back")
    s.shot("chat-first-answer")

    # -- the primary provider fails: the answer still arrives, from the fallback ------------------
    stub.fault("openai", {"kind": "unavailable"})  # every OpenAI request → 503
    stub.reply("anthropic", {"text": FALLBACK_ANSWER, "input_tokens": 130, "output_tokens": 12})
    send_chat(s, "And who should we hire first?")
    fallback = answers.filter(has_text=FALLBACK_ANSWER)
    expect(fallback).to_have_count(1)
    fallback_meta = fallback.locator("[data-testid=stCaptionContainer]").last
    expect(fallback_meta).to_contain_text("anthropic")
    expect(fallback_meta).to_contain_text("fell back from openai")
    s.shot("chat-fallback-answer")
    stub.fault("openai", None)
    seen = {r["api"] for r in stub.requests()}
    assert seen == {"openai", "anthropic"}, seen

    # -- analytics: both runs ---------------------------------------------------------------------
    s.navigate("Usage analytics")
    runs_tile = s.main.locator("[data-testid=stMetric]").filter(
        has=page.locator("[data-testid=stMetricLabel]", has_text=re.compile(r"^Runs$"))
    )
    expect(runs_tile.first.locator("[data-testid=stMetricValue]")).to_have_text("2")
    expect(s.main.get_by_role("heading", name="Recent runs")).to_be_visible()
    my_usage = page.get_by_role("tabpanel", name="My usage")
    expect(my_usage.locator("[data-testid=stDataFrame]").last).to_be_visible()
    expect(my_usage.locator(".js-plotly-plot .main-svg").first).to_be_visible()  # charts drawn
    expect(my_usage.locator(".js-plotly-plot")).to_have_count(3)
    s.shot("analytics")

    # -- status and admin render (the guard is on, both providers point at the stub) --------------
    s.navigate("Status")
    tables = s.main.locator("[data-testid=stDataFrame]")
    expect(tables.last).to_contain_text("enforce")
    expect(tables.filter(has_text="circuit breaker")).to_contain_text(stub.url)
    s.shot("status")
    s.navigate("Admin")
    expect(s.main.locator("[data-testid=stDataFrame]").first).to_be_visible()
    s.shot("admin")

    # -- privacy: export a ZIP that opens ---------------------------------------------------------
    s.navigate("Privacy")
    s.click_button("Prepare my export")
    download_button = s.main.get_by_role("button", name=re.compile(r"^Download advisor.*\.zip"))
    expect(download_button).to_be_visible()
    s.shot("privacy-export-ready")
    with page.expect_download() as info:
        download_button.click()
    archive = tmp_path / (info.value.suggested_filename or "export.zip")
    info.value.save_as(archive)
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert "manifest.json" in names, names
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["row_counts"].get("agent_runs") == 2, manifest["row_counts"]
        runs = [json.loads(line) for line in zf.read("agent_runs.jsonl").decode().splitlines() if line]
    assert {r.get("prompt_sha256") for r in runs} == {sha}, "runs were not built from the previewed prompt"

    # -- delete the account: signed out ------------------------------------------------------------
    confirm = s.main.get_by_label(f"To confirm, type your email address ({email})")
    confirm.fill(email)
    s.click_button("Delete my account permanently")
    s.expect_sign_in_view()  # signed out at once: no sidebar navigation, no account box
    expect(page.locator("[data-testid=stSidebarNav]")).to_have_count(0)
    expect(s.main.get_by_text("Your account was deleted")).to_be_visible()
    expect(s.main.locator("[data-testid=stTable]")).to_contain_text("agent_runs")
    expect(page.get_by_text(email)).to_have_count(0)
    s.shot("signed-out-after-delete")

    # the account is gone: signing in with it fails with the generic message
    s.sign_in(email, PASSWORD)
    expect(page.get_by_role("alert")).to_have_text("Email or password is incorrect")
    s.expect_sign_in_view()
    s.shot("sign-in-after-delete")
