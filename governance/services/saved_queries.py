"""Saved queries: keep a statement by title, share it with a connection's users.

Saving runs nothing and decides nothing: a saved query is text. It runs only when someone
opens it in the editor and submits it, through `run_submit` like any statement, as that
person. So sharing one gives nobody access: it is listed only to people who may already use
its connection, and it runs under their own grants, masking and guardrails.

What is audited: what others see. A private query is its owner's notebook (like a draft in
the editor, not recorded); sharing, unsharing, and changing or deleting a shared query are
recorded with the text, since colleagues may run what they take to be the same statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from audit.kinds import EventKind
from governance.models import Connection, SavedQuery
from governance.models.queries import DESCRIPTION_MAX, TITLE_MAX
from governance.services.access import connections_for
from governance.services.caller import Caller, record
from governance.services.runs import InvalidSQL, sql_validate


class InvalidSavedQuery(Exception):
    """What is wrong with a saved query's fields, in a sentence for people."""


NEEDS_CONNECTION = (
    "Choose a connection to share this query: it is shared with the people who may use that "
    "connection."
)


@dataclass(frozen=True)
class SavedQueryFields:
    title: str
    sql: str
    description: str
    connection: Connection | None
    shared: bool


def saved_query_clean(
    *,
    title: Any,
    sql: Any,
    description: Any = "",
    connection: Connection | None,
    shared: bool = False,
) -> SavedQueryFields:
    """The fields checked as a saved query keeps them, or InvalidSavedQuery saying why."""
    if not isinstance(title, str) or not isinstance(description, str):
        raise InvalidSavedQuery("The title and description must be text.")
    title, description = title.strip(), description.strip()
    if not title:
        raise InvalidSavedQuery("Give the query a title.")
    if len(title) > TITLE_MAX:
        raise InvalidSavedQuery(f"The title is too long: at most {TITLE_MAX} characters.")
    if len(description) > DESCRIPTION_MAX:
        raise InvalidSavedQuery(
            f"The description is too long: at most {DESCRIPTION_MAX:,} characters."
        )
    if "\x00" in title or "\x00" in description:
        raise InvalidSavedQuery("The title and description must be plain text (no NUL byte).")
    try:
        # The same bounds as a statement submitted to run: what is saved can be run.
        sql = sql_validate(sql)
    except InvalidSQL as exc:
        raise InvalidSavedQuery(str(exc)) from None
    if shared and connection is None:
        raise InvalidSavedQuery(NEEDS_CONNECTION)
    return SavedQueryFields(title, sql, description, connection, bool(shared))


def _record(kind: EventKind, caller: Caller, query: SavedQuery, **detail: Any) -> None:
    record(
        kind,
        caller,
        query.connection,
        sql=query.sql,
        detail={"saved_query": query.pk, "title": query.title, **detail},
    )


@transaction.atomic
def saved_query_create(*, caller: Caller, fields: SavedQueryFields) -> SavedQuery:
    query = SavedQuery.objects.create(
        owner=caller.user,
        title=fields.title,
        sql=fields.sql,
        description=fields.description,
        connection=fields.connection,
        shared=fields.shared,
    )
    if query.shared:
        _record(EventKind.SAVED_QUERY_SHARED, caller, query)
    return query


@transaction.atomic
def saved_query_update(
    *, caller: Caller, query: SavedQuery, fields: SavedQueryFields
) -> SavedQuery:
    """Change the owner's query; sharing and unsharing it, and any change others see, are
    recorded."""
    before = SavedQuery.objects.select_for_update().get(pk=query.pk, owner=caller.user)
    query.title, query.sql, query.description = fields.title, fields.sql, fields.description
    query.connection, query.shared = fields.connection, fields.shared
    query.save()
    if query.shared and not before.shared:
        _record(EventKind.SAVED_QUERY_SHARED, caller, query)
    elif before.shared and not query.shared:
        # Recorded on the connection it was shared on: that is who no longer sees it.
        _record(EventKind.SAVED_QUERY_UNSHARED, caller, before)
    elif query.shared:
        changed = [
            name
            for name in ("title", "sql", "description", "connection_id")
            if getattr(before, name) != getattr(query, name)
        ]
        if changed:
            previous = {"connection": before.connection.name} if before.connection else {}
            _record(
                EventKind.SAVED_QUERY_UPDATED,
                caller,
                query,
                changed=[c.removesuffix("_id") for c in changed],
                **({"previous": previous} if "connection_id" in changed else {}),
            )
    return query


@transaction.atomic
def saved_query_delete(*, caller: Caller, query: SavedQuery) -> None:
    if query.shared:
        _record(EventKind.SAVED_QUERY_DELETED, caller, query)
    SavedQuery.objects.filter(pk=query.pk, owner=caller.user).delete()


# ---------------------------------------------------------------- reads


def my_saved_queries(user: Any) -> QuerySet[SavedQuery]:
    return SavedQuery.objects.filter(owner=user).select_related("connection")


def shared_saved_queries(user: Any) -> QuerySet[SavedQuery]:
    """Others' shared queries on connections `user` holds an active grant on."""
    usable = [c.pk for c in connections_for(user)]
    return (
        SavedQuery.objects.filter(shared=True, connection_id__in=usable)
        .exclude(owner=user)
        .select_related("connection", "owner")
    )


def saved_query_readable(user: Any, pk: int) -> SavedQuery:
    """The user's own query, or one shared on a connection they may use; DoesNotExist
    otherwise (another's private query reads the same as one that does not exist)."""
    own = my_saved_queries(user).filter(pk=pk).first()
    if own is not None:
        return own
    return shared_saved_queries(user).get(pk=pk)


def saved_query_own(user: Any, pk: int) -> SavedQuery:
    """The user's own query (only its owner renames, changes or deletes it)."""
    return my_saved_queries(user).get(pk=pk)
