"""Who is acting, for events recorded far from any request: a model signal that sees a user
made superuser knows the row, not who made the change. The web middleware names the signed-in
person and their address for each request; `manage.py` names the command and the operating-system
account; code that provisions on someone's behalf (an identity provider's sign-in) says so with
`acting_as`. Outside all of these, the actor is the system.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Acting:
    channel: str = "system"
    request: Any = None  # the HttpRequest: its user is read only when an event is recorded
    via: str = ""  # e.g. "manage.py createsuperuser (os user root)", "OIDC sign-in"

    @property
    def actor(self) -> Any:
        user = getattr(self.request, "user", None)
        return user if user is not None and user.is_authenticated else None


_default = Acting()
_acting: ContextVar[Acting | None] = ContextVar("warden_acting", default=None)


def acting() -> Acting:
    return _acting.get() or _default


def set_default(**fields: Any) -> None:
    """The actor for this whole process when nothing more precise is known (manage.py)."""
    global _default
    _default = replace(_default, **fields)


@contextmanager
def acting_as(**fields: Any) -> Iterator[Acting]:
    """Within the block, events recorded from signals carry these fields."""
    token = _acting.set(replace(acting(), **fields))
    try:
        yield acting()
    finally:
        _acting.reset(token)
