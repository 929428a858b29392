"""Driving a Streamlit app in Playwright without fixed sleeps.

Every step that makes Streamlit rerun goes through :meth:`BrowserSession.act`: it notes how many
script runs the page has started, performs the action, then waits until a *new* run has started and
the app is idle again (``[data-testid=stApp][data-test-script-state=notRunning]``). An init script
counts the runs by watching that attribute, so a fast rerun is not missed between two polls.

A run so short that the browser renders "running" and "notRunning" in one frame never changes the
attribute at all (React batches the two state updates). So the init script also counts the
messages the app's WebSocket receives: an action after which messages arrived, and then none for a
quiet spell while the app shows idle, has had its rerun too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from playwright.sync_api import ConsoleMessage, Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"
STEP_TIMEOUT_MS = 30_000
# First visits import heavy modules (plotly, the provider SDKs): give assertions the same patience.
expect.set_options(timeout=STEP_TIMEOUT_MS)

QUIET_MS = 400  # no WebSocket message for this long while idle: the coalesced run is over
SIGN_IN_PAGES = ("/signin", "/signup")  # plain HTML pages (core.auth_pages), not the Streamlit app

# Every Content-Security-Policy violation of every document the page loads is reported to the test
# (``BrowserSession.csp_violations``): the e2e fixture fails a test whose pages violated the policy.
REPORT_CSP_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.__advisorCspViolation(
    `${e.effectiveDirective} refused ${e.blockedURI || '(inline)'} on ${e.documentURI}` +
    (e.sourceFile ? ` (from ${e.sourceFile}:${e.lineNumber})` : ''));
});
"""

COUNT_RUNS = """
(() => {
  window.__stRuns = 0;
  window.__wsIn = 0;
  window.__wsLast = 0;
  const seen = (value) => { if (value && value !== 'notRunning' && value !== 'initial') window.__stRuns++; };
  new MutationObserver((records) => {
    for (const r of records) {
      // Any change of the attribute means a run started, even when the records arrive together
      // and the attribute already reads "notRunning" again.
      if (r.type === 'attributes') window.__stRuns++;
      else for (const n of r.addedNodes) {
        if (n.nodeType === 1 && n.matches && n.matches('[data-testid=stApp]'))
          seen(n.getAttribute('data-test-script-state'));
      }
    }
  }).observe(document, {subtree: true, childList: true, attributes: true,
                        attributeFilter: ['data-test-script-state']});
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => { window.__wsIn++; window.__wsLast = performance.now(); });
    }
  };
})();
"""

RUN_DONE = """([n, m, quiet]) => {
  const app = document.querySelector('[data-testid=stApp]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if ((window.__stRuns || 0) > n) return true;
  return (window.__wsIn || 0) > m && performance.now() - window.__wsLast > quiet;
}"""

CONTENT_HEIGHT = """
(() => {
  const ids = ['stMain', 'stAppScrollToBottomContainer', 'stSidebarContent'];
  let h = 0;
  for (const id of ids) {
    const el = document.querySelector(`[data-testid=${id}]`);
    if (el) h = Math.max(h, el.scrollHeight);
  }
  const bottom = document.querySelector('[data-testid=stBottom]');
  return h + (bottom ? bottom.offsetHeight : 0);
})()
"""


class BrowserSession:
    """One browser context on the app, with numbered screenshots under ``shots_dir``."""

    def __init__(self, page: Page, base_url: str, shots_dir: Path) -> None:
        self.page = page
        self.base_url = base_url
        self.shots_dir = shots_dir
        self.shots: list[Path] = []
        self.log: list[str] = []
        self.started = time.monotonic()
        shots_dir.mkdir(parents=True, exist_ok=True)
        page.set_default_timeout(STEP_TIMEOUT_MS)
        page.add_init_script(COUNT_RUNS)
        self.csp_violations: list[str] = []
        page.expose_function("__advisorCspViolation", self._note_csp_violation)
        page.add_init_script(REPORT_CSP_VIOLATIONS)
        page.on("console", self._note_csp_console_message)

    # the Content-Security-Policy ---------------------------------------------------------------
    def _note_csp_violation(self, description: str) -> None:
        self.csp_violations.append(description)

    def _note_csp_console_message(self, message: ConsoleMessage) -> None:
        """Chromium also logs each violation to the console ("... violates the following Content
        Security Policy directive ..."), including ones no event reports."""
        if "Content Security Policy" in message.text:
            self.csp_violations.append(f"console: {message.text}")

    def take_csp_violations(self) -> list[str]:
        """The violations reported so far, which are then forgotten (a test that expects some)."""
        taken = list(self.csp_violations)
        self.csp_violations.clear()
        return taken

    # waiting -----------------------------------------------------------------------------------
    def runs(self) -> tuple[int, int]:
        """(script runs seen, WebSocket messages received) so far."""
        counts = self.page.evaluate("[window.__stRuns || 0, window.__wsIn || 0]")
        return int(counts[0]), int(counts[1])

    def wait_idle(self, after: tuple[int, int] | None = None) -> None:
        """Idle now; with ``after`` (a :meth:`runs` reading), idle after a run newer than that."""
        if after is None:
            self.page.wait_for_selector(IDLE, state="attached")
            return
        try:
            self.page.wait_for_function(RUN_DONE, arg=[after[0], after[1], QUIET_MS])
        except PlaywrightTimeoutError as exc:
            state = self.page.evaluate(
                """() => [window.__stRuns || 0, window.__wsIn || 0,
                          document.querySelector('[data-testid=stApp]')
                              ?.getAttribute('data-test-script-state') ?? null]"""
            )
            raise AssertionError(
                f"no finished rerun after the action: before (runs, ws messages) = {after}, now "
                f"{state[:2]}, script state {state[2]!r}, url {self.page.url}"
            ) from exc

    def act(self, action: Callable[[], Any]) -> None:
        """Do something that reruns the script, then wait until that rerun has finished.

        Starts from idle: a rerun requested while a run is still going replaces it without the
        state attribute ever changing, and would not be counted.
        """
        self.wait_idle()
        before = self.runs()
        t0 = time.monotonic()
        action()
        t1 = time.monotonic()
        self.wait_idle(after=before)
        name = getattr(action, "__name__", "action")
        self.log.append(f"{name}: {t1 - t0:.2f}s, then the rerun {time.monotonic() - t1:.2f}s")

    def goto(self, path: str = "/") -> None:
        """Open ``path``; when the app shows (not the plain sign-in pages a signed-out visitor is
        sent to), wait until it is connected and idle."""
        self.page.goto(self.base_url + path)
        self.wait_app_if_shown()

    def on_sign_in_pages(self) -> bool:
        """Whether the browser shows one of the plain sign-in pages (``/signin``, ``/signup``)."""
        return urlsplit(self.page.url).path in SIGN_IN_PAGES

    def wait_app_if_shown(self) -> None:
        if self.on_sign_in_pages():
            return
        self.wait_idle()
        expect(self.page.locator("[data-testid=stApp]")).to_have_attribute(
            "data-test-connection-state", re.compile("CONNECTED", re.IGNORECASE)
        )

    def submit(self, button: Locator) -> None:
        """Click a plain form's submit button (a full page load), then wait for what it loads."""
        with self.page.expect_navigation():
            button.click()
        self.wait_app_if_shown()

    # signing in and out through the real forms ---------------------------------------------------
    def sign_in_form(self) -> Locator:
        """The sign-in form: the sign-in page's, or the one the app shows when a session ended."""
        return self.page.locator("form", has=self.page.get_by_role("button", name="Sign in", exact=True))

    def sign_up(self, email: str, password: str, *, path: str = "/") -> None:
        """Create an account through the create-account page, landing on ``path``."""
        self.goto(f"/signup?next={quote(path)}" if path != "/" else "/signup")
        form = self.page.locator("form", has=self.page.get_by_role("button", name="Create account"))
        form.get_by_label("Email", exact=True).fill(email)
        form.get_by_label("Password", exact=True).fill(password)
        form.get_by_label("Repeat password", exact=True).fill(password)
        self.submit(form.get_by_role("button", name="Create account"))

    def sign_in(self, email: str, password: str) -> None:
        """Fill and send the sign-in form shown now (open ``/signin`` first when none is)."""
        form = self.sign_in_form()
        if not form.count():
            self.goto("/signin")
        form.get_by_label("Email", exact=True).fill(email)
        form.get_by_label("Password", exact=True).fill(password)
        self.submit(form.get_by_role("button", name="Sign in", exact=True))

    def sign_out(self) -> None:
        """The sidebar's "Sign out": the app then shows its sign-in form."""
        self.act(self.sidebar.get_by_role("button", name="Sign out").click)
        self.expect_sign_in_view()

    # screenshots -------------------------------------------------------------------------------
    def shot(self, name: str) -> Path:
        path = self.shots_dir / f"{len(self.shots) + 1:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
        t0 = time.monotonic()
        # Streamlit scrolls inside its own containers, so full_page alone shows one viewport:
        # grow the viewport to the content for the shot, then put it back.
        size = self.page.viewport_size
        height = int(self.page.evaluate(CONTENT_HEIGHT))
        if size is not None and height > size["height"]:
            self.page.set_viewport_size({"width": size["width"], "height": min(height, 8000)})
        try:
            self.page.screenshot(path=str(path), full_page=True, animations="disabled")
        finally:
            if size is not None and height > size["height"]:
                self.page.set_viewport_size(size)
        self.shots.append(path)
        self.log.append(f"shot {path.name} at {t0 - self.started:.1f}s (took {time.monotonic() - t0:.2f}s)")
        return path

    # locating ----------------------------------------------------------------------------------
    @property
    def main(self) -> Locator:
        return self.page.locator("[data-testid=stMainBlockContainer]")

    @property
    def sidebar(self) -> Locator:
        return self.page.locator("[data-testid=stSidebar]")

    def expect_sign_in_view(self) -> None:
        """Signed out: the sign-in page (or the app's sign-in view), its form, the way to create an
        account, and nothing of the signed-in app."""
        expect(self.page.get_by_role("heading", name="Advisor", level=1)).to_be_visible()
        expect(self.page.get_by_role("heading", name="Sign in")).to_be_visible()
        expect(self.sign_in_form().get_by_label("Password", exact=True)).to_be_visible()
        expect(self.page.get_by_role("link", name=re.compile("Create an account"))).to_be_visible()
        expect(self.page.get_by_role("button", name="Sign out")).to_have_count(0)
        expect(self.page.locator("[data-testid=stSidebarNav]")).to_have_count(0)

    # actions -----------------------------------------------------------------------------------
    def navigate(self, title: str) -> None:
        """Click a page in the sidebar navigation and wait for it to render."""
        link = self.page.locator("[data-testid=stSidebarNav] a", has_text=title)
        self.act(link.click)
        expect(self.main.locator("h1", has_text=title)).to_be_visible()

    def click_button(self, name: str, *, within: Locator | None = None) -> None:
        scope = within if within is not None else self.page
        self.act(scope.get_by_role("button", name=name, exact=True).click)

    def choose(self, label: str, option: str) -> None:
        """Pick ``option`` in the selectbox labelled ``label``."""
        box = self.main.get_by_role("combobox", name=label, exact=True)
        box.click()
        box.fill(option)  # the list is virtualised: filter it so the option is rendered
        self.act(self.page.get_by_role("option", name=option, exact=True).click)
        expect(box).to_have_value(option)

    def multi_choose(self, label: str, options: list[str]) -> None:
        """Add ``options`` to the multiselect labelled ``label``, one rerun each."""
        box = self.main.get_by_role("combobox", name=label, exact=True)
        container = self.main.locator("[data-testid=stMultiSelect]").filter(
            has=self.page.get_by_role("combobox", name=label, exact=True)
        )
        for option in options:
            box.click()
            box.fill(option)  # the list is virtualised: filter it so the option is rendered
            self.act(self.page.get_by_role("option", name=option, exact=True).click)
            self.page.keyboard.press("Escape")
            expect(container.locator("[data-testid=stMultiSelectTagsContainer]")).to_contain_text(option)

    def slider(self, label: str) -> Locator:
        return self.main.locator(f'input[type=range][aria-label="{label}"]')

    def slider_value(self, label: str) -> int:
        return int(self.slider(label).input_value())

    def move_slider(self, label: str, steps: int) -> int:
        """Move the slider ``steps`` to the right (negative: left) with the keyboard; the new value.

        One key press per rerun, so no debounced change is still in flight when the next step starts.
        """
        thumb = self.slider(label)
        key = "ArrowRight" if steps > 0 else "ArrowLeft"
        value = int(thumb.input_value())
        target = max(0, min(10, value + steps))
        while value != target:
            value += 1 if target > value else -1
            thumb.focus()
            self.act(lambda: thumb.press(key))
            expect(thumb).to_have_value(str(value))
        return value
