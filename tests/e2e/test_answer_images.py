"""C22 in a real browser: an image in an answer makes the browser contact no host.

The provider stub answers with a Markdown image that points at a second loopback server, the
"pixel" server, which records every request it gets. With the app's default settings the answer
streams, is shown (the image as text naming its host), the page is reloaded and the answer shown
again from history: the pixel server has received no request. The same steps with the pixel
server's ``host:port`` in ``ADVISOR_ALLOWED_IMAGE_HOSTS`` load the image, so the test can tell the
two apart. A user's message with Markdown in it is shown as typed in both.
"""

from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import Locator, expect

from tests.e2e.conftest import PixelServer, ProviderStub
from tests.e2e.helpers import STEP_TIMEOUT_MS, BrowserSession

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-42!"
USER_TEXT = "**bold** :red[x] [l](http://h)"
ANSWER_END = "That is all for now."


@pytest.fixture(scope="module", params=["default settings", "pixel host allowed"])
def app_extra_env(request: pytest.FixtureRequest, pixel_server: PixelServer) -> dict[str, str]:
    """The app server of this module runs twice: with default settings, then with the pixel
    server's host allowed for images."""
    if request.param == "pixel host allowed":
        return {"ADVISOR_ALLOWED_IMAGE_HOSTS": pixel_server.host_port}
    return {}


def sign_up(s: BrowserSession, email: str) -> None:
    s.sign_up(email, PASSWORD)
    expect(s.main.locator("h1", has_text="Chat")).to_be_visible()


def reload_signed_in(s: BrowserSession, email: str) -> None:
    """Reload the page: still signed in (the session cookie), on the chat page."""
    s.goto("/")
    expect(s.sidebar).to_contain_text(f"Signed in as {email}")
    expect(s.main.locator("h1", has_text="Chat")).to_be_visible()


def send_chat(s: BrowserSession, text: str) -> None:
    box = s.page.locator("[data-testid=stChatInputTextArea]")
    box.fill(text)
    s.act(lambda: box.press("Enter"))


def wait_for_request(pixel: PixelServer) -> list[str]:
    deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        if pixel.seen():
            return pixel.seen()
        time.sleep(0.05)  # polling interval, not a wait for a result
    return pixel.seen()


def check_answer(s: BrowserSession, pixel: PixelServer, *, allowed: bool, when: str) -> None:
    messages = s.main.locator("[data-testid=stChatMessage]")
    answer: Locator = messages.filter(has_text=ANSWER_END)
    expect(answer).to_have_count(1)
    # the user's message: exactly the characters typed, no bold, colour or link
    mine = messages.filter(has_text="bold").first
    expect(mine).to_contain_text(USER_TEXT)
    expect(mine.locator("strong, a, span[class*=Colored]")).to_have_count(0)
    images = s.page.locator(f'img[src^="{pixel.url}/"]')
    if allowed:
        expect(images).to_have_count(1)
        expect(images).to_have_js_property("naturalWidth", 1)  # loaded, from the pixel server
        assert any(p.startswith("/pixel.png?d=") for p in wait_for_request(pixel)), when
    else:
        expect(images).to_have_count(0)
        assert pixel.seen() == [], f"the pixel server was contacted {when}: {pixel.seen()}"
        expect(answer).to_contain_text(f'[image "chart": {pixel.host_port}/pixel.png?…]')
    s.shot(f"answer-{when}")


def test_an_answer_image_loads_only_from_an_allowed_host(
    session: BrowserSession, stub: ProviderStub, pixel_server: PixelServer, app_extra_env: dict[str, str]
) -> None:
    allowed = bool(app_extra_env)
    s = session
    pixel = pixel_server
    email = f"e2e-img-{uuid.uuid4().hex[:8]}@example.com"
    sign_up(s, email)
    pixel.clear()

    # the answer streams in small chunks, so partial image syntax is on screen for a while
    answer = f"Here is your chart: ![chart]({pixel.url}/pixel.png?d=the-users-question) {ANSWER_END}"
    stub.reply("*", {"text": answer, "chunks": 12, "chunk_delay_s": 0.05})
    send_chat(s, USER_TEXT)
    check_answer(s, pixel, allowed=allowed, when="after streaming")

    pixel.clear()
    reload_signed_in(s, email)
    check_answer(s, pixel, allowed=allowed, when="after a reload")
