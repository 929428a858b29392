"""C11 / C12 / C19 with the real app: the read-only guard switched on while every page runs.

The audit hook cannot be removed, so each scenario runs in a child process that starts its own
loopback servers (the provider stub; for C19 also a Sentry test endpoint) and drives the page
router (``ui/page_router.py``, the script ``streamlit_app.py`` serves) with AppTest. Everything
stays on loopback; the "forbidden" endpoint is 127.0.0.2:9.

* enforce mode: every page renders (and the privacy export, a chat turn through the stub) with no
  error and no guard refusal, while the guard, proven active at the end, refuses a command, a write
  outside the data directory and a connection to an endpoint not on the allow-list.
* log mode (C19): a full session — sign-up through the form, profile save, a chat turn, the
  analytics page, an export, the status page, an error reported to Sentry — on PostgreSQL and
  Redis; every connection the guard observed is to a configured endpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from tests.conftest import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]

PRELUDE = """
import json, logging, os, socket, subprocess, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

work = Path(sys.argv[1])
mode = sys.argv[2]
results = {}

from tests.stubs.provider_server import ProviderStubServer, Reply
stub = ProviderStubServer().start()
stub.set_reply("*", Reply(text="Guarded answer from the stub."))
results["stub"] = [stub.host, stub.port]

os.environ.update({
    "ADVISOR_DATA_DIR": str(work / "data"),
    "ADVISOR_PROVIDERS": "openai",
    "ADVISOR_OPENAI_API_KEY": "sk-test-guard-000000000000000000",
    "ADVISOR_OPENAI_BASE_URL": stub.openai_base_url,
    "ADVISOR_GUARD": mode,
    "ADVISOR_CHAT_TURNS_PER_MINUTE": "1000",
})
os.environ.setdefault("ADVISOR_DATABASE_URL", f"sqlite:///{work / 'data' / 'advisor.db'}")
#EARLY

from streamlit.testing.v1 import AppTest  # creates its temp dir: before the guard
from streamlit.testing.v1.app_test import TMP_DIR

from core.settings import get_settings
from core import guard
from core.guard import GuardViolation, guard_mode, install_guard, observed_connections

refusals = []
class Refusals(logging.Handler):
    def emit(self, record):
        refusals.append(record.getMessage())
logging.getLogger("advisor.guard").addHandler(Refusals(logging.WARNING))

install_guard(get_settings(), extra_writable=[TMP_DIR.name])  # mode from ADVISOR_GUARD

ENTRY = str(Path.cwd() / "ui" / "page_router.py")
PAGES = ["pages/chat.py", "pages/vibe.py", "pages/prompt_preview.py", "pages/analytics.py",
         "pages/privacy.py", "pages/status.py", "pages/admin.py"]

def page_file(path):  # AppTest.switch_page reads paths relative to the router's folder
    return str(Path.cwd() / path)

def problems(at):
    return [str(e.value) for e in at.exception] + [e.value for e in at.error]

def titles(at):
    return [t.value for t in at.title]
"""


def run_child(
    body: str, tmp_path: Path, mode: str, env_extra: dict[str, str] | None = None, early: str = ""
) -> dict[str, Any]:
    """Run PRELUDE (``early`` goes in before the settings are read) + ``body`` in a child process."""
    code = (
        PRELUDE.replace("#EARLY", early)
        + textwrap.dedent(body)
        + "\nprint('RESULTS ' + json.dumps(results, default=str))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env.update(env_extra or {})
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    results: dict[str, Any] = json.loads(lines[-1][len("RESULTS ") :])
    return results


def test_every_page_and_a_chat_turn_work_with_the_guard_enforcing(tmp_path: Path) -> None:
    results = run_child(
        """
        from core.sessions import create_session
        from tests.factories import make_user
        from ui.auth_view import SESSION_TOKEN_KEY

        at = AppTest.from_file(ENTRY, default_timeout=60)
        at.run()  # boot(): logging, migrations into the data dir, install_guard(settings)
        results["guard_after_boot"] = guard_mode()
        results["signed_out"] = [titles(at), problems(at)]
        user_id = make_user(email="guarded@example.com", is_admin=True)
        at.session_state[SESSION_TOKEN_KEY] = create_session(user_id).token
        at.run()
        pages = {}
        for path in PAGES:
            at.switch_page(page_file(path)).run()
            pages[path] = [titles(at), problems(at)]
        results["pages"] = pages

        at.switch_page(page_file("pages/privacy.py")).run()
        [b for b in at.button if b.label == "Prepare my export"][0].click().run()
        results["export"] = [len(at.download_button), problems(at)]

        at.switch_page(page_file("pages/chat.py")).run()
        at.chat_input[0].set_value("Is the guard on?").run()
        results["chat"] = [[m.value for m in at.markdown], problems(at), len(stub.requests("openai"))]
        results["refusals_during_session"] = list(refusals)

        def attempt(name, fn):
            try:
                fn()
                results[name] = "allowed"
            except GuardViolation as exc:
                results[name] = "refused: " + str(exc)
            except OSError as exc:
                results[name] = "oserror: " + type(exc).__name__

        attempt("control_command", lambda: subprocess.run(["true"]))
        attempt("control_write", lambda: open(work / "outside.txt", "w").close())
        attempt("control_egress", lambda: socket.create_connection(("127.0.0.2", 9), timeout=2).close())
        results["outside_exists"] = (work / "outside.txt").exists()
        results["guard_mode"] = guard_mode()
        """,
        tmp_path,
        "enforce",
    )
    assert results["guard_after_boot"] == "enforce"
    titles, problems = results["signed_out"]
    assert titles == ["Advisor"] and problems == []
    expected_titles = {
        "pages/chat.py": "Chat",
        "pages/vibe.py": "Profile & vibe",
        "pages/prompt_preview.py": "Prompt preview",
        "pages/analytics.py": "Usage analytics",
        "pages/privacy.py": "Privacy",
        "pages/status.py": "Status",
        "pages/admin.py": "Admin",
    }
    for path, (titles, problems) in results["pages"].items():
        assert problems == [], (path, problems)
        assert titles and titles[0] == expected_titles[path], (path, titles)
    downloads, problems = results["export"]
    assert downloads == 1 and problems == []
    markdown, problems, provider_calls = results["chat"]
    assert problems == [] and provider_calls == 1
    assert any("Guarded answer from the stub." in m for m in markdown)
    # the guard was really on during all of the above
    assert results["control_command"].startswith("refused: guard refused subprocess.Popen")
    assert results["control_write"].startswith("refused:") and not results["outside_exists"]
    assert results["control_egress"].startswith("refused:") and "127.0.0.2" in results["control_egress"]
    assert results["guard_mode"] == "enforce"
    # nothing the app did during the session was refused (a refusal would also show up as a page
    # error, or, when a library swallows the PermissionError, only here)
    assert results["refusals_during_session"] == [], results["refusals_during_session"]


SENTRY_ENDPOINT = """
envelopes = []
class SentryIntake(BaseHTTPRequestHandler):
    def do_POST(self):
        envelopes.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args):
        pass
sentry_server = ThreadingHTTPServer(("127.0.0.1", 0), SentryIntake)
threading.Thread(target=sentry_server.serve_forever, daemon=True).start()
results["sentry"] = ["127.0.0.1", sentry_server.server_address[1]]
os.environ["ADVISOR_SENTRY_DSN"] = f"http://c19publickey@127.0.0.1:{sentry_server.server_address[1]}/1"
"""


def test_full_session_connects_only_to_configured_endpoints(tmp_path: Path, pg_url: str) -> None:
    body = """
        from core.error_reports import log_exception
        from core.request_context import request_context
        from models.schemas import ROLES, VERTICALS
        import sentry_sdk

        guard.reset_observations()
        at = AppTest.from_file(ENTRY, default_timeout=60)
        at.run()
        results["guard_after_boot"] = guard_mode()
        # sign up as the create-account route does (core.accounts.sign_up, then core.sessions), and
        # hand the session's token to the app as the browser's cookie would
        from core.accounts import sign_up
        from core.sessions import create_session
        from models.schemas import SignUpIn
        from ui.auth_view import SESSION_TOKEN_KEY

        created = sign_up(SignUpIn(email="c19@example.com", password="C19-session-pw-42!"), session_key="c19")
        at.session_state[SESSION_TOKEN_KEY] = create_session(created.id).token
        at.run()
        steps = {"signup": [titles(at), problems(at)]}
        # profile save
        at.switch_page(page_file("pages/vibe.py")).run()
        at.selectbox(key="profile_role").set_value(ROLES[0])
        at.selectbox(key="profile_vertical").set_value(VERTICALS[0])
        at.button(key="save_profile").click().run()
        steps["profile"] = [[s.value for s in at.success], problems(at)]
        # a chat turn through the stub
        at.switch_page(page_file("pages/chat.py")).run()
        at.chat_input[0].set_value("What should I fix first?").run()
        steps["chat"] = [[m.value for m in at.markdown if "stub" in m.value], problems(at)]
        # analytics, export, status
        at.switch_page(page_file("pages/analytics.py")).run()
        steps["analytics"] = [titles(at), problems(at)]
        at.switch_page(page_file("pages/privacy.py")).run()
        [b for b in at.button if b.label == "Prepare my export"][0].click().run()
        steps["export"] = [len(at.download_button), problems(at)]
        at.switch_page(page_file("pages/status.py")).run()
        steps["status"] = [titles(at), problems(at)]
        # an error report to Sentry
        with request_context(page="c19"):
            log_exception(RuntimeError("c19 sentry check"), where="c19")
        sentry_sdk.flush(timeout=5)
        results["steps"] = steps
        results["sentry_envelopes"] = len(envelopes)
        results["observed"] = [[c.event, c.host, c.port, c.allowed, c.hostname]
                               for c in observed_connections()]
        results["provider_calls"] = len(stub.requests())

        # control: an off-list connection is observed (log mode lets it through; nothing listens)
        try:
            socket.create_connection(("127.0.0.2", 9), timeout=2).close()
        except OSError:
            pass
        results["control"] = [[c.host, c.port, c.allowed] for c in observed_connections()
                              if c.host == "127.0.0.2"]
        """
    results = run_child(
        body,
        tmp_path,
        "log",
        {"ADVISOR_DATABASE_URL": pg_url, "ADVISOR_REDIS_URL": REDIS_URL},
        early=SENTRY_ENDPOINT,
    )
    assert results["guard_after_boot"] == "log"
    steps = results["steps"]
    for name, (_, problems) in steps.items():
        assert problems == [], (name, problems)
    assert steps["signup"][0] and steps["signup"][0][0] == "Chat"  # signed in, on the default page
    assert steps["profile"][0] == ["Profile saved."]
    assert steps["chat"][0], "the stub's answer was not shown"
    assert steps["export"][0] == 1
    assert results["provider_calls"] == 1 and results["sentry_envelopes"] >= 1

    pg = make_url(pg_url)
    redis = make_url(REDIS_URL)
    configured = {
        (str(results["stub"][0]), int(results["stub"][1])),
        (str(results["sentry"][0]), int(results["sentry"][1])),
        (str(redis.host), int(redis.port or 6379)),
        (str(pg.host), int(pg.port or 5432)),
    }
    observed = results["observed"]
    connects = {(host, port) for event, host, port, _, _ in observed if port is not None}
    assert all(allowed for _, _, _, allowed, _ in observed), observed
    assert connects <= configured, connects - configured
    # the session really used the network: provider stub, Redis (limits) and Sentry were seen
    assert {
        (str(results["stub"][0]), int(results["stub"][1])),
        (str(redis.host), int(redis.port or 6379)),
        (str(results["sentry"][0]), int(results["sentry"][1])),
    } <= connects
    # and the observer does see an endpoint that is not configured
    assert results["control"] and all(not allowed for _, _, allowed in results["control"])
