"""C11 / C12 / C19: the read-only runtime guard.

An audit hook cannot be removed, so every test that switches the guard on runs in a child
process. All traffic stays on loopback: the "forbidden" endpoints are 127.0.0.2 listeners that the
child opens itself, so the test can also prove that nothing reached them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from core.guard import GuardViolation

ROOT = Path(__file__).resolve().parents[2]

PRELUDE = """
import json, os, shutil, socket, sqlite3, subprocess, sys, threading
from pathlib import Path
from core.settings import Settings
from core.guard import GuardViolation, guard_mode, install_guard, observed_connections
from core.log_setup import setup_logging
from core.request_context import request_context

work = Path(sys.argv[1])
data = work / "data"; data.mkdir()
outside = work / "outside"; outside.mkdir()
(outside / "existing.txt").write_text("keep me")
(data / "mine.txt").write_text("mine")

server = socket.create_server(("127.0.0.1", 0))  # stands in for the database
port = server.getsockname()[1]
def serve():
    while True:
        conn, _ = server.accept()
        conn.sendall(conn.recv(16).upper())
        conn.close()
threading.Thread(target=serve, daemon=True).start()

trap = socket.create_server(("127.0.0.2", 0))  # not on the allow-list: must never see a connection
trap.settimeout(0.3)
trap_port = trap.getsockname()[1]
udp_trap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp_trap.bind(("127.0.0.2", 0)); udp_trap.settimeout(0.3)

settings = Settings(
    _env_file=None,
    data_dir=data,
    database_url=f"postgresql+psycopg://advisor@127.0.0.1:{port}/advisor",
    redis_url=f"redis://localhost:{port}/0",
)
setup_logging(settings)
results = {}

def attempt(name, fn):
    try:
        results[name] = ["ok", fn()]
    except GuardViolation as exc:
        results[name] = ["refused", str(exc)]
    except OSError as exc:
        results[name] = ["oserror", type(exc).__name__]

def echo(host, p):
    with socket.create_connection((host, p), timeout=2) as conn:
        conn.sendall(b"ping")
        return conn.recv(16).decode()

def knock(host, p):
    socket.create_connection((host, p), timeout=2).close()
    return True

def trap_saw_connection():
    try:
        trap.accept()[0].close()
        return True
    except TimeoutError:
        return False

def udp_trap_saw_datagram():
    try:
        udp_trap.recvfrom(64)
        return True
    except TimeoutError:
        return False

def write(path, mode="w"):
    with open(path, mode) as fh:
        fh.write("x")
    return str(path)
"""


def run_child(body: str, tmp_path: Path) -> tuple[dict[str, Any], str]:
    code = PRELUDE + textwrap.dedent(body) + "\nprint('RESULTS ' + json.dumps(results))\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1][len("RESULTS ") :]), proc.stderr


def refused(result: list[str], *fragments: str) -> bool:
    return result[0] == "refused" and all(f in result[1] for f in fragments)


# ------------------------------------------------------------------------------------------------
def test_enforce_refuses_commands_writes_and_egress(tmp_path: Path) -> None:
    results, logs = run_child(
        """
        install_guard(settings, mode="enforce")
        with request_context(page="test") as rid:
            results["rid"] = rid
            shell = ["sh", "-c", f"echo ran > {outside}/ran"]
            attempt("subprocess", lambda: subprocess.run(shell).returncode)
            attempt("os.system", lambda: os.system(f"echo ran > {outside}/sys"))
            attempt("posix_spawn", lambda: os.posix_spawn("/bin/sh", ["sh", "-c", "true"], {}))
            attempt("execv", lambda: os.execv("/bin/true", ["true"]))
            attempt("fork", lambda: os.fork() or 1)
            attempt("open_w", lambda: write(outside / "new.txt"))
            attempt("open_a", lambda: write(outside / "existing.txt", "a"))
            attempt("open_rplus", lambda: write(outside / "existing.txt", "r+"))
            attempt("os_open", lambda: os.open(outside / "raw.txt", os.O_CREAT | os.O_WRONLY))
            attempt("remove", lambda: os.remove(outside / "existing.txt"))
            attempt("rename_out", lambda: os.rename(data / "mine.txt", outside / "moved.txt"))
            attempt("mkdir", lambda: os.mkdir(outside / "dir"))
            attempt("rmtree", lambda: shutil.rmtree(outside))
            attempt("sqlite_out", lambda: sqlite3.connect(outside / "x.db").execute("create table t(x)"))
            attempt("connect_9", lambda: echo("127.0.0.2", 9))
            attempt("connect_trap", lambda: knock("127.0.0.2", trap_port))
            attempt("udp_trap", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
                b"leak", ("127.0.0.2", udp_trap.getsockname()[1])))
            attempt("resolve", lambda: socket.getaddrinfo("not-allowed.invalid", 443))
            # allowed
            attempt("read_outside", lambda: (outside / "existing.txt").read_text())
            attempt("write_data", lambda: write(data / "ok.txt"))
            attempt("rename_in", lambda: os.rename(data / "ok.txt", data / "ok2.txt"))
            attempt("sqlite_in", lambda: sqlite3.connect(data / "x.db").execute("create table t(x)") and 1)
            attempt("connect_db", lambda: echo("127.0.0.1", port))
            attempt("connect_by_name", lambda: echo("localhost", port))
        results["trap_saw_connection"] = trap_saw_connection()
        results["udp_trap_saw_datagram"] = udp_trap_saw_datagram()
        results["outside"] = sorted(os.listdir(outside))
        results["existing"] = (outside / "existing.txt").read_text()
        results["data"] = sorted(os.listdir(data))
        results["mode"] = guard_mode()
        """,
        tmp_path,
    )
    assert results["mode"] == "enforce"
    command = "running commands is not allowed"
    assert refused(results["subprocess"], "guard refused subprocess.Popen of ['sh', '-c'", command)
    assert refused(results["os.system"], "guard refused os.system of 'echo ran", command)
    assert refused(results["posix_spawn"], "guard refused os.posix_spawn", command)
    assert refused(results["execv"], "guard refused os.exec", command)
    assert refused(results["fork"], "guard refused os.fork", command)
    outside_msg = "outside the app's writable directories"
    for name in ("open_w", "open_a", "open_rplus", "os_open"):
        where = str(tmp_path / "outside")
        assert refused(results[name], "guard refused open for writing", where, outside_msg), name
    for name, event in [("remove", "os.remove"), ("rename_out", "os.rename"), ("mkdir", "os.mkdir"),
                        ("rmtree", "shutil.rmtree"), ("sqlite_out", "sqlite3.connect")]:  # fmt: skip
        assert refused(results[name], f"guard refused {event}", outside_msg), name
    assert results["connect_9"] == [
        "refused",
        "guard refused socket.connect to 127.0.0.2:9: not on the allow-list",
    ]
    assert refused(results["connect_trap"], "socket.connect to 127.0.0.2:", "not on the allow-list")
    assert refused(results["udp_trap"], "guard refused socket.sendto to 127.0.0.2:")
    assert refused(results["resolve"], "socket.getaddrinfo of 'not-allowed.invalid'", "not on the allow-list")
    # nothing got through
    assert results["trap_saw_connection"] is False
    assert results["udp_trap_saw_datagram"] is False
    assert results["outside"] == ["existing.txt"]
    assert results["existing"] == "keep me"
    # and the app's own work still works
    assert results["read_outside"] == ["ok", "keep me"]
    assert results["write_data"][0] == "ok"
    assert results["rename_in"][0] == "ok"
    assert results["sqlite_in"][0] == "ok"
    assert results["connect_db"] == ["ok", "PING"]
    assert results["connect_by_name"] == ["ok", "PING"]
    assert results["data"] == ["mine.txt", "ok2.txt", "x.db"]
    # each refusal is logged with the request id
    rid = results["rid"]
    assert f"WARNING advisor.guard [{rid}] guard refused socket.connect to 127.0.0.2:9" in logs
    assert f"WARNING advisor.guard [{rid}] guard refused subprocess.Popen" in logs


def test_log_mode_allows_but_logs_and_records(tmp_path: Path) -> None:
    results, logs = run_child(
        """
        install_guard(settings, mode="log")
        with request_context() as rid:
            results["rid"] = rid
            attempt("subprocess", lambda: subprocess.run(["true"]).returncode)
            attempt("open_w", lambda: write(outside / "new.txt"))
            attempt("connect_9", lambda: echo("127.0.0.2", 9))
            attempt("connect_trap", lambda: knock("127.0.0.2", trap_port))
            attempt("connect_db", lambda: echo("127.0.0.1", port))
        results["trap_saw_connection"] = trap_saw_connection()
        results["observed"] = [[o.event, o.host, o.port, o.allowed] for o in observed_connections()]
        results["outside"] = sorted(os.listdir(outside))
        """,
        tmp_path,
    )
    assert results["subprocess"] == ["ok", 0]
    assert results["open_w"][0] == "ok"
    assert results["connect_9"] == ["oserror", "ConnectionRefusedError"]  # the kernel, not the guard
    assert results["connect_trap"] == ["ok", True]
    assert results["connect_db"] == ["ok", "PING"]
    assert results["trap_saw_connection"] is True
    assert results["outside"] == ["existing.txt", "new.txt"]
    observed = results["observed"]
    assert ["socket.connect", "127.0.0.2", 9, False] in observed
    assert ["socket.connect", "127.0.0.1", observed[-1][2], True] == observed[-1]
    assert sum(1 for o in observed if o[1] == "127.0.0.2") == 2
    rid = results["rid"]
    assert (
        f"[{rid}] guard refused socket.connect to 127.0.0.2:9: not on the allow-list "
        "(allowed: guard in log mode)"
    ) in logs
    assert f"[{rid}] guard refused subprocess.Popen of ['true']" in logs
    assert f"[{rid}] guard refused open for writing" in logs


def test_guard_is_installed_once_and_reconfigurable(tmp_path: Path) -> None:
    results, _ = run_child(
        """
        attempt("before", lambda: subprocess.run(["true"]).returncode)
        install_guard(settings, mode="off")
        results["state_after_off"] = getattr(sys, "_advisor_guard_state").installed
        results["mode_off"] = guard_mode()
        install_guard(settings, mode="enforce")
        attempt("enforce1", lambda: subprocess.run(["true"]).returncode)
        install_guard(settings, mode="log")
        attempt("log", lambda: subprocess.run(["true"]).returncode)
        install_guard(settings, mode="off")
        attempt("off", lambda: subprocess.run(["true"]).returncode)
        install_guard(settings, mode="enforce")
        attempt("enforce2", lambda: subprocess.run(["true"]).returncode)
        install_guard(settings, mode="enforce", extra_allowed=[("127.0.0.2", trap_port)])
        attempt("extra", lambda: knock("127.0.0.2", trap_port) and trap_saw_connection())
        install_guard(settings, mode="enforce")
        attempt("extra_gone", lambda: knock("127.0.0.2", trap_port))
        wrapped = socket.getaddrinfo.__wrapped__
        results["wrapped_once"] = not hasattr(wrapped, "__wrapped__")
        """,
        tmp_path,
    )
    assert results["before"] == ["ok", 0]
    assert results["state_after_off"] is False and results["mode_off"] == "off"
    assert refused(results["enforce1"], "subprocess.Popen")
    assert results["log"] == ["ok", 0]
    assert results["off"] == ["ok", 0]
    assert refused(results["enforce2"], "subprocess.Popen")
    assert results["extra"] == ["ok", True]
    assert refused(results["extra_gone"], "not on the allow-list")
    assert results["wrapped_once"] is True


def test_bytecode_cache_writes_are_allowed(tmp_path: Path) -> None:
    results, _ = run_child(
        """
        pkg = outside / "freshmod.py"
        pkg.write_text("VALUE = 42\\n")
        install_guard(settings, mode="enforce")
        sys.dont_write_bytecode = False
        sys.path.insert(0, str(outside))
        attempt("import", lambda: __import__("freshmod").VALUE)
        results["pyc"] = [p.endswith(".pyc") for p in os.listdir(outside / "__pycache__")]
        """,
        tmp_path,
    )
    assert results["import"] == ["ok", 42]
    assert results["pyc"] == [True]


def test_guard_violation_is_a_permission_error() -> None:
    assert issubclass(GuardViolation, PermissionError)
    with pytest.raises(PermissionError):
        raise GuardViolation("guard refused x")


def test_a_user_export_runs_under_the_enforced_guard(tmp_path: Path) -> None:
    """C12 with C17: the GDPR export works with the guard on. Any scratch file it makes is in the
    data directory, the one place the app may write, and none is left there afterwards."""
    code = textwrap.dedent(
        """
        import io, json, os, sys, zipfile
        from core import db as core_db
        from core.export import export_user_data
        from core.guard import install_guard
        from core.settings import get_settings
        from tests.factories import fill_user, make_user

        core_db.migrate()
        user = make_user()
        fill_user(user, runs=5)
        install_guard(get_settings(), mode="enforce")
        before = sorted(os.listdir("data"))
        archive = zipfile.ZipFile(io.BytesIO(export_user_data(user_id=user)))
        runs = archive.read("agent_runs.csv").decode().splitlines()
        print("RESULT " + json.dumps({"names": archive.namelist(), "csv_lines": len(runs),
                                      "left": sorted(set(os.listdir("data")) - set(before))}))
        """
    )
    (tmp_path / "data").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env.update(PYTHONPATH=str(ROOT), ADVISOR_DATA_DIR=str(tmp_path / "data"),
               ADVISOR_DATABASE_URL=f"sqlite:///{tmp_path / 'data' / 'advisor.db'}")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    result = json.loads(lines[-1][len("RESULT "):])
    assert {"agent_runs.jsonl", "agent_runs.csv", "manifest.json"} <= set(result["names"])
    assert result["csv_lines"] == 1 + 5  # the header and the user's runs
    assert result["left"] == []  # no scratch file left behind
