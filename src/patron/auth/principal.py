"""Who is acting: a staff user, an integration's API key, or the system (jobs, CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from patron.auth.permissions import ALL

PrincipalKind = Literal["staff", "apikey", "system", "member"]


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    id: int | None
    label: str
    role: str | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)

    def has(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def key(self) -> str:
        """Stable identity used to scope idempotency keys."""
        return f"{self.kind}:{self.id if self.id is not None else self.label}"

    @classmethod
    def system(cls, label: str = "system") -> Principal:
        return cls(kind="system", id=None, label=label, role=None, permissions=ALL)
