"""Operations pages: the Prometheus endpoint (`GET /metrics` with
`Authorization: Bearer $WARDEN_METRICS_TOKEN`) and the activity dashboard."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django_htmx.middleware import HtmxDetails
from prometheus_client import CONTENT_TYPE_LATEST

from audit.kinds import EventKind
from audit.models import AuditEvent
from governance.roles import ADMIN, AUDITOR, role_required
from governance.services.caller import record, web_caller
from governance.views.audit_filters import TrailFilter
from ops.activity import DEFAULT_PERIOD, PERIODS, dashboard
from ops.metrics import exposition


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Off (404) until a token is set; then only a scraper presenting it gets the figures."""
    token = settings.WARDEN_METRICS_TOKEN
    if not token:
        raise Http404
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), token.encode()
    ):
        response = HttpResponse("A metrics token is required.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="warden-metrics"'
        return response
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


@role_required(AUDITOR, ADMIN)
@require_GET
def activity(request: HtmxHttpRequest) -> HttpResponse:
    """The activity dashboard: charts of the period's statements, and the live feed.

    Looking is recorded (`audit.viewed`), as on the trail. The feed refreshing with the
    filters already recorded is not a new look; a feed asked for with other filters is."""
    key = request.GET.get("period", DEFAULT_PERIOD)
    period = PERIODS.get(key) or PERIODS[DEFAULT_PERIOD]
    feed_form, feed = _feed(request)
    filters = feed_form.active()
    seen = sorted(filters.items())
    polling = bool(request.htmx and request.GET.get("feed"))
    if not polling or request.session.get(FEED_SEEN) != [list(f) for f in seen]:
        record(
            EventKind.AUDIT_VIEWED,
            web_caller(request),
            None,
            detail={"page": "activity", "period": period.key, "filters": filters},
        )
        request.session[FEED_SEEN] = [list(f) for f in seen]
    if polling:
        return render(request, "ops/activity.html#feed", {"feed": feed, "feed_form": feed_form})
    return render(
        request,
        "ops/activity.html",
        {
            **dashboard(period),
            "period": period,
            "periods": PERIODS.values(),
            "feed": feed,
            "feed_form": feed_form,
            "feed_query": _feed_query(request),
        },
    )


FEED_SIZE = 25
FEED_SEEN = "warden_activity_feed_filters"
# The feed is the newest events: dates and run ids are the trail's to browse, not its.
FEED_FILTERS = ("actor", "connection", "decision", "rule", "channel", "kind")


def _feed(request: HttpRequest) -> tuple[TrailFilter, list[AuditEvent]]:
    """The newest statement events, filtered as the trail is (statements only, by default)."""
    data = QueryDict(mutable=True)
    for name in FEED_FILTERS:
        if value := request.GET.get(name, ""):
            data[name] = value
    if not data.get("kind"):
        data["kind"] = "query."
    form = TrailFilter(data)
    return form, list(form.events()[:FEED_SIZE])


def _feed_query(request: HttpRequest) -> str:
    query = QueryDict(mutable=True)
    for name in FEED_FILTERS:
        if value := request.GET.get(name, ""):
            query[name] = value
    query["feed"] = "1"
    return query.urlencode()
