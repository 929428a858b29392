"""core.startup.boot: once per process and database, retried after a failure, guard installed first."""

from __future__ import annotations

import pytest

from core import db as core_db
from core import guard, startup
from core.settings import get_settings


class Unreachable(RuntimeError):
    """A database that cannot be reached (forced)."""


def test_boot_migrates_once_and_later_calls_return_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()  # a fresh SQLite file under the test's tmp_path
    revision = startup.boot(settings)
    assert revision and revision == core_db.current_revision()

    def must_not_run(*_args: object, **_kwargs: object) -> str:
        raise AssertionError("boot ran again")

    monkeypatch.setattr(core_db, "migrate", must_not_run)
    assert startup.boot(settings) == revision


def test_a_failed_boot_is_tried_again_and_the_guard_was_installed_before(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    calls: list[str] = []
    real_migrate = core_db.migrate

    def install_guard(_settings: object, **_options: object) -> None:
        calls.append("guard")

    def migrate(url: str | None = None) -> str:
        calls.append("migrate")
        if calls.count("migrate") == 1:
            raise Unreachable("the database is down")
        return real_migrate(url)

    monkeypatch.setattr(guard, "install_guard", install_guard)
    monkeypatch.setattr(core_db, "migrate", migrate)
    with pytest.raises(Unreachable):
        startup.boot(settings)
    assert calls == ["guard", "migrate"]  # the guard is on although the boot failed
    assert startup.boot(settings) == core_db.current_revision()  # the next call boots
    assert calls == ["guard", "migrate", "guard", "migrate"]
