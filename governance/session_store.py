"""Sessions kept in the app database under a digest of their key, never the key itself.

Django's database backend stores each session under the very value of the browser's session
cookie: anyone who can read `django_session` (a database administrator, a backup, a replica)
could sign in as whoever is signed in, second factor and all. Here the row's key is an
HMAC of the cookie's value under the SECRET_KEY, so the table alone signs no one in, and who
can write it cannot plant a row for a cookie of their choosing. Existing sessions
end when this is deployed (people sign in again).
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.utils.crypto import salted_hmac


def stored_key(session_key: str) -> str:
    """The key a session is stored under: a digest of the cookie's value keyed with the
    SECRET_KEY, so that someone who can write the table cannot choose a cookie for a row
    (copying a signed-in person's session data under a digest they computed)."""
    return salted_hmac("warden.session-key", session_key, algorithm="sha256").hexdigest()[:40]


def _stored(session_key: str | None) -> str | None:
    return stored_key(session_key) if session_key else session_key


class SessionStore(DbSessionStore):
    def _get_session_from_db(self) -> Any:
        stored, self._session_key = self._session_key, _stored(self._session_key)
        try:
            return super()._get_session_from_db()  # type: ignore[misc]
        finally:
            # The parent clears the key when there is no such session; keep that, else the
            # cookie's own value.
            self._session_key = stored if self._session_key is not None else None

    async def _aget_session_from_db(self) -> Any:
        stored, self._session_key = self._session_key, _stored(self._session_key)
        try:
            return await super()._aget_session_from_db()  # type: ignore[misc]
        finally:
            self._session_key = stored if self._session_key is not None else None

    def exists(self, session_key: str) -> bool:
        return bool(super().exists(stored_key(session_key) if session_key else session_key))

    async def aexists(self, session_key: str) -> bool:
        return bool(await super().aexists(stored_key(session_key) if session_key else session_key))

    def create_model_instance(self, data: dict[str, Any]) -> Any:
        instance = super().create_model_instance(data)
        instance.session_key = stored_key(str(instance.session_key))
        return instance

    async def acreate_model_instance(self, data: dict[str, Any]) -> Any:
        instance = await super().acreate_model_instance(data)
        instance.session_key = stored_key(str(instance.session_key))
        return instance

    def delete(self, session_key: str | None = None) -> None:
        super().delete(_stored(session_key if session_key is not None else self.session_key))

    async def adelete(self, session_key: str | None = None) -> None:
        await super().adelete(_stored(session_key if session_key is not None else self.session_key))
