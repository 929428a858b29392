"""Privacy: download everything we hold about you, or delete your account for good."""

from __future__ import annotations

import streamlit as st
from pydantic import ValidationError

from core.deletion import LastAdmin, delete_user
from core.export_files import EXPORT_FILE_LIFETIME, ExportFile, exports_dir, remove_export_files, write_export_file
from models.schemas import MAX_EMAIL, EmailIn, field_errors
from ui.auth_view import SIGNED_OUT_NOTICE_KEY, AccountDeletedNotice, sign_out
from ui.frame import page
from ui.text import typing_limit

EXPORT_KEY = "privacy_export"  # the ExportFile of the last prepared export: its path, never its bytes


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def forget_prepared_export() -> None:
    prepared = st.session_state.pop(EXPORT_KEY, None)
    if isinstance(prepared, ExportFile):
        prepared.remove()


with page("privacy") as user:
    st.title("Privacy")

    st.header("Download my data")
    st.write(
        "A ZIP archive with everything Advisor stores about you: your account and profile, your vibes, "
        "your conversations and every message and answer (as JSON Lines and as a CSV spreadsheet). "
        "README.txt inside explains each file and field."
    )
    directory = exports_dir()
    remove_export_files(directory, older_than=EXPORT_FILE_LIFETIME)
    prepared = st.session_state.get(EXPORT_KEY)
    if isinstance(prepared, ExportFile) and (prepared.user_id != user.id or not prepared.exists()):
        forget_prepared_export()
        if prepared.user_id == user.id:
            st.caption("Your prepared export has expired. Prepare it again to download it.")
        prepared = None

    if st.button("Prepare my export", icon=":material/archive:"):
        forget_prepared_export()
        bar = st.progress(0.0, text="Collecting your data…")

        def show_progress(done: int, total: int) -> None:
            text = f"Collecting your data… {done:,} of {total:,} rows"
            bar.progress(done / total if total else 1.0, text=text)

        prepared = write_export_file(user_id=user.id, directory=directory, progress=show_progress)
        bar.empty()
        st.session_state[EXPORT_KEY] = prepared

    if isinstance(prepared, ExportFile):
        size = human_size(prepared.size)
        st.download_button(
            f"Download {prepared.file_name} ({size})",
            data=prepared.read,  # read from disk only when the user clicks
            file_name=prepared.file_name,
            mime="application/zip",
            icon=":material/download:",
            on_click="ignore",
            type="primary",
        )
        st.caption(f"{prepared.file_name} — {size}")

    st.divider()
    st.header("Delete my account")
    st.write(
        "This permanently deletes your account, profile, vibes, conversations and every message and "
        "answer. It cannot be undone. We keep only a record that *an* account was deleted and how many "
        "rows were removed — nothing that identifies you. Download your data first if you want a copy."
    )
    with st.form("delete_account", clear_on_submit=True):
        typed = st.text_input(
            f"To confirm, type your email address ({user.email})", max_chars=typing_limit(MAX_EMAIL)
        )
        confirmed = st.form_submit_button("Delete my account permanently", type="primary")

    if confirmed:
        address: str | None
        try:
            address = EmailIn(email=typed).email
        except ValidationError as exc:
            address = None
            st.error(f"{field_errors(exc)['email']} Nothing was deleted.")
        if address is not None and address != user.email.casefold():
            st.error("That is not the email address of this account. Nothing was deleted.")
        elif address is not None:
            try:
                receipt = delete_user(user_id=user.id)
            except LastAdmin as exc:
                st.error(exc.message, icon=":material/admin_panel_settings:")
                st.stop()
            st.cache_data.clear()  # cached per-user queries of this user
            forget_prepared_export()
            sign_out()  # in OIDC mode a new session: the receipt below is then not shown
            st.session_state[SIGNED_OUT_NOTICE_KEY] = AccountDeletedNotice(
                total_rows=receipt.total_rows, row_counts=dict(receipt.row_counts), record_id=str(receipt.record_id)
            )
            st.rerun()  # the gate shows the sign-in view (no sidebar, no pages) with the notice
