"""Bearer tokens: `Authorization: Bearer wdn_…`. A refused token is a 401 problem; one that
names a real token (revoked, expired, its agent stopped) is also an audit event."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest
from ninja.security import HttpBearer
from redis.exceptions import RedisError

from audit.kinds import EventKind
from governance.models import ApiToken
from governance.services.agents import Bearer, TokenRefused, token_bearer
from governance.services.caller import Caller, record
from governance.signals import client_ip

log = logging.getLogger("warden.api")


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Bearer:
        try:
            bearer = token_bearer(token)
        except TokenRefused as exc:
            token_refused(token, str(exc), client_ip(request))
            raise
        request.warden_bearer = bearer  # type: ignore[attr-defined]
        return bearer


def token_refused(text: str, reason: str, source_ip: str | None, channel: str = "api") -> None:
    """Record a refused token (every channel: API, MCP over HTTP and stdio)."""
    parsed = ApiToken.parse(text)
    known = (
        ApiToken.objects.select_related("user").filter(key_id=parsed[0]).first() if parsed else None
    )
    # Only the holder of a real token (revoked, expired, its agent stopped) is recorded, once a
    # minute per token: a wrong secret is only logged, so the public key id in someone's
    # token cannot be used to fill the trail with events in their name.
    if known is None or parsed is None or not known.matches(parsed[1]):
        log.info("API token refused from %s: %s", source_ip, reason)
        return
    try:
        first = cache.add(f"warden:api:token-refused:{known.pk}:{int(time.time() // 60)}", 1, 90)
    except RedisError:  # cannot tell: record it (the refusal stands either way)
        first = True
    if not first:
        return
    record(
        EventKind.TOKEN_REFUSED,
        Caller(user=known.user, channel=channel, source_ip=source_ip),
        detail={
            "token": known.shown,
            "token_id": known.pk,
            "user": known.user.get_username(),
            "user_id": known.user_id,
            "reason": reason,
        },
    )


def provenance_of(bearer: Any, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Who is behind a call: the agent and the person it acts for, the token, and what the
    client said of itself (its model, run or trace id, tool)."""
    out: dict[str, Any] = {"token": bearer.token.shown}
    if bearer.agent is not None:
        out.update(
            agent=bearer.agent.name,
            agent_id=bearer.agent.pk,
            acting_for=bearer.agent.owner.get_username(),
            acting_for_id=bearer.agent.owner_id,
        )
    if metadata:
        out["metadata"] = metadata
    return out


def caller_of(request: HttpRequest, metadata: dict[str, Any] | None = None) -> Caller:
    bearer: Any = request.auth  # type: ignore[attr-defined]
    return Caller(
        user=bearer.user,
        channel="api",
        source_ip=client_ip(request),
        provenance=provenance_of(bearer, metadata),
    )
