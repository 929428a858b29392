"""Account: who you are, and changing your password."""

from __future__ import annotations

from ui.account_view import render_account
from ui.frame import page

with page("account") as user:
    render_account(user)
