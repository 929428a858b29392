"""Which runs a view covers: a UTC date range, optional provider/model/status lists, a time bucket."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from models import RUN_STATUSES

Granularity = Literal["day", "week", "month"]
GRANULARITIES: tuple[Granularity, ...] = ("day", "week", "month")


def as_utc(value: datetime, name: str) -> datetime:
    """``value`` in UTC; a naive datetime is refused rather than guessed."""
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")
    return value.astimezone(UTC)


def distinct_sorted(values: Sequence[str | None]) -> tuple[str, ...]:
    return tuple(sorted({v for v in values if v}))


def check_granularity(granularity: str) -> Granularity:
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}")
    return granularity  # type: ignore[return-value]


@dataclass(frozen=True)
class Filters:
    """Which runs a figure covers: ``start <= created_at < end`` (UTC) and optional value lists.

    An empty tuple means "any". Values are de-duplicated and sorted, so equal filters compare
    (and cache) equal.
    """

    start: datetime
    end: datetime
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        start, end = as_utc(self.start, "start"), as_utc(self.end, "end")
        if end <= start:
            raise ValueError("the end of the date range must be after its start")
        statuses = distinct_sorted(self.statuses)
        unknown = [s for s in statuses if s not in RUN_STATUSES]
        if unknown:
            raise ValueError(f"unknown status(es): {', '.join(unknown)}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "providers", distinct_sorted(self.providers))
        object.__setattr__(self, "models", distinct_sorted(self.models))
        object.__setattr__(self, "statuses", statuses)

    @classmethod
    def last_days(cls, days: int, *, now: datetime | None = None, **values: tuple[str, ...]) -> Filters:
        """The ``days`` whole UTC days ending with today (today included)."""
        if days < 1:
            raise ValueError("days must be at least 1")
        now = as_utc(now or datetime.now(UTC), "now")
        end = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        return cls(start=end - timedelta(days=days), end=end, **values)

    @property
    def previous_start(self) -> datetime:
        """Start of the previous period of equal length, which ends where this one starts."""
        return self.start - (self.end - self.start)

    def previous(self) -> Filters:
        return Filters(self.previous_start, self.start, self.providers, self.models, self.statuses)
