"""bench/browser_profile.py: a Chromium CPU profile summed by script file (hashes dropped, idle left out)."""

from __future__ import annotations

from bench.browser_profile import script_name, self_time_by_script


def test_script_names_drop_the_bundle_hash() -> None:
    assert script_name("http://127.0.0.1:8501/static/js/react-dom.Dzbslgj4.js") == "react-dom"
    assert script_name("http://127.0.0.1:8501/static/js/emotion-styled.browser.esm.DAbc_9-x.js") == (
        "emotion-styled.browser.esm")
    assert script_name("http://127.0.0.1:8501/app.js") == "app.js"  # no hash: as it is
    assert script_name("") == "(native)"


def test_self_time_is_summed_by_script_and_idle_is_left_out() -> None:
    def node(i: int, name: str, url: str = "") -> dict[str, object]:
        return {"id": i, "callFrame": {"functionName": name, "url": url, "lineNumber": 0, "columnNumber": 0}}

    profile = {
        "nodes": [node(1, "(root)"), node(2, "(idle)"), node(3, "Ul", "http://h/static/js/react-dom.Dzbslgj4.js"),
                  node(4, "Ho", "http://h/static/js/react-dom.Dzbslgj4.js"), node(5, "(program)"),
                  node(6, "", "http://h/static/js/protobuf.D55wl0P7.js")],
        "samples": [2, 3, 4, 3, 5, 6, 2],
        "timeDeltas": [1000, 200, 300, 200, 150, 100, 5000],
    }
    assert self_time_by_script(profile) == {"react-dom": 700, "(program)": 150, "protobuf": 100}
