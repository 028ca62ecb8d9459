"""The token API against its own OpenAPI schema (schemathesis): generated bodies, paths and
query strings, valid and not, never make it answer 500, and every answer has the status,
content type and shape the schema documents, for a caller holding a real agent token, against
the real demo target."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from governance.services.agents import agent_create
from governance.services.caller import Caller
from tests.conftest import grant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token(sqlite_conn: Any, alice: Any) -> str:
    from governance.services.catalog import catalog_refresh

    catalog_refresh(connection=sqlite_conn)
    agent, token = agent_create(
        caller=Caller(user=alice), name="fuzzer", owner=alice, groups=["analyst"]
    )
    grant(sqlite_conn, agent.user, "read")
    return token


# The schema is served by the app itself (no database is needed to serve it).
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_keeps_its_contract_on_generated_input(case: Any, token: str) -> None:
    # Every check but "a schema-valid request is accepted": a well-formed body naming a
    # connection that does not exist, or a callback to a private address, is rightly refused.
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"}, excluded_checks=[positive_data_acceptance]
    )
