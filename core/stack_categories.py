"""Known technologies and their categories: the vocabulary of an atom's ``stack_any`` and
``stack_category`` conditions, and the names the assembler renders a profile's stack with.

Every entry of ``models.schemas.STACK_SUGGESTIONS`` has a category here (a unit test checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from models.schemas import STACK_SUGGESTIONS

__all__ = ["KNOWN_STACK", "STACK_CATEGORIES", "STACK_CATEGORY_NAMES"]

STACK_CATEGORY_NAMES: Final = ("frontend", "backend", "data", "mobile", "infra")
# Known technologies → categories. Keys are the canonical spellings; lookups are case-insensitive.
STACK_CATEGORIES: Final[Mapping[str, tuple[str, ...]]] = {
    # frontend
    "React": ("frontend",),
    "Next.js": ("frontend",),
    "Vue": ("frontend",),
    "Nuxt": ("frontend",),
    "Angular": ("frontend",),
    "Svelte": ("frontend",),
    "TypeScript": ("frontend",),
    "JavaScript": ("frontend",),
    # backend
    "Node.js": ("backend",),
    "Python": ("backend",),
    "Django": ("backend",),
    "FastAPI": ("backend",),
    "Flask": ("backend",),
    "Go": ("backend",),
    "Java": ("backend",),
    "Spring": ("backend",),
    "Kotlin": ("backend", "mobile"),
    "Rust": ("backend",),
    "Ruby on Rails": ("backend",),
    "Ruby": ("backend",),
    "PHP": ("backend",),
    "Laravel": ("backend",),
    "C#": ("backend",),
    ".NET": ("backend",),
    "Elixir": ("backend",),
    "Scala": ("backend", "data"),
    "GraphQL": ("backend",),
    "PostgreSQL": ("backend",),
    "MySQL": ("backend",),
    "MongoDB": ("backend",),
    "Redis": ("backend",),
    # data
    "Kafka": ("data",),
    "Snowflake": ("data",),
    "dbt": ("data",),
    "Spark": ("data",),
    "Airflow": ("data",),
    "BigQuery": ("data",),
    "Databricks": ("data",),
    "Redshift": ("data",),
    "ClickHouse": ("data",),
    "Pandas": ("data",),
    # mobile
    "Swift": ("mobile",),
    "iOS": ("mobile",),
    "Android": ("mobile",),
    "React Native": ("mobile",),
    "Flutter": ("mobile",),
    # infra
    "Kubernetes": ("infra",),
    "Terraform": ("infra",),
    "Docker": ("infra",),
    "AWS": ("infra",),
    "GCP": ("infra",),
    "Azure": ("infra",),
    "Pulumi": ("infra",),
}
# casefolded name → (canonical spelling, categories)
KNOWN_STACK: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    **{s.casefold(): (s, ()) for s in STACK_SUGGESTIONS},
    **{k.casefold(): (k, v) for k, v in STACK_CATEGORIES.items()},
}
