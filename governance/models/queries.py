"""Saved queries: a person's own statements, kept by title, and shared with a connection's users."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from governance.models.connections import Connection

TITLE_MAX = 200
DESCRIPTION_MAX = 2000


class SavedQuery(models.Model):
    """SQL text kept for later: opening one only fills the editor, it never runs anything.

    `shared` lists it to everyone who may use the editor on its `connection` (a shared query
    needs one: the people it is shared with are that connection's users)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_queries"
    )
    # A connection deleted or renamed later leaves the text: it just no longer preselects one.
    connection = models.ForeignKey(
        Connection,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="saved_queries",
    )
    title = models.CharField(max_length=TITLE_MAX)
    sql = models.TextField()
    description = models.TextField(blank=True, max_length=DESCRIPTION_MAX)
    shared = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "pk"]
        indexes = [
            models.Index(fields=["owner", "title"]),
            models.Index(
                fields=["connection", "title"],
                condition=models.Q(shared=True),
                name="savedquery_shared_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.title
