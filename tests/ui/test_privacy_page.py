"""AppTest of pages/privacy.py through the entry script: export download, typed-confirmation delete.

The download button hands Streamlit a callable that reads the prepared file when the browser asks
for it; the test plays the browser's part by calling the callable the button registered."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from core.accounts import get_user
from core.db import user_session
from core.export_files import exports_dir
from models import AgentRun
from tests.factories import fill_user, make_user
from tests.ui.conftest import page_file, run_entry
from ui.frame import SESSION_USER_KEY

PAGE = "pages/privacy.py"


@pytest.fixture
def media(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """Every file handed to Streamlit's media manager (what a download button serves), by file id:
    ``data`` for files given as they are, ``make`` for files made when the browser asks for them."""
    files: dict[str, dict[str, Any]] = {}
    load = MemoryMediaFileStorage.load_and_get_id
    add_deferred = MediaFileManager.add_deferred

    def record(self, path_or_data, mimetype, kind, filename=None):  # type: ignore[no-untyped-def]
        file_id = load(self, path_or_data, mimetype, kind, filename)
        files[file_id] = {"data": path_or_data, "mimetype": mimetype, "filename": filename}
        return file_id

    def record_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):  # type: ignore[no-untyped-def]
        file_id = add_deferred(self, data_callable, mimetype, coordinates, file_name, **kwargs)
        files[file_id] = {"make": data_callable, "mimetype": mimetype, "filename": file_name}
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    monkeypatch.setattr(MediaFileManager, "add_deferred", record_deferred)
    return files


def _button(at, label: str):  # type: ignore[no-untyped-def]
    (button,) = [b for b in at.button if b.label == label]
    return button


def _run_count(user_id) -> int:  # type: ignore[no-untyped-def]
    with user_session(user_id) as s:
        return len(s.query(AgentRun).all())


def _download(media: dict[str, dict[str, Any]], download) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """What the browser gets on a click of the deferred download button: data, mimetype, file name."""
    assert download.proto.deferred_file_id and not download.proto.url  # made on the click, not before
    served = media[download.proto.deferred_file_id]
    return {**served, "data": served["make"]()}


def test_export_offers_a_zip_download(any_db_url, app, media):
    at = app(PAGE)
    assert not at.exception
    user = at.advisor_user
    fill_user(user.id, runs=4, marker="pagetest")
    assert not at.download_button  # nothing prepared yet

    _button(at, "Prepare my export").click().run()
    assert not at.exception
    (download,) = at.download_button
    assert not any("data" in f for f in media.values())  # no bytes handed to Streamlit before the click
    assert not any(isinstance(v, bytes | bytearray) for v in at.session_state.values())  # only a path
    served = _download(media, download)
    data = served["data"]
    assert isinstance(data, bytes) and data
    assert served["mimetype"] == "application/zip"
    assert served["filename"].startswith("advisor-export-") and served["filename"].endswith(".zip")
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert zf.testzip() is None
    assert json.loads(zf.read("profile.json"))["user"]["email"] == user.email
    assert json.loads(zf.read("manifest.json"))["row_counts"]["agent_runs"] == 4
    assert "KB" in download.label or "bytes" in download.label  # the size is shown

    at.run()  # a later rerun keeps offering the prepared file
    assert len(at.download_button) == 1
    assert _download(media, at.download_button[0])["data"] == data  # and downloaded again

    _button(at, "Prepare my export").click().run()  # a new export replaces the previous file
    assert len(at.download_button) == 1
    assert len(list(exports_dir().iterdir())) == 1


def test_an_expired_export_is_no_longer_offered(any_db_url, app):
    at = app(PAGE)
    _button(at, "Prepare my export").click().run()
    assert len(at.download_button) == 1
    for path in exports_dir().iterdir():  # what the hourly clean-up does to a file of an earlier hour
        path.unlink()
    at.run()
    assert not at.exception and not at.download_button
    assert any("expired" in c.value for c in at.caption)


def test_delete_needs_the_exact_email_then_signs_out(any_db_url, app):
    at = app(PAGE)
    user = at.advisor_user
    fill_user(user.id, runs=2, marker="deleteme")
    confirm = "Delete my account permanently"

    at.text_input[0].input("someone-else@example.com")
    _button(at, confirm).click().run()
    assert not at.exception
    assert any("Nothing was deleted" in e.value for e in at.error)
    assert get_user(user.id) is not None
    assert _run_count(user.id) == 2
    assert at.session_state[SESSION_USER_KEY] == user

    _button(at, "Prepare my export").click().run()
    assert len(list(exports_dir().iterdir())) == 1
    at.text_input[0].input(user.email.upper())  # case does not matter
    _button(at, confirm).click().run()
    assert not at.exception
    assert get_user(user.id) is None
    assert list(exports_dir().iterdir()) == []  # the prepared export went with the account
    assert SESSION_USER_KEY not in at.session_state
    # signed out at once: the page reran the app, and the gate shows the sign-in view with what was
    # deleted (once)
    assert [t.value for t in at.title] == ["Advisor"] and not at.sidebar.button
    assert any("account was deleted" in s.value for s in at.success)
    shown = at.table[0].value
    assert dict(zip(shown["table"], shown["rows deleted"], strict=True))["agent_runs"] == 2
    assert any("holds no personal data" in c.value for c in at.caption)
    assert user.email not in str(shown)
    run_entry(at)
    assert not at.success and not at.table  # shown once


def test_oidc_account_deletion_also_signs_out_of_the_identity(app, set_env):
    """In OIDC mode the identity cookie would sign the same person straight back up (a new, empty
    account) on the next run: deleting the account logs that identity out too."""
    from sqlmodel import select

    from core.db import system_session
    from models import User
    from tests.factories import random_email
    from tests.ui.conftest import new_app_test

    set_env(AUTH_MODE="oidc")
    app(signed_in=False)  # migrates the database
    email = random_email()
    at = new_app_test()
    at.user = {"is_logged_in": True, "email": email, "sub": "oidc-delete-1", "email_verified": True}
    at.run()
    user = at.session_state[SESSION_USER_KEY]
    assert user.email == email
    at.switch_page(page_file(PAGE)).run()
    at.text_input[0].input(email)
    _button(at, "Delete my account permanently").click().run()
    assert not at.exception
    assert at.user.get("is_logged_in") is False
    run_entry(at)
    assert not at.exception and SESSION_USER_KEY not in at.session_state
    assert [b.key for b in at.button] == ["oidc_login"]
    with system_session() as s:
        assert s.exec(select(User).where(User.email == email)).first() is None  # not signed up again


def test_the_only_admin_is_told_to_name_another_admin_first(any_db_url, app):
    at = app(PAGE, admin=True)
    user = at.advisor_user
    make_user()  # another account exists
    at.text_input[0].input(user.email)
    _button(at, "Delete my account permanently").click().run()
    assert not at.exception
    assert any("only admin" in e.value for e in at.error)
    assert get_user(user.id) is not None and at.session_state[SESSION_USER_KEY] == user


def test_exports_left_by_an_earlier_start_are_removed_when_the_app_starts(any_db_url, app):
    directory = exports_dir()
    directory.mkdir(parents=True)
    left = [directory / "0123abcd.zip", directory / "4567cdef.part"]  # a finished and a cut-short export
    for path in left:
        path.write_bytes(b"PK")
    at = app(PAGE)  # the first run of a new process boots the app
    assert not at.exception
    assert not any(path.exists() for path in left)
