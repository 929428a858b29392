"""ui.messages on the chat page: an answer's image is shown as text, a user's message as typed, with
this deployment's ADVISOR_ALLOWED_IMAGE_HOSTS (AppTest, loopback stub); and stream_answer on its own,
with an image split across chunks. (The live stream in a browser: tests/e2e/test_answer_images.py.)"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.chat_fixtures import ChatEnv
from tests.stubs.provider_server import Reply

PIXEL = "![chart](http://127.0.0.1:9/pixel.png?d=the-question)"


def _chat_markdown(at: AppTest) -> list[str]:
    return [str(m.value) for m in at.markdown]


def test_an_image_in_an_answer_is_text_on_the_chat_page(chat_env: ChatEnv, app) -> None:
    chat_env.stub.set_reply("openai", Reply(text=f"Here is the chart. {PIXEL} Done.", chunks=9))
    at = app("pages/chat.py")
    at.chat_input[0].set_value("**bold** :red[x] [l](http://h)").run()
    assert not at.exception
    shown = _chat_markdown(at)
    assert r'Here is the chart. \[image "chart"\: 127.0.0.1\:9\/pixel.png?…\] Done.' in shown, shown
    assert r"\*\*bold\*\* \:red\[x\] \[l\](http\:\/\/h)" in shown, shown
    assert not any("](" in m and "pixel" in m for m in shown)
    at.run()  # drawn again from the database
    assert _chat_markdown(at) == shown


def test_an_allowed_image_host_is_kept(chat_env: ChatEnv, set_env, app) -> None:
    set_env(ALLOWED_IMAGE_HOSTS="127.0.0.1:9")
    chat_env.stub.set_reply("openai", Reply(text=PIXEL))
    at = app("pages/chat.py")
    at.chat_input[0].set_value("chart please").run()
    assert "![chart](<http://127.0.0.1:9/pixel.png?d=the-question>)" in _chat_markdown(at)


def _streamed() -> None:
    import streamlit as st

    from ui.messages import stream_answer

    st.session_state["full"] = stream_answer(iter(["See ![x](http://evil.exam", "ple/p.png) and **b", "old**"]))


def test_a_streamed_answer_is_rendered_whole_and_returned() -> None:
    at = AppTest.from_function(_streamed).run()
    assert not at.exception
    assert at.session_state["full"] == "See ![x](http://evil.example/p.png) and **bold**"
    assert [m.value for m in at.markdown] == [r'See \[image "x"\: evil.example\/p.png\] and **bold**']
