"""Small helpers shared by the provider tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from core.providers.base import Done, InputUsage, TextDelta, Usage
from core.providers.router import Started


@dataclass
class Collected:
    started: list[Started] = field(default_factory=list)
    text: str = ""
    deltas: int = 0
    usage: list[Usage] = field(default_factory=list)
    input_usage: list[InputUsage] = field(default_factory=list)
    done: list[Done] = field(default_factory=list)
    order: list[str] = field(default_factory=list)


def collect(events: Iterable[object]) -> Collected:
    out = Collected()
    for event in events:
        out.order.append(type(event).__name__)
        if isinstance(event, Started):
            out.started.append(event)
        elif isinstance(event, TextDelta):
            out.text += event.text
            out.deltas += 1
        elif isinstance(event, InputUsage):
            out.input_usage.append(event)
        elif isinstance(event, Usage):
            out.usage.append(event)
        elif isinstance(event, Done):
            out.done.append(event)
        else:  # pragma: no cover
            raise AssertionError(f"unexpected event {event!r}")
    return out


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
