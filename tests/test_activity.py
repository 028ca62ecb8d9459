"""The activity dashboard: charts from the audit trail, each linking to the events behind it,
and the live feed; for auditors and admins only."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from audit.sealer import seal
from governance.services.agents import agent_create
from governance.services.catalog import catalog_refresh
from governance.services.runs import Caller, run_submit
from ops import charts

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------- geometry (no database)


def test_the_axis_top_is_a_round_number_at_or_above_the_largest_value() -> None:
    assert [charts.nice_max(v) for v in (0, 1, 3, 7, 12, 480, 501)] == [1, 1, 5, 10, 20, 500, 1000]


def test_stacked_segments_add_up_and_keep_their_links() -> None:
    chart = charts.stacked_columns(
        [
            ("a", {"web": 3, "api": 1}, {"web": "/w", "api": "/a"}, "day a"),
            ("b", {}, {}, "day b"),
        ],
        {"web": "#000", "api": "#111"},
    )
    assert chart.total == 4
    first = chart.columns[0]
    assert [(s.series, s.value, s.href) for s in first.segments] == [
        ("web", 3, "/w"),
        ("api", 1, "/a"),
    ]
    # Stacked: the second segment sits on the first, and the column is as tall as its total.
    web, api = first.segments
    assert api.y + api.height == pytest.approx(web.y, abs=0.2)
    assert chart.columns[1].segments == []
    assert first.segments[0].title == "day a: 3 web"


def test_bars_are_as_long_as_their_share_of_the_largest() -> None:
    bars = charts.horizontal_bars([("x", 8, "/x", ""), ("y", 2, "/y", "#f00")]).bars
    assert bars[0].width == pytest.approx(4 * bars[1].width, rel=0.01)
    assert bars[1].color == "#f00"


def test_heatmap_cells_darken_with_reads_and_flag_unmasked_values() -> None:
    grid = charts.heatmap(
        [("db: t.ssn", "/c", {"2026-12-01": (4, 0), "2026-12-02": (2, 1)})],
        ["2026-12-01", "2026-12-02", "2026-12-03"],
    )
    cells = grid.rows[0].cells
    assert [c.value for c in cells] == [4, 2, 0]
    assert cells[0].opacity > cells[1].opacity > cells[2].opacity == 0
    assert [c.alert for c in cells] == [False, True, False]
    assert "1 unmasked" in cells[1].title


# ---------------------------------------------------------------- the page


@pytest.fixture
def activity(
    alice: Any,
    carol: Any,
    sqlite_conn: Any,
    ledger: Any,
    groups: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
) -> dict[str, Any]:
    """Statements through three channels, one held, one denied, one agent; sealed."""
    catalog_refresh(connection=sqlite_conn)  # finds customers.email sensitive
    agent, _ = agent_create(
        caller=Caller(user=carol), name="report-bot", owner=carol, groups=["analyst"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            run_submit(
                caller=Caller(user=alice),
                connection=sqlite_conn,
                sql="SELECT email FROM customers LIMIT 2",
            )
        run_submit(caller=Caller(user=alice, channel="cli"), connection=sqlite_conn, sql="SELECT 1")
        run_submit(
            caller=Caller(user=agent.user, channel="api"), connection=sqlite_conn, sql="SELECT 2"
        )
        run_submit(
            caller=Caller(user=alice),
            connection=ledger,
            sql="UPDATE accounts SET balance = 0 WHERE id = 1",
        )
        run_submit(caller=Caller(user=alice), connection=sqlite_conn, sql="GRANT ALL ON x TO y")
    seal(settle_s=0)
    return {"agent": agent}


def _links(html: str, marker: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'<a href="([^"]*)"><rect', html) if marker in h]


def _trail_count(client: Client, link: str) -> int:
    page = client.get(link).content.decode()
    found = re.search(r"(\d+) events? match", page)
    assert found, link
    return int(found.group(1))


@pytest.mark.parametrize("who", ["dave", "carol"])
def test_auditors_and_admins_see_the_dashboard(
    client: Client, activity: Any, who: str, request: Any
) -> None:
    client.force_login(request.getfixturevalue(who))
    response = client.get(reverse("activity"))
    assert response.status_code == 200
    html = response.content.decode()
    for heading in (
        "Statements by channel",
        "Statements by decision",
        "Held and denied, by rule",
        "Top people",
        "Top agents",
        "Sensitive columns reached",
        "Unmask exemptions in use",
        "Live activity",
    ):
        assert heading in html
    assert html.count("<svg") >= 5


@pytest.mark.parametrize("who", ["alice", "bob", "eve"])
def test_others_are_refused(client: Client, who: str, request: Any) -> None:
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("activity")).status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client: Client) -> None:
    response = client.get(reverse("activity"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_each_chart_links_to_the_trail_behind_its_figure(
    client: Client, dave: Any, activity: Any
) -> None:
    client.force_login(dave)
    html = client.get(reverse("activity"), {"period": "24h"}).content.decode()
    by_channel = {
        parse_qs(urlsplit(link).query)["channel"][0]: link for link in _links(html, "channel=")
    }
    assert set(by_channel) == {"web", "cli", "api"}
    assert _trail_count(client, by_channel["web"]) == 5  # three reads, the held and the denied
    assert _trail_count(client, by_channel["cli"]) == 1
    assert _trail_count(client, by_channel["api"]) == 1
    held = [link for link in _links(html, "decision=require_approval")]
    assert held and _trail_count(client, held[0]) == 1
    # Held and denied by rule: each bar opens the statements that rule decided.
    rule_links = [unescape(h) for h in re.findall(r'<a href="([^"]*rule=[^"]*)"><title>', html)]
    assert rule_links
    for link in rule_links:
        assert _trail_count(client, link) >= 1
    # People and agents apart.
    people = html.split('id="h-people"')[1].split("</section>")[0]
    agents = html.split('id="h-agents"')[1].split("</section>")[0]
    assert "alice" in people and "report-bot" not in people
    assert "report-bot" in agents and "alice" not in agents
    # The heatmap's cells open who reached that column.
    heat = html.split('id="h-columns"')[1].split("</section>")[0]
    assert "customers.email" in heat
    assert reverse("access_column", args=["demo", "customers", "email"]) in heat


def test_looking_at_the_dashboard_is_recorded_but_the_feed_polling_is_not(
    client: Client, dave: Any, activity: Any
) -> None:
    client.force_login(dave)
    client.get(reverse("activity"), {"period": "30d"})
    viewed = AuditEvent.objects.filter(kind="audit.viewed", actor_id=dave.pk)
    assert viewed.count() == 1
    assert viewed.get().detail["page"] == "activity" and viewed.get().detail["period"] == "30d"
    poll = client.get(reverse("activity"), {"feed": "1"}, HTTP_HX_REQUEST="true")
    assert poll.status_code == 200 and '<ol class="feed"' in poll.content.decode()
    assert "<svg" not in poll.content.decode()  # the fragment only
    assert viewed.count() == 1


def test_the_feed_is_filtered_as_the_trail_is(client: Client, dave: Any, activity: Any) -> None:
    client.force_login(dave)
    html = client.get(
        reverse("activity"), {"feed": "1", "channel": "cli"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert html.count("<li>") >= 1
    assert "SELECT 1" in html and "SELECT email" not in html and "SELECT 2" not in html
    html = client.get(
        reverse("activity"), {"feed": "1", "decision": "deny"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "GRANT ALL" in html and "SELECT" not in html


def test_bad_filters_and_periods_are_a_page_not_an_error(client: Client, dave: Any) -> None:
    client.force_login(dave)
    for params in (
        {"period": "1y"},
        {"period": "\x00"},
        {"kind": "nope"},
        {"channel": "<script>"},
        {"actor": "x" * 500},
    ):
        response = client.get(reverse("activity"), params)
        assert response.status_code == 200, params
        assert "<script>" not in response.content.decode().split("<main")[1].split("</main>")[0]


def test_an_empty_period_says_so(client: Client, dave: Any) -> None:
    client.force_login(dave)
    html = client.get(reverse("activity")).content.decode()
    assert "Nothing was held or denied." in html
    assert "No one sent a statement." in html
    assert "No statement reached a sensitive column in this period." in html
    assert "No statement matches yet." in html


def test_a_slash_in_a_table_or_column_name_never_breaks_a_page(
    client: Client, dave: Any, sqlite_conn: Any
) -> None:
    """Names come from targets: `a/b` is a valid table name, and `~` the escape itself."""
    from django.utils import timezone

    from audit.models import ColumnAccess

    for table, column in (("a/b", "e/mail"), ("x~2Fy", "")):
        ColumnAccess.objects.create(
            event_id=1, created_at=timezone.now(), actor_name="alice", connection_name="demo",
            table=table, column=column, how="masked",
        )  # fmt: skip
    client.force_login(dave)
    for path in (reverse("activity"), reverse("access_overview")):
        assert client.get(path).status_code == 200, path
    link = reverse("access_column", args=["demo", "a/b", "e/mail"])
    assert link.count("/") == reverse("access_column", args=["c", "t", "k"]).count("/")
    page = client.get(link)
    assert page.status_code == 200 and "a/b.e/mail" in page.content.decode()
    tricky = reverse("access_column", args=["demo", "x~2Fy", ""])
    assert client.get(tricky).context["table"] == "x~2Fy"


def test_a_feed_asked_for_with_other_filters_is_a_new_look_and_is_recorded(
    client: Client, dave: Any, activity: Any
) -> None:
    client.force_login(dave)
    client.get(reverse("activity"))
    viewed = AuditEvent.objects.filter(kind="audit.viewed", actor_id=dave.pk)
    assert viewed.count() == 1
    client.get(reverse("activity"), {"feed": "1"}, HTTP_HX_REQUEST="true")  # a refresh
    assert viewed.count() == 1
    client.get(
        reverse("activity"),
        {"feed": "1", "kind": "auth.", "actor": "carol"},
        HTTP_HX_REQUEST="true",
    )
    assert viewed.count() == 2
    assert viewed.latest("id").detail["filters"] == {"kind": "auth.", "actor": "carol"}
    # Dates and run ids are the trail's: the feed is only ever the newest events.
    html = client.get(
        reverse("activity"), {"feed": "1", "start": "2000-01-01", "end": "2000-01-02"},
        HTTP_HX_REQUEST="true",
    ).content.decode()  # fmt: skip
    assert "SELECT email" in html
