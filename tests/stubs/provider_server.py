"""A loopback stub of the OpenAI Chat Completions and Anthropic Messages APIs, with fault injection.

In-process (tests, benchmarks)::

    from tests.stubs.provider_server import Fault, ProviderStubServer, Reply

    with ProviderStubServer() as stub:                       # 127.0.0.1, free port
        stub.set_reply("openai", Reply(text="Hi there", input_tokens=10, cached_tokens=4))
        stub.set_fault("anthropic", Fault("overloaded"))     # every anthropic request → 529
        stub.queue_faults("openai", Fault("cut", after_chunks=2))  # next openai request only
        OpenAI(base_url=stub.openai_base_url, api_key="x")  ...
        Anthropic(base_url=stub.anthropic_base_url, api_key="x") ...
        stub.requests("openai")[-1].body["stream_options"]

Standalone (e2e)::

    python -m tests.stubs.provider_server --port 8765
    curl -X POST localhost:8765/_control/fault -d '{"api": "openai", "fault": {"kind": "server_error"}}'
    curl -X POST localhost:8765/_control/fault -d '{"api": "openai", "fault": {"kind": "cut"}, "queue": true}'
    curl -X POST localhost:8765/_control/reply -d '{"api": "*", "reply": {"text": "Hello"}}'
    curl -X POST localhost:8765/_control/reset
    curl localhost:8765/_control/requests

Per request, a client may also send ``x-stub-fault`` / ``x-stub-reply`` headers holding the same
JSON objects (or just a fault kind, e.g. ``x-stub-fault: rate_limited``); headers win over queued
faults, which win over the persistent fault set with ``set_fault``.

Token semantics of :class:`Reply` follow our normalised ``Usage``: ``input_tokens`` is NON-cached
input. The stub emits each API's native shape: OpenAI ``prompt_tokens = input + cached + cache_write``
with ``prompt_tokens_details.cached_tokens``; Anthropic ``input_tokens`` (non-cached),
``cache_read_input_tokens``, ``cache_creation_input_tokens``.

Fast by default: with no delays requested, a whole SSE body is written in one go.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import socket
import struct
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self

Api = Literal["openai", "anthropic"]
APIS: tuple[Api, ...] = ("openai", "anthropic")

# kind → HTTP status for the plain error-response faults
STATUS_FAULTS: dict[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "unprocessable": 422,
    "rate_limited": 429,
    "server_error": 500,
    "bad_gateway": 502,
    "unavailable": 503,
    "overloaded": 529,
}
STREAM_FAULTS = (
    "slow_first_byte", "stall", "reset", "cut", "malformed", "error_event", "no_finish", "no_terminator"
)
FAULT_KINDS = ("status", *STATUS_FAULTS, *STREAM_FAULTS)

_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
}


@dataclass(frozen=True)
class Fault:
    """What goes wrong with a request.

    kind:
      status kinds (``rate_limited`` 429, ``server_error`` 500, ``unavailable`` 503, ``overloaded`` 529,
      ``unauthorized`` 401, ``forbidden`` 403, ``bad_request`` 400, ``not_found`` 404,
      ``unprocessable`` 422, ``bad_gateway`` 502, or ``status`` with ``status=``): an error response;
      ``slow_first_byte``: wait ``delay_s`` before the status line, then answer normally;
      ``stall``: after ``after_chunks`` text chunks, pause ``delay_s``, then continue;
      ``reset``: TCP reset right after reading the request (no response at all);
      ``cut``: after ``after_chunks`` text chunks, close the connection mid-body;
      ``malformed``: after ``after_chunks`` text chunks, send an SSE event whose data is not JSON
      (or, when ``message`` is given, is ``message``: e.g. JSON of the wrong shape), then end;
      ``error_event``: after ``after_chunks`` text chunks, send an in-stream error event
      (``error_type``, default overloaded/server error), then end;
      ``no_finish``: stream the text and end the body cleanly without a finish/stop event;
      ``no_terminator``: stream the text and its finish event, then end the body cleanly without the
      closing events (OpenAI: the usage chunk and ``[DONE]``; Anthropic: ``message_stop``).
    """

    kind: str
    status: int | None = None
    retry_after: float | None = None
    delay_s: float = 0.0
    after_chunks: int = 0
    error_type: str | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")

    @property
    def http_status(self) -> int | None:
        if self.kind == "status":
            return self.status or 500
        return STATUS_FAULTS.get(self.kind)

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        if isinstance(data, str):
            return cls(kind=data)
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Reply:
    """What a successful request returns. ``chunks=None`` → one chunk per word."""

    text: str = "Hello from the stub provider. This answer arrives in several small chunks."
    chunks: int | None = None
    input_tokens: int = 42
    output_tokens: int | None = None  # None → number of words in ``text``
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    chunk_delay_s: float = 0.0
    model: str | None = None  # None → echo the requested model
    stop_reason: str | None = None  # None → "stop" (OpenAI) / "end_turn" (Anthropic)
    # False: ignore OpenAI's stream_options.include_usage, as some OpenAI-compatible servers do
    stream_usage: bool = True

    @classmethod
    def from_json(cls, data: Any) -> Reply:
        return cls(**_known(cls, data))

    def pieces(self) -> list[str]:
        if self.chunks is None:
            return re.findall(r"\s*\S+\s*", self.text) or ([self.text] if self.text else [])
        n = max(1, min(self.chunks, len(self.text))) if self.text else 0
        if n == 0:
            return []
        size, extra = divmod(len(self.text), n)
        out, pos = [], 0
        for i in range(n):
            step = size + (1 if i < extra else 0)
            out.append(self.text[pos : pos + step])
            pos += step
        return out

    @property
    def completion_tokens(self) -> int:
        return self.output_tokens if self.output_tokens is not None else len(self.text.split())


def _known(cls: type, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__} must be a JSON object")
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(sorted(unknown))}")
    return dict(data)


@dataclass(frozen=True)
class RecordedRequest:
    api: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float = field(default_factory=time.time)
    raw_body: str = ""  # the body as it came over the wire (UTF-8)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: dict[str, Fault | None] = {}
        self.queues: dict[str, deque[Fault]] = {api: deque() for api in APIS}
        self.replies: dict[str, Reply] = {}
        self.requests: list[RecordedRequest] = []
        self.counter = 0

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            for q in self.queues.values():
                q.clear()
            self.replies.clear()
            self.requests.clear()


class ProviderStubServer:
    """Threaded loopback server; ``port=0`` picks a free port. Use as a context manager or start/stop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = _State()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.stub = self
        self._thread: threading.Thread | None = None

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                daemon=True,
                name="provider-stub",
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def serve_forever(self) -> None:
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses ---------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # control -----------------------------------------------------------------------------------
    def set_fault(self, api: str, fault: Fault | None) -> None:
        """Persistent fault for every request to ``api`` ("openai", "anthropic" or "*"); None clears."""
        with self.state.lock:
            for a in _apis(api):
                self.state.faults[a] = fault

    def queue_faults(self, api: str, *faults: Fault) -> None:
        """One-shot faults, used by the next requests in order (before any persistent fault)."""
        with self.state.lock:
            for a in _apis(api):
                self.state.queues[a].extend(faults)

    def set_reply(self, api: str, reply: Reply | None) -> None:
        with self.state.lock:
            for a in _apis(api):
                if reply is None:
                    self.state.replies.pop(a, None)
                else:
                    self.state.replies[a] = reply

    def reset(self) -> None:
        """Clear faults, queued faults, replies and recorded requests."""
        self.state.reset()

    def requests(self, api: str | None = None) -> list[RecordedRequest]:
        with self.state.lock:
            return [r for r in self.state.requests if api is None or r.api == api]

    def _take(self, api: str, header_fault: Fault | None) -> tuple[Fault | None, Reply, int]:
        with self.state.lock:
            self.state.counter += 1
            if header_fault is not None:
                fault: Fault | None = header_fault
            elif self.state.queues[api]:
                fault = self.state.queues[api].popleft()
            else:
                fault = self.state.faults.get(api)
            return fault, self.state.replies.get(api, Reply()), self.state.counter


def _apis(api: str) -> tuple[str, ...]:
    if api == "*":
        return APIS
    if api not in APIS:
        raise ValueError(f"unknown api {api!r}; use openai, anthropic or *")
    return (api,)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 makes concurrent clients wait a second in SYN backlog
    stub: ProviderStubServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stopping = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError | OSError):
            return  # the client went away (timeouts, resets): expected under fault injection
        super().handle_error(request, client_address)


class _Abort(Exception):
    """Raised inside the handler after the connection was deliberately broken."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as real API servers set it: each SSE event goes out when written, instead of
    # waiting (Nagle) for the ACK of the previous small write, which a client that is only reading
    # delays by up to 40 ms.
    disable_nagle_algorithm = True
    server: _HTTPServer
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()

    # routing -----------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/_control/health":
            self._json(200, {"ok": True})
        elif path == "/_control/requests":
            self._json(200, [asdict(r) for r in self.server.stub.requests()])
        else:
            self._json(404, {"error": {"message": f"no route {path}"}})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            body = self._read_json()
        except ValueError:
            self._json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        try:
            if path.startswith("/_control/"):
                self._control(path, body)
            elif path.endswith("/chat/completions"):
                self._model_call("openai", path, body)
            elif path.endswith("/messages"):
                self._model_call("anthropic", path, body)
            else:
                self._json(404, {"error": {"message": f"no route {path}"}})
        except _Abort:
            self.close_connection = True

    def _control(self, path: str, body: Any) -> None:
        stub = self.server.stub
        try:
            if path == "/_control/fault":
                api = body.get("api", "*")
                raw = body.get("fault")
                if body.get("queue"):
                    faults = raw if isinstance(raw, list) else [raw]
                    stub.queue_faults(api, *(Fault.from_json(f) for f in faults))
                else:
                    stub.set_fault(api, Fault.from_json(raw) if raw is not None else None)
            elif path == "/_control/reply":
                raw = body.get("reply")
                stub.set_reply(body.get("api", "*"), Reply.from_json(raw) if raw is not None else None)
            elif path == "/_control/reset":
                stub.reset()
            else:
                self._json(404, {"error": {"message": f"no control route {path}"}})
                return
        except (ValueError, TypeError, AttributeError) as exc:
            self._json(400, {"error": {"message": str(exc)}})
            return
        self._json(200, {"ok": True})

    # model calls -------------------------------------------------------------------------------
    def _model_call(self, api: Api, path: str, body: Any) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            header_fault = (
                Fault.from_json(_maybe_json(headers["x-stub-fault"])) if "x-stub-fault" in headers else None
            )
            header_reply = (
                Reply.from_json(json.loads(headers["x-stub-reply"])) if "x-stub-reply" in headers else None
            )
        except (ValueError, TypeError) as exc:
            self._json(400, {"error": {"message": f"bad stub header: {exc}"}})
            return
        stub = self.server.stub
        with stub.state.lock:
            stub.state.requests.append(
                RecordedRequest(api, "POST", path, headers, body, raw_body=getattr(self, "_raw_body", ""))
            )
        fault, reply, n = stub._take(api, header_fault)
        reply = header_reply or reply
        if not isinstance(body, dict):
            self._error(api, 400, "request body must be a JSON object", None)
            return
        model = reply.model or str(body.get("model") or "stub-model")
        request_id = f"req_stub_{n}_{uuid.uuid4().hex[:8]}"

        if fault is not None:
            if fault.kind == "reset":
                self._reset()
            if fault.kind == "slow_first_byte" and self.server.stopping.wait(fault.delay_s):
                raise _Abort
            status = fault.http_status
            if status is not None:
                message = fault.message or f"stub fault {fault.kind}"
                self._error(
                    api, status, message, fault.retry_after, request_id=request_id, etype=fault.error_type
                )
                return

        if body.get("stream"):
            if api == "openai":
                include_usage = bool((body.get("stream_options") or {}).get("include_usage")) and reply.stream_usage
                events = _openai_events(reply, model, request_id, include_usage)
            else:
                events = _anthropic_events(reply, model, request_id)
            self._stream(api, events, fault, reply, request_id)
        elif api == "openai":
            self._json(200, _openai_completion(reply, model, request_id), {"x-request-id": request_id})
        else:
            self._json(200, _anthropic_message(reply, model, request_id), {"request-id": request_id})

    def _stream(
        self, api: Api, events: list[tuple[bool, str]], fault: Fault | None, reply: Reply, request_id: str
    ) -> None:
        kind = fault.kind if fault is not None and fault.kind in STREAM_FAULTS else None
        at = fault.after_chunks if fault is not None else -1
        if kind == "no_finish":
            events = _drop_finish(api, events)
        if kind == "no_terminator":
            events = _drop_terminator(api, events)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id" if api == "openai" else "request-id", request_id)
        self.end_headers()

        pending: list[str] = []
        text_sent = 0
        paced = reply.chunk_delay_s > 0
        for is_text, data in events:
            if kind in ("stall", "cut", "malformed", "error_event") and is_text and text_sent == at:
                assert fault is not None
                if kind == "stall":
                    self._flush(pending)
                    if self.server.stopping.wait(fault.delay_s):
                        raise _Abort
                elif kind == "cut":
                    self._flush(pending)
                    self._cut()
                elif kind == "malformed":
                    pending.append(_malformed_event(api, fault))
                    self._flush(pending)
                    self._end_body()
                    return
                else:  # error_event
                    pending.append(_error_event(api, fault))
                    self._flush(pending)
                    self._end_body()
                    return
            if paced and is_text and text_sent > 0:
                self._flush(pending)
                if self.server.stopping.wait(reply.chunk_delay_s):
                    raise _Abort
            pending.append(data)
            if is_text:
                text_sent += 1
        if kind == "cut":  # cut point at or beyond the last chunk: cut before the end
            self._flush(pending)
            self._cut()
        if kind in ("malformed", "error_event"):
            assert fault is not None
            pending.append(_malformed_event(api, fault) if kind == "malformed" else _error_event(api, fault))
        self._flush(pending)
        self._end_body()

    # low-level writes --------------------------------------------------------------------------
    def _flush(self, pending: list[str]) -> None:
        if not pending:
            return
        data = "".join(pending).encode()
        pending.clear()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_body(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _cut(self) -> None:
        """Close mid-body (FIN, without the terminating chunk): the client sees an incomplete read."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Abort

    def _reset(self) -> None:
        """TCP RST: SO_LINGER 0 then close."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        raise _Abort

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self._raw_body = raw.decode("utf-8", "replace")
        return json.loads(raw) if raw else {}

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(
        self,
        api: Api,
        status: int,
        message: str,
        retry_after: float | None,
        *,
        request_id: str = "req_stub_error",
        etype: str | None = None,
    ) -> None:
        headers = {"x-request-id" if api == "openai" else "request-id": request_id}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        if api == "openai":
            payload: dict[str, Any] = {
                "error": {
                    "message": message,
                    "type": etype or _OPENAI_ERROR_TYPES.get(status, "server_error"),
                    "param": None,
                    "code": None,
                }
            }
        else:
            payload = {
                "type": "error",
                "error": {
                    "type": etype or _ANTHROPIC_ERROR_TYPES.get(status, "api_error"),
                    "message": message,
                },
            }
        self._json(status, payload, headers)


def _maybe_json(value: str) -> Any:
    value = value.strip()
    return json.loads(value) if value.startswith("{") else value


# --- wire formats -------------------------------------------------------------------------------


def _sse(data: Any, event: str | None = None) -> str:
    body = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {event}\n" if event else "") + f"data: {body}\n\n"


def _openai_usage(reply: Reply) -> dict[str, Any]:
    prompt = reply.input_tokens + reply.cached_tokens + reply.cache_write_tokens
    details: dict[str, Any] = {"cached_tokens": reply.cached_tokens, "audio_tokens": 0}
    if reply.cache_write_tokens:
        details["cache_write_tokens"] = reply.cache_write_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": prompt + reply.completion_tokens,
        "prompt_tokens_details": details,
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _openai_events(reply: Reply, model: str, request_id: str, include_usage: bool) -> list[tuple[bool, str]]:
    base = {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        extra = {"usage": None} if include_usage else {}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse({**base, "choices": [choice], **extra})

    events: list[tuple[bool, str]] = [(False, chunk({"role": "assistant", "content": ""}))]
    events += [(True, chunk({"content": piece})) for piece in reply.pieces()]
    events.append((False, chunk({}, reply.stop_reason or "stop")))
    if include_usage:
        events.append((False, _sse({**base, "choices": [], "usage": _openai_usage(reply)})))
    events.append((False, _sse("[DONE]")))
    return events


def _anthropic_events(reply: Reply, model: str, request_id: str) -> list[tuple[bool, str]]:
    message: dict[str, Any] = {
        "id": f"msg_{request_id}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": reply.input_tokens,
            "output_tokens": 1,
            "cache_read_input_tokens": reply.cached_tokens,
            "cache_creation_input_tokens": reply.cache_write_tokens,
        },
    }
    events: list[tuple[bool, str]] = [
        (False, _sse({"type": "message_start", "message": message}, "message_start")),
        (
            False,
            _sse(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                "content_block_start",
            ),
        ),
        (False, _sse({"type": "ping"}, "ping")),
    ]
    events += [
        (
            True,
            _sse(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                "content_block_delta",
            ),
        )
        for piece in reply.pieces()
    ]
    events += [
        (False, _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")),
        (
            False,
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reply.stop_reason or "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": reply.completion_tokens},
                },
                "message_delta",
            ),
        ),
        (False, _sse({"type": "message_stop"}, "message_stop")),
    ]
    return events


def _drop_finish(api: Api, events: list[tuple[bool, str]]) -> list[tuple[bool, str]]:
    if api == "openai":
        return [e for e in events if '"finish_reason":"' not in e[1] and "[DONE]" not in e[1]]
    return [e for e in events if "message_delta" not in e[1] and "message_stop" not in e[1]]


def _drop_terminator(api: Api, events: list[tuple[bool, str]]) -> list[tuple[bool, str]]:
    if api == "openai":  # everything up to the finish chunk; not the usage chunk or [DONE] after it
        last = max(i for i, e in enumerate(events) if '"finish_reason":"' in e[1])
        return events[: last + 1]
    return [e for e in events if "message_stop" not in e[1]]


def _malformed_event(api: Api, fault: Fault) -> str:
    if fault.message is not None:  # the data as given
        event = "" if api == "openai" else "event: content_block_delta\n"
        return f"{event}data: {fault.message}\n\n"
    if api == "openai":
        return 'data: {"id": "chatcmpl-broken", "choices": [\n\n'
    return 'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": \n\n'


def _error_event(api: Api, fault: Fault) -> str:
    message = fault.message or "stub in-stream error"
    if api == "openai":
        return _sse({"error": {"message": message, "type": fault.error_type or "server_error", "code": None}})
    return _sse(
        {"type": "error", "error": {"type": fault.error_type or "overloaded_error", "message": message}},
        "error",
    )


def _openai_completion(reply: Reply, model: str, request_id: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None},
                "logprobs": None,
                "finish_reason": reply.stop_reason or "stop",
            }
        ],
        "usage": _openai_usage(reply),
    }


def _anthropic_message(reply: Reply, model: str, request_id: str) -> dict[str, Any]:
    return {
        "id": f"msg_{request_id}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": reply.text}],
        "stop_reason": reply.stop_reason or "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.completion_tokens,
            "cache_read_input_tokens": reply.cached_tokens,
            "cache_creation_input_tokens": reply.cache_write_tokens,
        },
    }


def start_stub_server(host: str = "127.0.0.1", port: int = 0) -> ProviderStubServer:
    """Start a stub in a background thread; call ``.stop()`` when done."""
    return ProviderStubServer(host, port).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Loopback OpenAI/Anthropic stub with fault injection")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = ProviderStubServer(args.host, args.port)
    print(
        f"provider stub listening on {server.url} (openai: {server.openai_base_url}, "
        f"anthropic: {server.anthropic_base_url})",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
