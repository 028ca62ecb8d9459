"""An account by name with its roles, in one round trip (the command line's acting user)."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection as db

from governance.roles import groups_known
from governance.services.rowload import column, columns, instance, table, width

User = get_user_model()


@cache
def _active_user_sql() -> str:
    memberships: Any = User.groups.through
    return (
        f"SELECT {columns(User, 'u')}, g.{column(Group, 'name')} FROM {table(User)} u "
        f"LEFT JOIN {table(memberships)} m ON m.{column(memberships, 'user')} = "
        f"u.{column(User, 'id')} "
        f"LEFT JOIN {table(Group)} g ON g.{column(Group, 'id')} = m.{column(memberships, 'group')} "
        f"WHERE u.{column(User, User.USERNAME_FIELD)} = %s AND u.{column(User, 'is_active')}"
    )


def active_user(username: str) -> Any:
    """The active account named `username`, its groups known to `user_groups`; else None."""
    if not isinstance(username, str) or "\x00" in username:
        return None
    with db.cursor() as cursor:
        cursor.execute(_active_user_sql(), [username])
        rows = cursor.fetchall()
    if not rows:
        return None
    user = instance(User, rows[0][: width(User)])
    groups_known(user, [row[-1] for row in rows if row[-1] is not None])
    return user
