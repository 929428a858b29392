"""One chat turn, durable from the first keystroke to the last token.

``run_turn(...)`` follows the design's flow:

1. validate the message (``models.schemas.ChatIn`` + ``settings.max_message_chars``) — a bad one
   raises ``TurnRejected`` and nothing is stored or sent;
2. limits: the per-minute rate limit (``core.limits.consume_chat_turn``), then the quotas, read in
   the same transaction that stores the message — a hit raises ``TurnRejected`` with the limit's
   message, nothing stored or sent;
3. the ``agent_runs`` row with the user's message and status ``pending`` is inserted and
   **committed before any provider is called**: nothing a user typed is ever lost. On PostgreSQL
   steps 2 (quotas) and 3 are one statement — context, quota figures, the INSERT only when the
   conversation is the user's and no quota is reached, and the title — run as raw psycopg through
   ``core.db.pg_user_batch`` (same identity switch and row-level security as every session);
   elsewhere (SQLite) the same as SQLAlchemy Core statements;
4. the prompt is assembled (``core.assembler``) from the user's profile and active vibe (memoised:
   the assembler is pure, so a user's next turns reuse the byte-identical prompt);
5. the answer streams through the provider router (fallback chain, circuit breakers);
6. text deltas are yielded to the caller as they arrive (``st.write_stream``);
7. the row is finished: output, tokens, cost, ttft/latency, prompt hash, atoms, status. This
   last write runs on a background thread (``core.finishing``) once the stream has ended, so the
   caller is not held for it; ``Turn.close()`` waits for it (the chat page closes every turn before
   it reruns), the user's next turn waits for it before it reads its history and quotas, and the
   interpreter waits for it at exit.

While streaming, the partial output is checkpointed to the row every ``CHECKPOINT_S`` seconds, so a
process killed mid-answer leaves the user's message and most of the answer behind; the recovery
sweep (``recover_stale_runs``, run at start) marks such rows ``interrupted``.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Table, Uuid, bindparam, update
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import col

from core import finishing
from core.assembler import AssembledPrompt, assemble_prompt, run_record
from core.atoms import AtomLibrary, app_atoms
from core.conversations import DEFAULT_TITLE, title_from_message
from core.db import (
    NotFound,
    Statement,
    get_engine,
    is_database_error,
    pg_user_batch,
    system_session,
    user_connection,
)
from core.error_reports import log_exception
from core.limits import (
    LimitExceeded,
    QuotaPeriods,
    consume_chat_turn,
    quota_periods,
    quota_refusal,
    quota_usage,
    usage_columns,
)
from core.pricing import cost_usd
from core.profiles import profile_in, vibe_from_values
from core.providers.base import ChatMessage, Done, InputUsage, ProviderError, TextDelta, Usage
from core.providers.router import AllProvidersFailed, ProviderRouter, Started, StreamInterrupted, build_router
from core.request_context import current_request_id, new_request_id
from core.run_versions import NotReplaceable, supersede_last_run
from core.settings import Settings, get_settings
from models import SLIDERS, AgentRun
from models.schemas import ChatIn, ProfileIn, VibeIn, field_errors
from models.types import utcnow

log = logging.getLogger("advisor.chat")

CHECKPOINT_S = 2.0
FINISH_RETRIES = 6  # the final write survives a database restart of a few seconds

_FRIENDLY = {
    "rate_limited": "The AI providers are rate limiting us right now.",
    "server": "The AI providers are having trouble right now.",
    "timeout": "The AI providers took too long to answer.",
    "connection": "We could not reach the AI providers.",
    "auth": "The AI provider rejected our credentials; an admin needs to check the configuration.",
    "bad_request": "The AI provider rejected this request.",
    "circuit_open": "The AI providers are temporarily paused after repeated failures.",
    "cancelled": "The answer was stopped.",
    "internal": "Something went wrong while answering.",
}


class TurnRejected(ValueError):
    """The turn was refused before anything was stored (bad input or a limit)."""

    def __init__(self, message: str, *, reason: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason  # "invalid" or the limit's name
        self.retry_after_s = retry_after_s


@dataclass
class TurnResult:
    run_id: uuid.UUID
    request_id: str
    status: str = "pending"
    output: str = ""
    provider: str | None = None
    model: str | None = None
    fallback_from: tuple[str, ...] = ()
    usage: Usage | None = None
    # an interrupted answer: the input side the provider reported before its stream failed
    input_usage: InputUsage | None = None
    cost_usd: Decimal | None = None
    ttft_ms: int | None = None
    latency_ms: int | None = None
    error_code: str | None = None
    prompt_sha256: str | None = None

    @property
    def user_message(self) -> str:
        """What the page shows when the turn did not complete: short, with the request id."""
        if self.status == "ok":
            return ""
        reason = _FRIENDLY.get(self.error_code or "internal", _FRIENDLY["internal"])
        if self.status == "interrupted":
            reason = "The answer was cut off. " + reason
        return f"{reason} Your message is saved — retry when ready. (reference {self.request_id})"


# The profile and vibe columns of the context row, as one hashable key: the prompt they assemble to
# (with the agent and the atom library) is memoised, since the assembler is pure.
PromptKey = tuple[Any, ...]


@dataclass
class _Context:
    prompt_key: PromptKey  # its first item is the conversation's agent
    history: list[ChatMessage]


@dataclass
class Turn:
    """An accepted turn: iterate it for text deltas; ``result`` is complete when iteration ends.

    The run's row is finished (output, usage, cost, status) on a background thread once the stream
    has ended. Call ``close()`` when done with the turn (the chat page does, in a ``finally``): it
    waits until the row is finished, so what is read from the database next shows the answer. A
    turn whose stream was never started -- the page was rerun between accepting the message and
    showing the answer -- is then recorded as ``interrupted`` / ``cancelled`` instead of staying
    ``pending`` until the next recovery sweep. Closing a started stream finishes it the same way;
    an ended one is left as it is.
    """

    result: TurnResult
    _stream: Generator[str, None, None] = field(repr=False)
    _user_id: uuid.UUID = field(repr=False)

    def __iter__(self) -> Iterator[str]:
        return self._stream

    def close(self) -> None:
        if inspect.getgeneratorstate(self._stream) == inspect.GEN_CREATED:
            self._stream.close()  # never started: its finally will not run, so finish here
            self.result.status, self.result.error_code = "interrupted", "cancelled"
            _finish_later(self._user_id, self.result, None)
        else:
            self._stream.close()  # started: GeneratorExit → interrupted/cancelled, finished in its finally
        self.wait_finished()

    def wait_finished(self, timeout: float | None = None) -> bool:
        """Wait until the run's row is finished in the database; False if ``timeout`` ran out first."""
        return finishing.wait_run(self.result.run_id, timeout)


def _finish_later(user_id: uuid.UUID, result: TurnResult, prompt: AssembledPrompt | None) -> None:
    """``_finish`` on a background thread (``core.finishing``); a non-database error is logged."""

    def write() -> None:
        try:
            _finish(user_id, result, prompt)
        except Exception as exc:  # database errors are retried in _finish, then left to the sweep
            log_exception(exc, where="chat.finish")

    finishing.submit(user_id, result.run_id, write)


def _validate(conversation_id: uuid.UUID | str, text_in: str, settings: Settings) -> ChatIn:
    try:
        data = ChatIn(conversation_id=conversation_id, text=text_in)  # type: ignore[arg-type]
    except ValidationError as exc:
        errors = field_errors(exc)
        msg = errors.get("text") or next(iter(errors.values()))
        if "at most" in msg:
            msg = f"Your message is too long: at most {settings.max_message_chars:,} characters."
        raise TurnRejected(f"Message not sent: {msg}", reason="invalid") from None
    if len(data.text) > settings.max_message_chars:
        raise TurnRejected(
            f"Message not sent: it has {len(data.text):,} characters; at most "
            f"{settings.max_message_chars:,} are allowed.",
            reason="invalid",
        )
    return data


# --- accepting a turn: one transaction (ownership + context, quotas, the pending row, the title) ---
# Portable statements (SQLite; SQLAlchemy Core, no ORM unit of work).
_CONTEXT_SQL = sql_text(
    """
    SELECT c.agent, p.role, p.stack, p.vertical,
           v.name, v.playfulness, v.revenue_focus, v.technical_depth, v.brevity, v.formality
    FROM conversations c
    LEFT JOIN user_profiles p ON p.user_id = c.user_id
    LEFT JOIN vibe_configs v ON v.user_id = c.user_id AND v.is_active
    WHERE c.id = :cid AND c.user_id = :uid
    """
).bindparams(bindparam("cid", type_=Uuid()), bindparam("uid", type_=Uuid()))
_HISTORY_SQL = sql_text(
    """
    SELECT user_message, output FROM agent_runs
    WHERE conversation_id = :cid AND user_id = :uid AND status IN ('ok', 'interrupted')
      AND superseded_by IS NULL
    ORDER BY created_at DESC LIMIT :n
    """
).bindparams(bindparam("cid", type_=Uuid()), bindparam("uid", type_=Uuid()))
# A conversation is titled from its first message: while it has its default title and no answered run.
_TITLE_SQL = sql_text(
    """
    UPDATE conversations SET title = :t
    WHERE id = :cid AND user_id = :uid AND title = :d
      AND NOT EXISTS (SELECT 1 FROM agent_runs r
                      WHERE r.conversation_id = :cid AND r.user_id = :uid AND r.status IN ('ok', 'interrupted'))
    """
).bindparams(bindparam("cid", type_=Uuid()), bindparam("uid", type_=Uuid()))
_RUNS: Table = AgentRun.__table__  # type: ignore[attr-defined]
_INSERT_RUN = _RUNS.insert()
# The SET clause is the keys of the parameters given at execution (compiled once per key set).
_FINISH_RUN = _RUNS.update().where(_RUNS.c.id == bindparam("run_id"), _RUNS.c.user_id == bindparam("owner_id"))

# PostgreSQL: the same in one statement (psycopg, no SQLAlchemy on this path): the context row with
# the quota figures (``core.limits.usage_columns``, as the quota check reads them) and whether it
# has an answered run, the INSERT only when the conversation is the user's and no quota is reached,
# and the title; "stored" says whether the run is stored. It goes out with the history query in one
# round trip (core.db.pg_user_batch): the history of a conversation without answered runs is empty,
# so asking for it costs little. The batch may be sent twice (a connection found dead), so the
# INSERT is idempotent: a run with this id stored by the first try counts as stored (the statement's
# snapshot does not see its own INSERT).
_PG_ACCEPT = f"""
WITH ctx AS (
    SELECT c.agent, p.role, p.stack, p.vertical,
           v.name, v.playfulness, v.revenue_focus, v.technical_depth, v.brevity, v.formality,
           u.quota_tokens_per_day AS quota_tokens, u.quota_cost_per_month_usd AS quota_cost,
           {usage_columns(lambda name: f"%({name})s")},
           EXISTS (SELECT 1 FROM agent_runs r WHERE r.conversation_id = c.id AND r.user_id = c.user_id
                   AND r.status IN ('ok', 'interrupted')) AS answered
    FROM conversations c
    JOIN users u ON u.id = c.user_id
    LEFT JOIN user_profiles p ON p.user_id = c.user_id
    LEFT JOIN vibe_configs v ON v.user_id = c.user_id AND v.is_active
    WHERE c.id = %(cid)s AND c.user_id = %(uid)s
), ins AS (
    INSERT INTO agent_runs (id, user_id, conversation_id, agent, created_at, user_message, output, status,
                            request_id)
    SELECT %(id)s, %(uid)s, %(cid)s, ctx.agent, %(created_at)s, %(message)s, '', 'pending', %(request_id)s
    FROM ctx
    WHERE ctx.tokens_today < coalesce(ctx.quota_tokens, %(tokens_default)s)
      AND ctx.cost_month < coalesce(ctx.quota_cost, %(cost_default)s)
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
), titled AS (
    UPDATE conversations SET title = %(title)s
    WHERE id = %(cid)s AND user_id = %(uid)s AND title = %(default_title)s AND EXISTS (SELECT 1 FROM ins)
      AND NOT (SELECT answered FROM ctx)
    RETURNING 1
)
SELECT ctx.*, EXISTS (SELECT 1 FROM ins)
              OR EXISTS (SELECT 1 FROM agent_runs r WHERE r.id = %(id)s AND r.user_id = %(uid)s) AS stored
FROM ctx
"""
_PG_HISTORY = """
SELECT user_message, output FROM agent_runs
WHERE conversation_id = %(cid)s AND user_id = %(uid)s AND status IN ('ok', 'interrupted')
  AND superseded_by IS NULL
ORDER BY created_at DESC LIMIT %(n)s
"""
_PG_FINISH = """
UPDATE agent_runs SET status = %(status)s, output = %(output)s, provider = %(provider)s, model = %(model)s,
    fallback_from = %(fallback_from)s, input_tokens = %(input_tokens)s, output_tokens = %(output_tokens)s,
    cached_input_tokens = %(cached_input_tokens)s, cache_write_tokens = %(cache_write_tokens)s,
    cost_usd = %(cost_usd)s, ttft_ms = %(ttft_ms)s, latency_ms = %(latency_ms)s,
    prompt_sha256 = %(prompt_sha256)s, atom_versions = %(atom_versions)s::jsonb, error_code = %(error_code)s
WHERE id = %(run_id)s AND user_id = %(owner_id)s
"""


@dataclass(frozen=True)
class _NewRun:
    id: uuid.UUID
    user_id: uuid.UUID
    conversation_id: uuid.UUID
    message: str
    request_id: str
    created_at: datetime
    replaces: uuid.UUID | None = None  # the conversation's last run, of which this is a new version


def _context(row: Sequence[Any], history: Sequence[Sequence[Any]]) -> _Context:
    """From the context row (agent, profile and vibe columns) and the history, newest first."""
    stack = row[2] if isinstance(row[2], list) else json.loads(row[2]) if row[2] else []
    hist: list[ChatMessage] = []
    for user_message, output in reversed(history):
        if output:
            hist.append(ChatMessage("user", user_message))
            hist.append(ChatMessage("assistant", output))
    key = (row[0], row[1], tuple(stack), row[3], *row[4:10])
    return _Context(prompt_key=key, history=hist)


def _accept(new: _NewRun, turns: int) -> _Context:
    """Rate limit, then one transaction: ownership + context, quotas, the pending row, the title.

    Raises ``LimitExceeded`` or ``NotFound`` with nothing stored; on return the message is committed.
    """
    consume_chat_turn(new.user_id)  # attempts count: a turn refused below still used its slot
    periods = quota_periods()
    engine = get_engine()
    if engine.dialect.name == "postgresql" and new.replaces is None:
        return _accept_pg(new, periods, turns, engine)
    return _accept_portable(new, periods, turns, engine)  # PostgreSQL too for a new version of a turn


def _accept_pg(new: _NewRun, periods: QuotaPeriods, turns: int, engine: Engine) -> _Context:
    params: dict[str, Any] = {
        "uid": new.user_id, "cid": new.conversation_id, "id": new.id, "created_at": new.created_at,
        "message": new.message, "request_id": new.request_id, "title": title_from_message(new.message),
        "default_title": DEFAULT_TITLE, "n": turns, **periods.params,
    }
    statements: list[Statement] = [(_PG_ACCEPT, params)]
    if turns:
        statements.append((_PG_HISTORY, params))
    rows, *more = pg_user_batch(new.user_id, statements, engine=engine)
    if not rows:
        raise NotFound("conversation not found")
    row = rows[0]
    if not row[-1]:  # the conversation is the user's, so a quota held the INSERT back
        refusal = quota_refusal(periods.usage(*row[10:14]), periods.now)
        if refusal is None:  # pragma: no cover - the SQL and core.limits compare the same figures
            raise RuntimeError("the database refused the turn but no quota is reached")
        raise refusal
    history = more[0] if more else []
    return _context(row, history)


def _accept_portable(new: _NewRun, periods: QuotaPeriods, turns: int, engine: Engine) -> _Context:
    ids = {"cid": new.conversation_id, "uid": new.user_id}
    with user_connection(new.user_id, engine=engine) as conn:
        row = conn.execute(_CONTEXT_SQL, ids).first()
        if row is None:
            raise NotFound("conversation not found")
        refusal = quota_refusal(quota_usage(new.user_id, periods, conn), periods.now)
        if refusal is not None:
            raise refusal
        if new.replaces is not None:  # before the history is read, so it leaves the replaced run out
            supersede_last_run(conn, user_id=new.user_id, conversation_id=new.conversation_id,
                               replaced_id=new.replaces, new_id=new.id)
        history = conn.execute(_HISTORY_SQL, {**ids, "n": turns}).all() if turns else []
        conn.execute(
            _INSERT_RUN,
            {"id": new.id, "user_id": new.user_id, "conversation_id": new.conversation_id, "agent": row[0],
             "created_at": new.created_at, "user_message": new.message, "output": "", "status": "pending",
             "request_id": new.request_id},
        )
        conn.execute(_TITLE_SQL, {**ids, "t": title_from_message(new.message), "d": DEFAULT_TITLE})
    return _context(row, history)


def _profile_and_vibe(key: PromptKey) -> tuple[ProfileIn, VibeIn]:
    # Built as the prompt preview builds them (core.profiles), so the preview shows the prompt a
    # turn sends even for values stored before a validation rule tightened.
    _agent, role, stack, vertical, name, *sliders = key
    profile = profile_in(role=role or "Other", stack=list(stack), vertical=vertical or "")
    if name is None:
        return profile, VibeIn()
    return profile, vibe_from_values({"name": name, **dict(zip(SLIDERS, sliders, strict=True))})


_PROMPT_CACHE_SIZE = 1024
_prompt_cache: OrderedDict[tuple[str, PromptKey], AssembledPrompt] = OrderedDict()
_prompt_cache_lock = threading.Lock()


def clear_prompt_cache() -> None:
    """Forget memoised prompts (tests that replace the assembler)."""
    with _prompt_cache_lock:
        _prompt_cache.clear()


def _prompt_for(key: PromptKey, atoms: AtomLibrary) -> AssembledPrompt:
    """``assemble_prompt`` for this context, memoised by (atom library content hash, key).

    The assembler is a pure function of the atoms, profile, vibe and agent, so a cached prompt is
    byte-identical to a fresh one; the cache only saves the assembly on a user's next turns.
    """
    cache_key = (atoms.content_hash, key)
    with _prompt_cache_lock:
        hit = _prompt_cache.get(cache_key)
        if hit is not None:
            _prompt_cache.move_to_end(cache_key)
            return hit
    profile, vibe = _profile_and_vibe(key)
    prompt = assemble_prompt(profile, vibe, atoms, agent=key[0])
    with _prompt_cache_lock:
        _prompt_cache[cache_key] = prompt
        if len(_prompt_cache) > _PROMPT_CACHE_SIZE:
            _prompt_cache.popitem(last=False)
    return prompt



def run_turn(
    *,
    user_id: uuid.UUID,
    conversation_id: uuid.UUID | str,
    text: str,
    settings: Settings | None = None,
    router: ProviderRouter | None = None,
    atoms: AtomLibrary | None = None,
    request_id: str | None = None,
    clock: Callable[[], float] = time.perf_counter,
    replaces: uuid.UUID | None = None,
) -> Turn:
    """Accept a chat turn (validate, limits, store the message) and return its stream.

    ``replaces``: the conversation's last run, of which this turn is a new version (an edited
    message, a regenerated answer): in the same transaction the old run is marked superseded
    (``core.run_versions``), so the history sent to the model leaves it out; it stays stored.

    Raises ``TurnRejected`` (nothing stored, no provider call; reason ``not_replaceable`` when
    ``replaces`` is not the conversation's last run) or ``NotFound`` (not the user's conversation).
    Everything after the message is stored is reported on ``Turn.result``.
    """
    settings = settings or get_settings()
    router = router or build_router(settings)  # built once per process; not part of the turn's time
    atoms = atoms or app_atoms()
    t0 = clock()
    request_id = request_id or current_request_id() or new_request_id()
    data = _validate(conversation_id, text, settings)
    new = _NewRun(id=uuid.uuid4(), user_id=user_id, conversation_id=data.conversation_id, message=data.text,
                  request_id=request_id, created_at=utcnow(), replaces=replaces)
    # the user's previous answer may still be being written: its history and usage come first
    finishing.wait_user(user_id)
    try:
        ctx = _accept(new, settings.history_turns_in_prompt)
    except LimitExceeded as exc:
        raise TurnRejected(exc.message, reason=exc.limit, retry_after_s=exc.retry_after_s) from None
    except NotReplaceable as exc:
        raise TurnRejected(exc.message, reason="not_replaceable") from None
    # committed: the user's message is durable before any provider is called
    result = TurnResult(run_id=new.id, request_id=request_id)
    stream = _stream(
        result=result, user_id=user_id, ctx=ctx, message=data.text, settings=settings,
        router=router, atoms=atoms, t0=t0, clock=clock,
    )
    return Turn(result=result, _stream=stream, _user_id=user_id)


def _stream(
    *,
    result: TurnResult,
    user_id: uuid.UUID,
    ctx: _Context,
    message: str,
    settings: Settings,
    router: ProviderRouter,
    atoms: AtomLibrary,
    t0: float,
    clock: Callable[[], float],
) -> Generator[str, None, None]:
    parts: list[str] = []
    prompt: AssembledPrompt | None = None
    next_checkpoint = clock() + CHECKPOINT_S
    # The caller binds the request id (the page wraps each turn in request_context); a context
    # variable is not re-bound here because a generator may be finalised in another context.
    try:
        prompt = _prompt_for(ctx.prompt_key, atoms)
        result.prompt_sha256 = prompt.sha256
        messages = [*ctx.history, ChatMessage("user", message)]
        for event in router.stream(messages, system=prompt.text, request_id=result.request_id):
            if type(event) is TextDelta:  # tested first: this runs once per streamed chunk
                if result.ttft_ms is None:
                    result.ttft_ms = _ms(clock() - t0)
                parts.append(event.text)
                yield event.text
                if clock() >= next_checkpoint:
                    _checkpoint(user_id, result.run_id, "".join(parts))
                    next_checkpoint = clock() + CHECKPOINT_S
            elif isinstance(event, Started):
                result.provider, result.model = event.provider, event.model
                result.fallback_from = event.fallback_from
                for failure in event.failures:
                    log.warning(
                        "provider %s failed (%s); fell back", failure.provider, failure.kind.value
                    )
            elif isinstance(event, InputUsage):  # kept if the answer is stopped before its Usage
                result.input_usage = event
            elif isinstance(event, Usage):
                result.usage = event
            elif isinstance(event, Done):
                pass
        result.status = "ok"
    except StreamInterrupted as exc:
        result.status, result.error_code = "interrupted", exc.error_code
        result.provider, result.model, result.fallback_from = exc.provider, exc.model, exc.fallback_from
        result.input_usage = exc.error.input_usage
        log.warning("answer from %s interrupted after %d chars: %s%s", exc.provider, len(exc.partial_text),
                    exc.error.kind.value,
                    "; input tokens recorded, output tokens and cost unknown" if result.input_usage else "")
    except AllProvidersFailed as exc:
        result.status, result.error_code = "error", exc.error_code
        result.fallback_from = tuple(e.provider for e in exc.errors) + exc.skipped
        log.error("all providers failed: %s", exc)
    except GeneratorExit:
        # the consumer went away (page rerun, closed tab): keep what was shown
        result.status, result.error_code = "interrupted", "cancelled"
        raise
    except Exception as exc:
        if isinstance(exc, ProviderError):  # auth / bad_request: no fallback
            result.status, result.error_code = ("interrupted" if parts else "error"), exc.kind.value
            result.provider = exc.provider
            log.error("provider %s refused the request: %s", exc.provider, exc.kind.value)
        else:
            result.status, result.error_code = ("interrupted" if parts else "error"), "internal"
            log_exception(exc, where="chat.run_turn")
    finally:
        result.output = "".join(parts)
        result.latency_ms = _ms(clock() - t0)
        if result.usage is not None and result.model is not None and result.status != "error":
            result.cost_usd = cost_usd(result.model, result.usage)
        _finish_later(user_id, result, prompt)  # the row is finished in the background


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _checkpoint(user_id: uuid.UUID, run_id: uuid.UUID, output: str) -> None:
    try:
        with user_connection(user_id) as conn:
            conn.execute(
                update(AgentRun).where(col(AgentRun.id) == run_id, col(AgentRun.user_id) == user_id,
                                       col(AgentRun.status) == "pending").values(output=output)
            )
    except (OperationalError, DBAPIError):
        log.warning("could not checkpoint partial output; will retry at the end")


def _finish(user_id: uuid.UUID, result: TurnResult, prompt: AssembledPrompt | None) -> None:
    usage = result.usage
    sha, atoms = run_record(prompt) if prompt is not None else (None, None)
    # Without a final usage report, an interrupted answer keeps the input counts the provider sent at
    # the start (they are billed); its output count and so its cost stay unknown (NULL), never guessed.
    inputs: Usage | InputUsage | None = usage if usage is not None else result.input_usage
    values: dict[str, Any] = {
        "run_id": result.run_id,
        "owner_id": user_id,
        "status": result.status,
        "output": result.output,
        "provider": result.provider,
        "model": result.model,
        "fallback_from": ",".join(result.fallback_from) or None,
        "input_tokens": inputs.input_tokens if inputs else None,
        "output_tokens": usage.output_tokens if usage else None,
        "cached_input_tokens": inputs.cached_input_tokens if inputs else None,
        "cache_write_tokens": inputs.cache_write_tokens if inputs else None,
        "cost_usd": result.cost_usd,
        "ttft_ms": result.ttft_ms,
        "latency_ms": result.latency_ms,
        "prompt_sha256": sha,
        "atom_versions": atoms,
        "error_code": result.error_code,
    }
    engine = get_engine()
    delay = 0.25
    for attempt in range(FINISH_RETRIES):
        try:
            if engine.dialect.name == "postgresql":
                finish = {**values, "atom_versions": None if atoms is None else json.dumps(atoms)}
                pg_user_batch(user_id, [(_PG_FINISH, finish)], engine=engine)  # idempotent: may be sent twice
            else:
                with user_connection(user_id, engine=engine) as conn:
                    conn.execute(_FINISH_RUN, values)
            return
        except Exception as exc:
            if not is_database_error(exc):
                raise
            if attempt == FINISH_RETRIES - 1:
                log.error("could not record the end of run %s (%s); the recovery sweep will close it",
                          result.run_id, type(exc).__name__)
                return
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


def longest_turn(settings: Settings) -> timedelta:
    """An upper bound on how long a live turn can take: every provider of the fallback chain tried
    in turn, each attempt (and each SDK retry) within the total timeout, plus a minute of slack for
    the writes. The recovery sweep leaves younger pending runs alone."""
    attempts = len(settings.provider_order) * (settings.provider_max_retries + 1)
    return timedelta(seconds=attempts * settings.provider_total_timeout_s + 60)


def recover_stale_runs(*, older_than: timedelta | None = None, now: datetime | None = None) -> int:
    """Mark runs left ``pending`` by a dead process as ``interrupted`` (partial output kept).

    Safe with several replicas: only runs older than the longest a live turn can take
    (``longest_turn``) are touched. (Were a live turn swept anyway, its final write would still
    record its answer: the finish does not depend on the status.)
    """
    settings = get_settings()
    age = older_than if older_than is not None else longest_turn(settings)
    cutoff = (now or datetime.now(UTC)) - age
    with system_session() as s:
        res = s.execute(
            update(AgentRun)
            .where(col(AgentRun.status) == "pending", col(AgentRun.created_at) < cutoff)
            .values(status="interrupted", error_code="abandoned")
        )
        count = int(getattr(res, "rowcount", 0) or 0)
    if count:
        log.warning("recovery sweep: %d run(s) left pending by a stopped process marked interrupted", count)
    return count
