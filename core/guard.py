"""The read-only runtime guard: a ``sys.addaudithook`` that refuses what Advisor must never do.

Claims C11, C12 and C19 in ``SECURITY.md``. With ``ADVISOR_GUARD=enforce`` (the default) the guard
raises ``GuardViolation`` (a ``PermissionError``) *before* the operation happens, and logs it on
``advisor.guard`` with the request id. With ``log`` it logs and lets the operation through; with
``off`` it does nothing. Every connection attempt (allowed or not) is recorded in both ``enforce``
and ``log`` mode: ``observed_connections()`` (the C19 test reads it).

Refused (audit events, CPython 3.11):

* **running commands**: ``subprocess.Popen``, ``os.system``, ``os.exec*`` (``os.exec``),
  ``os.spawn*`` (``os.spawn``), ``os.posix_spawn``, ``os.fork``, ``os.forkpty``, ``pty.spawn``,
  ``os.startfile``;
* **writing files** outside the writable directories: ``open`` with a write mode (``w a x +``) or
  write flags (``O_WRONLY O_RDWR O_CREAT O_APPEND O_TRUNC``), ``os.remove``/``unlink``,
  ``os.rmdir``, ``os.rename``/``replace``, ``os.mkdir``, ``os.truncate``, ``os.chmod``,
  ``os.chown``, ``os.link``, ``os.symlink``, ``os.utime``, ``os.mkfifo``, ``os.mknod``,
  ``os.setxattr``/``removexattr``, ``shutil.rmtree``/``copyfile``/``copytree``/``move``,
  ``sqlite3.connect`` (a database file). What is writable: ``core.writable_paths`` (the data
  directory, a configured SQLite database's directory, ``extra_writable``, byte-code caches);
* **network egress** to any endpoint not on the allow-list: ``socket.connect``, ``socket.sendto``,
  ``socket.sendmsg`` (a UDP datagram), and name resolution (``socket.getaddrinfo``,
  ``socket.gethostbyname[_ex]``) of a host name that is not on it. The allow-list, built from
  settings plus ``extra_allowed``, and its matching rules: ``core.egress``. Listening
  (``bind``/``listen``/``accept``, what Streamlit's server does) is not egress and is not restricted.

Limits — an audit hook is **not a sandbox**:

* Code in C extensions that calls the OS directly raises no audit events: libpq (psycopg's
  PostgreSQL connections, including the bytes it writes to the socket), SQLite's journal files,
  ``ctypes``/``cffi`` calls, ``mmap`` of an already open file descriptor. ``ctypes`` can also clear
  the hook. The guard keeps honest code honest and makes a regression loud; it does not stop an
  attacker who can already run arbitrary Python in the process.
* Reads are not restricted (Python, Streamlit and the SDKs read many files); C12's "never reads
  the user's file system" rests on the code having no feature that reads user paths.
* ``connect`` to a host *name* (not an address) is matched by name; DNS itself is trusted.
* The hook cannot be removed once added: ``install_guard`` adds it once per process and later calls
  only reconfigure it (mode, allow-list, writable directories).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import stat
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

from core.egress import (
    Endpoint,
    ObservedConnection,
    build_allow_list,
    endpoint_allowed,
    normalise_host,
    parse_endpoint,
)
from core.writable_paths import PATH_ARGUMENTS, is_writable_path, writable_area

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "GuardConfig",
    "GuardViolation",
    "current_config",
    "guard_mode",
    "install_guard",
    "observed_connections",
    "reset_observations",
]

Mode = Literal["enforce", "log", "off"]
log = logging.getLogger("advisor.guard")

_WRITE_FLAGS: Final = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_MAX_OBSERVED: Final = 10_000


class GuardViolation(PermissionError):
    """An operation the read-only guard refused; the message names what and why."""


@dataclass(frozen=True)
class GuardConfig:
    mode: Mode
    hosts: dict[str, frozenset[int]]  # normalised host name or address -> allowed ports
    unix_paths: frozenset[str]
    writable: tuple[str, ...]  # resolved directories (no trailing separator)
    writable_files: frozenset[str] = field(default_factory=frozenset)


class _State:
    """The process-wide singleton (kept on ``sys`` so a reloaded module finds the same hook)."""

    def __init__(self) -> None:
        self.installed = False
        self.config = GuardConfig("off", {}, frozenset(), ())
        # address -> the allowed host names it was resolved from (learnt from getaddrinfo); the
        # ports are looked up in the *current* configuration, so reconfiguring revokes them
        self.resolved: dict[str, set[str]] = {}
        self.observed: list[ObservedConnection] = []
        self.lock = threading.Lock()
        self.local = threading.local()
        self.original_getaddrinfo: Callable[..., Any] | None = None


_STATE_ATTR: Final = "_advisor_guard_state"


def _state() -> _State:
    state = getattr(sys, _STATE_ATTR, None)
    if state is None:
        state = _State()
        setattr(sys, _STATE_ATTR, state)
    return state  # type: ignore[no-any-return]


def _warm_stdlib_caches() -> None:
    """Fill caches of stdlib calls that would otherwise start a process later.

    ``platform.platform()`` / ``platform.processor()`` run ``uname -p`` on first use (the openai
    SDK calls ``platform.platform()`` for its telemetry headers); both are cached by the stdlib, so
    computing them once before the hook is installed means no command ever runs afterwards.
    """
    import platform

    platform.platform()
    platform.processor()


def install_guard(
    settings: Settings,
    *,
    mode: Mode | None = None,
    extra_allowed: Iterable[Endpoint | tuple[str, int] | str] = (),
    extra_writable: Iterable[str | os.PathLike[str]] = (),
) -> GuardConfig:
    """Install (once per process) or reconfigure the guard; returns the active configuration.

    ``mode`` overrides ``settings.guard``. ``extra_allowed`` adds endpoints (``("127.0.0.1", 8765)``
    or ``"127.0.0.1:8765"``) — e.g. a test's loopback stub server; ``extra_writable`` adds
    directories. With mode ``off`` and no hook installed yet, nothing is installed.
    """
    state = _state()
    active: Mode = mode or settings.guard
    endpoints, paths = build_allow_list(settings)
    endpoints.extend(parse_endpoint(item) for item in extra_allowed)
    hosts: dict[str, set[int]] = {}
    for ep in endpoints:
        hosts.setdefault(ep.host, set()).add(ep.port)
    writable = writable_area(settings, extra_writable)
    config = GuardConfig(
        mode=active,
        hosts={h: frozenset(p) for h, p in hosts.items()},
        unix_paths=frozenset(os.path.realpath(p) for p in paths),
        writable=writable.directories,
        writable_files=writable.files,
    )
    if active != "off":
        _warm_stdlib_caches()
    with state.lock:
        state.config = config
        if active != "off" and not state.installed:
            state.original_getaddrinfo = socket.getaddrinfo
            socket.getaddrinfo = _make_tracking_getaddrinfo(state, socket.getaddrinfo)
            sys.addaudithook(_make_hook(state))
            state.installed = True
    if active != "off":
        log.info(
            "guard %s: %d endpoint(s) allowed, writable %s",
            active,
            len(endpoints),
            ", ".join(config.writable),
        )
    return config


def guard_mode() -> Mode:
    """The active mode (``off`` when the guard was never installed)."""
    state = _state()
    return state.config.mode if state.installed else "off"


def current_config() -> GuardConfig:
    return _state().config


def observed_connections() -> list[ObservedConnection]:
    """Every connection attempt seen since the last ``reset_observations`` (allowed or not)."""
    state = _state()
    with state.lock:
        return list(state.observed)


def reset_observations() -> None:
    state = _state()
    with state.lock:
        state.observed.clear()


# --------------------------------------------------------------------------------------------
# the hook
# --------------------------------------------------------------------------------------------
def _make_tracking_getaddrinfo(state: _State, original: Callable[..., Any]) -> Callable[..., Any]:
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(host, port, *args, **kwargs)
        if isinstance(host, bytes):
            host = host.decode("idna", "replace")
        if isinstance(host, str):
            name = normalise_host(host)
            if name in state.config.hosts:
                with state.lock:
                    for item in result:
                        addr = normalise_host(str(item[4][0]))
                        if addr != name:
                            state.resolved.setdefault(addr, set()).add(name)
        return result

    getaddrinfo.__wrapped__ = original  # type: ignore[attr-defined]
    getaddrinfo.__doc__ = original.__doc__
    return getaddrinfo


def _first(names: set[str] | None) -> str | None:
    return min(names) if names else None


def _make_hook(state: _State) -> Callable[[str, tuple[Any, ...]], None]:
    local = state.local

    def refuse(config: GuardConfig, event: str, what: str, reason: str) -> None:
        message = f"guard refused {event} {what}: {reason}"
        if not getattr(local, "busy", False):
            local.busy = True
            try:
                if config.mode == "enforce":
                    log.warning("%s", message)
                else:
                    log.warning("%s (allowed: guard in log mode)", message)
            except Exception:  # noqa: S110 - logging must never break the guarded call
                pass
            finally:
                local.busy = False
        if config.mode == "enforce":
            raise GuardViolation(message)

    def record(event: str, host: str, port: int | None, allowed: bool) -> None:
        with state.lock:
            if len(state.observed) < _MAX_OBSERVED:
                state.observed.append(
                    ObservedConnection(event, host, port, allowed, _first(state.resolved.get(host)))
                )

    def run_command(config: GuardConfig, event: str, args: tuple[Any, ...]) -> None:
        what = ""
        if args:
            target = args[1] if event == "subprocess.Popen" and len(args) > 1 else args[0]
            if isinstance(target, bytes):
                target = os.fsdecode(target)
            what = f"of {target!r}"
        refuse(config, event, what, "running commands is not allowed")

    def check_paths(config: GuardConfig, event: str, paths: Sequence[Any], dir_fd: Any = None) -> None:
        for raw in paths:
            ok, shown = is_writable_path(config.writable, config.writable_files, raw, dir_fd)
            if not ok:
                refuse(config, event, repr(shown), "outside the app's writable directories")

    def on_open(config: GuardConfig, event: str, args: tuple[Any, ...]) -> None:
        path, mode, flags = [*args, None, None, None][:3]
        writing = isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
        if not writing and isinstance(mode, str):
            writing = any(c in mode for c in "wax+")
        if not writing:
            return
        ok, shown = is_writable_path(config.writable, config.writable_files, path)
        if ok:
            return
        # writing to a character device (a terminal, /dev/stdout) or a pipe is not a file write
        try:
            st_mode = os.stat(shown).st_mode
        except OSError:
            st_mode = 0
        if stat.S_ISCHR(st_mode) or stat.S_ISFIFO(st_mode):
            return
        refuse(config, "open", f"for writing {shown!r}", "outside the app's writable directories")

    def on_path_event(config: GuardConfig, event: str, args: tuple[Any, ...]) -> None:
        for path_index, fd_index in PATH_ARGUMENTS[event]:
            if path_index < len(args):
                dir_fd = args[fd_index] if fd_index is not None and fd_index < len(args) else None
                check_paths(config, event, [args[path_index]], dir_fd)

    def on_sqlite(config: GuardConfig, event: str, args: tuple[Any, ...]) -> None:
        database = args[0] if args else ""
        if isinstance(database, bytes | os.PathLike):
            database = os.fsdecode(database)
        if not isinstance(database, str) or database in {"", ":memory:"}:
            return
        if database.startswith("file:"):
            parts = urlsplit(database)
            if "mode=memory" in parts.query or parts.path in {"", ":memory:"}:
                return
            if "mode=ro" in parts.query:
                return
            database = parts.path
        check_paths(config, event, [database])

    def on_connect(config: GuardConfig, event: str, args: tuple[Any, ...]) -> None:
        if len(args) < 2:
            return
        sock, address = args[0], args[1]
        if address is None:  # sendmsg on a connected socket: its connect was checked
            return
        family = getattr(sock, "family", None)
        if family == socket.AF_UNIX or isinstance(address, str | bytes):
            path = os.fsdecode(address) if isinstance(address, str | bytes) else repr(address)
            real = path if path.startswith("\0") or not path else os.path.realpath(path)
            allowed = real in config.unix_paths
            record(event, path, None, allowed)
            if not allowed:
                refuse(config, event, f"to unix socket {path!r}", "not on the allow-list")
            return
        if not isinstance(address, tuple) or len(address) < 2:
            record(event, repr(address), None, False)
            refuse(config, event, f"to {address!r}", "not on the allow-list")
            return
        host = normalise_host(os.fsdecode(address[0]) if isinstance(address[0], bytes) else str(address[0]))
        port = int(address[1])
        allowed = endpoint_allowed(config.hosts, state.resolved, host, port)
        record(event, host, port, allowed)
        if not allowed:
            refuse(config, event, f"to {Endpoint(host, port)}", "not on the allow-list")

    def on_resolve(config: GuardConfig, event: str, args: tuple[Any, ...]) -> None:
        host = args[0] if args else None
        if host is None:
            return
        if isinstance(host, bytes):
            host = host.decode("idna", "replace")
        name = normalise_host(str(host))
        if not name or name in config.hosts:
            return
        try:
            ipaddress.ip_address(name)
            return  # resolving a literal address sends nothing; connect decides
        except ValueError:
            pass
        refuse(config, event, f"of {name!r}", "host name not on the allow-list")

    handlers: dict[str, Callable[[GuardConfig, str, tuple[Any, ...]], None]] = {
        "open": on_open,
        "socket.connect": on_connect,
        "socket.sendto": on_connect,
        "socket.sendmsg": on_connect,
        "socket.getaddrinfo": on_resolve,
        "socket.gethostbyname": on_resolve,
        "socket.gethostbyname_ex": on_resolve,
        "sqlite3.connect": on_sqlite,
    }
    for ev in ("subprocess.Popen", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork",
               "os.forkpty", "pty.spawn", "os.startfile"):  # fmt: skip
        handlers[ev] = run_command
    for ev in PATH_ARGUMENTS:
        handlers[ev] = on_path_event

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in handlers:  # the common case: one dict lookup, no call
            return
        handler = handlers[event]
        config = state.config
        if config.mode == "off":
            return
        handler(config, event, args)

    return hook
