"""Accessibility: axe-core (WCAG 2.1 AA rules) in Chromium on every page, at desktop and phone width.

The pages are the ones ``ui/page_router.py`` lists (read from its source, so a page added there is
checked without touching this test), plus the sign-in view. The user is signed in (the first
account, so an admin: every page is listed) and has one answer on the chat page. Each page must
show 0 serious or critical violations; moderate and minor ones are printed with the test's output.
"""

from __future__ import annotations

import ast
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.e2e.conftest import ProviderStub
from tests.e2e.helpers import BrowserSession

pytestmark = pytest.mark.e2e

ROUTER = Path(__file__).resolve().parents[2] / "ui" / "page_router.py"
WIDTHS = {"desktop": 1400, "phone": 390}
HEIGHT = 1000
BLOCKING = {"serious", "critical"}
# WCAG 2.0/2.1 A and AA rules, and axe's best practices (heading order is one of them).
AXE_OPTIONS = {
    "resultTypes": ["violations"],
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
}
PASSWORD = "correct-horse-42!"
ANSWER = "Ship the smallest slice first, then measure adoption for two weeks before you widen it."


@dataclass(frozen=True)
class Finding:
    where: str
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def line(self) -> str:
        shown = ", ".join(self.targets[:3]) + (" …" if len(self.targets) > 3 else "")
        return f"{self.where}: {self.rule} ({self.impact}) {self.help} — {shown}"


def router_page_titles() -> list[str]:
    """The titles of the ``st.Page(PAGES_DIR / "<file>.py", title=...)`` entries of the page router."""
    titles: list[str] = []
    for node in ast.walk(ast.parse(ROUTER.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "Page"):
            continue
        if not (node.args and isinstance(node.args[0], ast.BinOp)):  # a page file, not the sign-in view
            continue
        title = next((k.value for k in node.keywords if k.arg == "title"), None)
        assert isinstance(title, ast.Constant) and isinstance(title.value, str), ast.dump(node)
        titles.append(title.value)
    return titles


def test_router_page_titles_are_found() -> None:
    titles = router_page_titles()
    assert {"Chat", "Profile & vibe", "Prompt preview", "Usage analytics", "Privacy", "Status", "Admin"} <= set(
        titles
    ), titles


def audit(s: BrowserSession, axe: Axe, name: str) -> list[Finding]:
    """axe on the page as it is now, at each width (the session stays the same: no reload)."""
    findings: list[Finding] = []
    for label, width in WIDTHS.items():
        s.page.set_viewport_size({"width": width, "height": HEIGHT})
        s.wait_app_if_shown()  # the sign-in page is plain HTML, no app to wait for
        s.page.wait_for_timeout(300)  # let the layout settle after the resize (no rerun to wait for)
        results: Any = axe.run(s.page, options=AXE_OPTIONS)
        for violation in results.response["violations"]:
            findings.append(
                Finding(
                    where=f"{name} @ {label} {width}px",
                    rule=violation["id"],
                    impact=str(violation["impact"]),
                    help=violation["help"],
                    targets=tuple(" ".join(map(str, n["target"])) for n in violation["nodes"]),
                )
            )
        s.shot(f"a11y-{name}-{label}")
    s.page.set_viewport_size({"width": WIDTHS["desktop"], "height": HEIGHT})
    s.wait_app_if_shown()
    return findings


def test_every_page_has_no_serious_accessibility_violation(session: BrowserSession, stub: ProviderStub) -> None:
    s = session
    axe = Axe()
    findings: list[Finding] = []

    s.goto("/")
    s.expect_sign_in_view()
    findings += audit(s, axe, "Sign in")

    page = s.page
    s.goto("/signup")
    findings += audit(s, axe, "Create account")
    s.sign_up(f"a11y-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    expect(s.main.locator("h1", has_text="Chat")).to_be_visible()

    stub.reply("*", {"text": ANSWER, "input_tokens": 120, "output_tokens": 17})
    box = page.locator("[data-testid=stChatInputTextArea]")
    box.fill("How should we roll out the new billing page?")
    s.act(lambda: box.press("Enter"))
    expect(s.main.locator("[data-testid=stChatMessage]").filter(has_text=ANSWER)).to_have_count(1)

    titles = router_page_titles()
    for title in titles:
        if title != "Chat":
            s.navigate(title)
        else:
            s.navigate("Chat")
            expect(s.main.locator("[data-testid=stChatMessage]").filter(has_text=ANSWER)).to_have_count(1)
        findings += audit(s, axe, title)

    others = [f for f in findings if f.impact not in BLOCKING]
    print("\naxe findings below serious (named in the report):\n" + "\n".join(f.line() for f in others))
    blocking = [f for f in findings if f.impact in BLOCKING]
    assert not blocking, "serious or critical accessibility violations:\n" + "\n".join(f.line() for f in blocking)
