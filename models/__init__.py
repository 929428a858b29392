"""SQLModel tables (one module per aggregate) and input schemas."""

from sqlmodel import SQLModel

from models.conversation import RUN_STATUSES, AgentRun, Conversation
from models.deletion import DeletionRecord
from models.password_reset import PasswordReset
from models.session import UserSession
from models.signin import SigninAddress
from models.usage import UsageCounter
from models.user import User, UserProfile
from models.vibe import SLIDERS, VibeConfig

metadata = SQLModel.metadata

# Tables that carry a user's data, in the order they must be emptied (children first).
USER_OWNED_TABLES = (
    "agent_runs", "conversations", "vibe_configs", "user_profiles", "usage_counters", "signin_addresses",
    "user_sessions", "password_resets",
)

__all__ = [
    "RUN_STATUSES",
    "SLIDERS",
    "USER_OWNED_TABLES",
    "AgentRun",
    "Conversation",
    "DeletionRecord",
    "PasswordReset",
    "SigninAddress",
    "UsageCounter",
    "User",
    "UserProfile",
    "UserSession",
    "VibeConfig",
    "metadata",
]
