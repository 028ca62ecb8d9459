import re

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path, register_converter

from api import bench_floor
from api.mcp_http import mcp_endpoint
from api.v1 import api as api_v1
from governance.views import agents, audit, catalog, common, editor, manage, saved, users
from ops import views as ops

# 404.html and 500.html are rendered by Django's default handlers; 403 shows only Warden's words.
handler403 = "governance.views.errors.permission_denied"


class NameConverter:
    """A database object's name as one path segment, whatever it holds: names come from
    targets (a table may be called `a/b`), so `/` and the escape character itself are escaped
    (`~2F`, `~7E`) rather than break the link, or every page that would show it."""

    regex = r"[^/]+"
    _escapes = {"~": "~7E", "/": "~2F"}
    _back = re.compile(r"~(7E|2F|00)")
    _unescapes = {"7E": "~", "2F": "/", "00": ""}

    def to_python(self, value: str) -> str:
        return self._back.sub(lambda m: self._unescapes[m.group(1)], value)

    def to_url(self, value: str) -> str:
        return "".join(self._escapes.get(c, c) for c in str(value)) or "~00"


register_converter(NameConverter, "name")

urlpatterns = [
    path("", common.home, name="home"),
    path("editor/", editor.editor, name="editor"),
    path("runs/", editor.run_create, name="run_create"),
    path("runs/export/", editor.run_export, name="run_export"),
    path("runs/<int:pk>/", editor.run_detail, name="run_detail"),
    path("runs/<int:pk>/cancel/", editor.run_cancel_view, name="run_cancel"),
    path("history/", editor.history, name="history"),
    path("connections/<int:pk>/schema.json", editor.connection_schema, name="connection_schema"),
    path("connections/<int:pk>/schema/", editor.schema_browser, name="schema_browser"),
    path("queries/", saved.saved_query_list, name="saved_query_list"),
    path("queries/new/", saved.saved_query_new, name="saved_query_create"),
    path("queries/<int:pk>/", saved.saved_query_edit, name="saved_query_edit"),
    path("queries/<int:pk>/delete/", saved.saved_query_remove, name="saved_query_delete"),
    path("manage/connections/", manage.connection_list, name="connection_list"),
    path("manage/connections/new/", manage.connection_edit, name="connection_create"),
    path("manage/connections/<int:pk>/", manage.connection_detail, name="connection_detail"),
    path("manage/connections/<int:pk>/edit/", manage.connection_edit, name="connection_edit"),
    path("manage/connections/<int:pk>/test/", manage.connection_test, name="connection_test"),
    path("manage/connections/new/test/", manage.connection_form_test, name="connection_try"),
    path(
        "manage/connections/<int:pk>/edit/test/",
        manage.connection_form_test,
        name="connection_edit_try",
    ),
    path("manage/connections/<int:pk>/delete/", manage.connection_delete, name="connection_delete"),
    path("manage/connections/<int:pk>/grants/", manage.grant_create, name="grant_create"),
    path(
        "manage/connections/<int:pk>/grants/<int:grant_pk>/revoke/",
        manage.grant_revoke,
        name="grant_revoke",
    ),
    path("manage/guardrails/", manage.guardrail_list, name="guardrail_list"),
    path("manage/guardrails/new/", manage.guardrail_edit, name="guardrail_create"),
    path("manage/guardrails/<int:pk>/", manage.guardrail_edit, name="guardrail_edit"),
    path("manage/guardrails/new/try/", manage.guardrail_try, name="guardrail_try"),
    path("manage/guardrails/<int:pk>/try/", manage.guardrail_try, name="guardrail_edit_try"),
    path("manage/guardrails/<int:pk>/delete/", manage.guardrail_delete, name="guardrail_delete"),
    path("manage/users/", users.user_list, name="user_list"),
    path("manage/users/new/", users.user_create, name="user_create"),
    path("manage/users/<int:pk>/", users.user_detail, name="user_detail"),
    path("manage/users/<int:pk>/roles/", users.user_roles, name="user_roles"),
    path("manage/users/<int:pk>/deactivate/", users.user_deactivate, name="user_deactivate"),
    path("manage/users/<int:pk>/reactivate/", users.user_reactivate, name="user_reactivate"),
    path(
        "manage/users/<int:pk>/password-link/",
        users.user_password_link,
        name="user_password_link",
    ),
    path("manage/catalog/", catalog.catalog_overview, name="catalog_overview"),
    path("manage/catalog/rules/", catalog.masking_rule, name="masking_rule"),
    path("manage/catalog/<int:pk>/", catalog.catalog_connection, name="catalog_connection"),
    path("manage/catalog/<int:pk>/discover/", catalog.catalog_discover, name="catalog_discover"),
    path("manage/catalog/columns/<int:pk>/", catalog.column_review, name="column_review"),
    path(
        "manage/catalog/columns/<int:pk>/exemptions/",
        catalog.exemption_create,
        name="exemption_create",
    ),
    path(
        "manage/catalog/exemptions/<int:pk>/revoke/",
        catalog.exemption_revoke,
        name="exemption_revoke",
    ),
    path("manage/catalog/tables/<int:pk>/label/", catalog.table_label, name="table_label"),
    path("agents/", agents.agent_list, name="agent_list"),
    path("agents/new/", agents.agent_new, name="agent_new"),
    path("agents/tokens/<int:pk>/revoke/", agents.token_stop, name="token_revoke"),
    path("agents/<str:name>/", agents.agent_detail, name="agent_detail"),
    path("agents/<str:name>/token/", agents.agent_token, name="agent_token"),
    path("agents/<str:name>/revoke/", agents.agent_stop, name="agent_revoke"),
    path("tokens/", agents.my_tokens, name="my_tokens"),
    path("audit/", audit.audit_events, name="audit_events"),
    path("audit/<int:pk>/", audit.audit_event, name="audit_event"),
    path("audit/columns/", audit.access_overview, name="access_overview"),
    path("audit/evidence/", include("evidence.urls")),
    path(
        "audit/columns/<name:connection>/<name:table>/<name:column>/",
        audit.access_column,
        name="access_column",
    ),
    path("audit/people/<int:actor_id>/", audit.access_person, name="access_person"),
    re_path(r"^audit/export\.(?P<fmt>csv|jsonl|ocsf)$", audit.audit_export, name="audit_export"),
    path("approvals/", include("approvals.urls")),
    path("accounts/", include("allauth.urls")),
    path("django-admin/", admin.site.urls),
    path("api/v1/", api_v1.urls),
    path("mcp", mcp_endpoint, name="mcp"),
    path("metrics", ops.metrics, name="metrics"),
    path("activity/", ops.activity, name="activity"),
    *(
        [
            path("api/v1/_bench_floor", bench_floor.floor),
            path("api/v1/_bench_design_floor", bench_floor.design_floor),
        ]
        if settings.WARDEN_BENCH_FLOOR_DSN
        else []
    ),
]
