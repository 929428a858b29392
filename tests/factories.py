"""Small factories for test data (not copy-pasted literals)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from pathlib import Path

from core.db import system_session, user_session
from models import AgentRun, Conversation, PasswordReset, SigninAddress, User, UserProfile, UserSession, VibeConfig
from models.types import utcnow


def random_email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def oidc_auth_section(
    *, metadata_url: str = "http://127.0.0.1:9/.well-known/openid-configuration", app_url: str = "http://localhost:8501"
) -> dict[str, str]:
    """A complete ``[auth]`` secrets section for ``st.login`` (random client secret and cookie secret).
    The default provider address is a closed loopback port: nothing answers there."""
    return {
        "redirect_uri": f"{app_url}/oauth2callback",
        "cookie_secret": secrets.token_hex(32),
        "client_id": "advisor-test",
        "client_secret": secrets.token_urlsafe(24),
        "server_metadata_url": metadata_url,
    }


def make_user(*, email: str | None = None, is_admin: bool = False) -> uuid.UUID:
    user = User(email=email or random_email(), is_admin=is_admin, password_hash=None, auth_provider="local")
    with system_session() as s:
        s.add(user)
    return user.id


def fill_user(user_id: uuid.UUID, *, runs: int = 3, marker: str = "") -> dict[str, uuid.UUID]:
    """Give a user one row in every user-owned table (and ``runs`` agent runs).

    What the user writes through the product (profile, vibe, conversation) is written in their
    session; finished runs and the sign-in address as the system role, since a user session may
    only start runs as pending and records no sign-in, session or reset code itself (migrations 0010,
    0014, 0017)."""
    with user_session(user_id) as s:
        s.add(UserProfile(user_id=user_id, role="CTO", stack=["Python", marker or "Go"], vertical="SaaS"))
        vibe = VibeConfig(user_id=user_id, name=f"vibe {marker}", is_active=True)
        conv = Conversation(user_id=user_id, title=f"conv {marker}", agent="general")
        s.add(vibe)
        s.add(conv)
    with system_session() as s:
        s.add(SigninAddress(user_id=user_id, address_hash=hashlib.sha256(f"{user_id}{marker}".encode()).hexdigest()))
        s.add(UserSession(user_id=user_id, token_hash=hashlib.sha256(f"token {user_id}{marker}".encode()).hexdigest(),
                          expires_at=utcnow() + timedelta(days=14), user_agent=f"test browser {marker}"))
        s.add(PasswordReset(user_id=user_id, code_hash=hashlib.sha256(f"code {user_id}{marker}".encode()).hexdigest(),
                            expires_at=utcnow() + timedelta(hours=24)))
        for i in range(runs):
            s.add(
                AgentRun(
                    user_id=user_id,
                    conversation_id=conv.id,
                    user_message=f"question {i} {marker}",
                    output=f"answer {i} {marker}",
                    status="ok",
                    provider="demo",
                    model="demo",
                    input_tokens=10 + i,
                    output_tokens=20 + i,
                    request_id=uuid.uuid4().hex[:12],
                )
            )
    return {"vibe": vibe.id, "conversation": conv.id}


def write_atom(
    directory: Path,
    name: str,
    *,
    atom_id: str | None = None,
    front: str | None = None,
    body: str = "Body text.",
) -> Path:
    """Write ``<name>.md`` with default front matter unless ``front`` (raw YAML lines) is given."""
    if front is None:
        front = f"id: {atom_id or name}\nversion: 1\norder: 1\ndescription: test atom"
    path = directory / f"{name}.md"
    path.write_text(f"---\n{front}\n---\n{body}\n", encoding="utf-8")
    return path
