"""One chat turn, durable from the first keystroke to the last token.

``run_turn(...)`` follows the design's flow:

1. validate the message (``models.schemas.ChatIn`` + ``settings.max_message_chars``) -- a bad one
   raises ``TurnRejected`` and nothing is stored or sent;
2. limits: the per-minute rate limit (``core.rate_limits.consume_chat_turn``), then the quotas
   (``core.quotas.check_quotas``), read in the transaction that stores the message -- a hit raises
   ``TurnRejected`` with the limit's message, nothing stored or sent;
3. one ``user_session`` transaction: the conversation (must be the user's), the profile and active
   vibe, the quotas, the history, the ``agent_runs`` row with the user's message and status
   ``pending`` (``core.agent_runs``), the title of a new conversation. It is **committed before any
   provider is called**: nothing a user typed is ever lost;
4. the prompt is assembled (``core.assembler``) from the user's profile and active vibe;
5. the answer streams through the provider router (fallback chain, circuit breakers);
6. text deltas are yielded to the caller as they arrive (``st.write_stream``);
7. the row is finished in the stream's own ``finally``: output, tokens, cost, ttft/latency, prompt
   hash, atoms, status. When the iteration ends, the row holds the answer.

While streaming, the partial output is checkpointed to the row every ``CHECKPOINT_S`` seconds, so a
process killed mid-answer leaves the user's message and most of the answer behind; the recovery
sweep of ``core.run_leases`` (every app process, periodically) closes such rows ``interrupted`` once
their heartbeat has gone stale. While the answer streams the process holds the run's lease.
"""

from __future__ import annotations

import inspect
import logging
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from pydantic import ValidationError
from sqlalchemy import and_
from sqlmodel import Session, col, select

from core import run_leases
from core.agent_runs import (
    ANSWERED,
    RunFinish,
    checkpoint_output,
    finish_run,
    insert_pending_run,
    recent_exchanges,
)
from core.assembler import AssembledPrompt, assemble_prompt, run_record
from core.atoms import AtomLibrary, app_atoms
from core.conversations import DEFAULT_TITLE, title_from_message
from core.db import NotFound, user_session
from core.error_reports import log_exception
from core.pricing import cost_usd
from core.profiles import profile_in, vibe_in
from core.providers.base import ChatMessage, Done, InputUsage, ProviderError, TextDelta, Usage
from core.providers.router import AllProvidersFailed, ProviderRouter, Started, StreamInterrupted, build_router
from core.quotas import check_quotas
from core.rate_limits import LimitExceeded, consume_chat_turn
from core.request_context import current_request_id, new_request_id
from core.run_versions import NotReplaceable, supersede_last_run
from core.settings import Settings, get_settings
from models import AgentRun, Conversation, UserProfile, VibeConfig
from models.schemas import ChatIn, ProfileIn, VibeIn, field_errors
from models.types import utcnow

log = logging.getLogger("advisor.chat")

CHECKPOINT_S = 2.0

_FRIENDLY = {
    "rate_limited": "The AI providers are rate limiting us right now.",
    "server": "The AI providers are having trouble right now.",
    "timeout": "The AI providers took too long to answer.",
    "connection": "We could not reach the AI providers.",
    "auth": "The AI provider rejected our credentials; an admin needs to check the configuration.",
    "bad_request": "The AI provider rejected this request.",
    "circuit_open": "The AI providers are temporarily paused after repeated failures.",
    "cancelled": "The answer was stopped.",
    run_leases.SHUTDOWN: "The server stopped while answering.",
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


@dataclass
class _Context:
    agent: str
    profile: ProfileIn
    vibe: VibeIn
    history: list[ChatMessage]


@dataclass
class Turn:
    """An accepted turn: iterate it for text deltas; ``result`` is complete when iteration ends,
    and so is the run's row in the database.

    Call ``close()`` when done with the turn (the chat page does, in a ``finally``). A turn whose
    stream was never started -- the page was rerun between accepting the message and showing the
    answer -- is then recorded as ``interrupted`` / ``cancelled`` instead of staying ``pending``
    until the next recovery sweep. Closing a started stream finishes it the same way; an ended one
    is left as it is.
    """

    result: TurnResult
    _stream: Generator[str, None, None] = field(repr=False)
    _user_id: uuid.UUID = field(repr=False)

    def __iter__(self) -> Iterator[str]:
        return self._stream

    def close(self) -> None:
        never_started = inspect.getgeneratorstate(self._stream) == inspect.GEN_CREATED
        self._stream.close()  # a started stream: GeneratorExit -> interrupted/cancelled, finished in its finally
        if never_started:  # its finally never runs: finish here
            self.result.status, self.result.error_code = "interrupted", "cancelled"
            _finish(self._user_id, self.result, None)


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


def _accept(
    *, run_id: uuid.UUID, user_id: uuid.UUID, data: ChatIn, request_id: str, history_turns: int,
    replaces: uuid.UUID | None = None,
) -> _Context:
    """Rate limit, then one transaction: ownership + context, quotas, the replaced run marked
    superseded (a new version of the last turn), history, the pending row, the title.

    Raises ``LimitExceeded``, ``NotFound`` or ``NotReplaceable`` with nothing stored; on return the
    message is committed.
    """
    consume_chat_turn(user_id)  # attempts count: a turn refused below still used its slot
    with user_session(user_id) as s:
        row = s.exec(
            select(Conversation, UserProfile, VibeConfig)
            .outerjoin(UserProfile, col(UserProfile.user_id) == col(Conversation.user_id))
            .outerjoin(VibeConfig, and_(col(VibeConfig.user_id) == col(Conversation.user_id),
                                        col(VibeConfig.is_active)))
            .where(col(Conversation.id) == data.conversation_id, col(Conversation.user_id) == user_id)
        ).first()
        if row is None:
            raise NotFound("conversation not found")
        conversation, profile, vibe = row
        check_quotas(user_id, session=s)
        if replaces is not None:  # before the history is read, so that it leaves the replaced run out
            supersede_last_run(s, user_id=user_id, conversation_id=conversation.id, replaced_id=replaces,
                               new_id=run_id)
        history = recent_exchanges(s, user_id=user_id, conversation_id=conversation.id, turns=history_turns)
        if conversation.title == DEFAULT_TITLE and not _answered(s, conversation):
            conversation.title = title_from_message(data.text)  # titled from its first message
        insert_pending_run(s, run_id=run_id, user_id=user_id, conversation_id=conversation.id,
                           agent=conversation.agent, message=data.text, request_id=request_id,
                           created_at=utcnow())
    # Built as the prompt preview builds them (core.profiles), so the preview shows the prompt a
    # turn sends even for values stored before a validation rule tightened.
    role, stack, vertical = (profile.role, list(profile.stack or []), profile.vertical) if profile else ("", [], "")
    return _Context(agent=conversation.agent,
                    profile=profile_in(role=role or "Other", stack=stack, vertical=vertical or ""),
                    vibe=vibe_in(vibe) if vibe is not None else VibeIn(), history=history)


def _answered(session: Session, conversation: Conversation) -> bool:
    """Whether the conversation has an answered run (then it keeps the title it has)."""
    return session.exec(
        select(AgentRun.id).where(col(AgentRun.conversation_id) == conversation.id,
                                  col(AgentRun.user_id) == conversation.user_id,
                                  col(AgentRun.status).in_(ANSWERED)).limit(1)
    ).first() is not None


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
    run_id = uuid.uuid4()
    try:
        ctx = _accept(run_id=run_id, user_id=user_id, data=data, request_id=request_id,
                      history_turns=settings.history_turns_in_prompt, replaces=replaces)
    except LimitExceeded as exc:
        raise TurnRejected(exc.message, reason=exc.limit, retry_after_s=exc.retry_after_s) from None
    except NotReplaceable as exc:
        raise TurnRejected(exc.message, reason="not_replaceable") from None
    # committed: the user's message is durable before any provider is called
    result = TurnResult(run_id=run_id, request_id=request_id)
    stream = _stream(result=result, user_id=user_id, ctx=ctx, message=data.text, router=router, atoms=atoms,
                     t0=t0, clock=clock)
    return Turn(result=result, _stream=stream, _user_id=user_id)


def _stream(
    *,
    result: TurnResult,
    user_id: uuid.UUID,
    ctx: _Context,
    message: str,
    router: ProviderRouter,
    atoms: AtomLibrary,
    t0: float,
    clock: Callable[[], float],
) -> Generator[str, None, None]:
    parts: list[str] = []
    prompt: AssembledPrompt | None = None
    next_checkpoint = clock() + CHECKPOINT_S
    # the run's lease: this process heartbeats it until the stream ends (core.run_leases)
    lease = run_leases.acquire(result.run_id, user_id, partial=lambda: "".join(parts))
    # The caller binds the request id (the page wraps each turn in request_context); a context
    # variable is not re-bound here because a generator may be finalised in another context.
    try:
        prompt = assemble_prompt(ctx.profile, ctx.vibe, atoms, agent=ctx.agent)
        result.prompt_sha256 = prompt.sha256
        messages = [*ctx.history, ChatMessage("user", message)]
        for event in router.stream(messages, system=prompt.text, request_id=result.request_id):
            if type(event) is TextDelta:  # tested first: this runs once per streamed chunk
                if result.ttft_ms is None:
                    result.ttft_ms = _ms(clock() - t0)
                parts.append(event.text)
                yield event.text
                if clock() >= next_checkpoint:
                    checkpoint_output(user_id=user_id, run_id=result.run_id, output="".join(parts),
                                      provider=result.provider, model=result.model)
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
        lease.release()
        if lease.closed_by_shutdown and result.status != "ok":  # a graceful stop closed it meanwhile
            result.status, result.error_code = "interrupted", run_leases.SHUTDOWN
        result.output = "".join(parts)
        result.latency_ms = _ms(clock() - t0)
        if result.usage is not None and result.model is not None and result.status != "error":
            result.cost_usd = cost_usd(result.model, result.usage)
        _finish(user_id, result, prompt)


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _finish(user_id: uuid.UUID, result: TurnResult, prompt: AssembledPrompt | None) -> None:
    """Record the turn's end on its row. Without a final usage report, an interrupted answer keeps
    the input counts the provider sent at the start (they are billed); its output count and so its
    cost stay unknown (NULL), never guessed."""
    usage = result.usage
    inputs: Usage | InputUsage | None = usage if usage is not None else result.input_usage
    sha, atoms = run_record(prompt) if prompt is not None else (None, None)
    try:
        finish_run(user_id=user_id, run_id=result.run_id, finish=RunFinish(
            status=result.status,
            output=result.output,
            provider=result.provider,
            model=result.model,
            fallback_from=",".join(result.fallback_from) or None,
            input_tokens=inputs.input_tokens if inputs else None,
            output_tokens=usage.output_tokens if usage else None,
            cached_input_tokens=inputs.cached_input_tokens if inputs else None,
            cache_write_tokens=inputs.cache_write_tokens if inputs else None,
            cost_usd=result.cost_usd,
            ttft_ms=result.ttft_ms,
            latency_ms=result.latency_ms,
            prompt_sha256=sha,
            atom_versions=atoms,
            error_code=result.error_code,
        ))
    except Exception as exc:  # database errors are retried in finish_run, then left to the sweep
        log_exception(exc, where="chat.finish")
