from governance.models.agents import TOKEN_PREFIX, Agent, ApiToken, RunCallback
from governance.models.catalog import (
    CatalogColumn,
    CatalogTable,
    MaskingRule,
    SemanticType,
    Sensitivity,
    Source,
    Strategy,
    UnmaskExemption,
)
from governance.models.connections import AccessGrant, Capability, Connection, Environment
from governance.models.guardrails import Guardrail
from governance.models.queries import SavedQuery
from governance.models.runs import QueryRun

__all__ = [
    "TOKEN_PREFIX",
    "AccessGrant",
    "Agent",
    "ApiToken",
    "Capability",
    "CatalogColumn",
    "CatalogTable",
    "Connection",
    "Environment",
    "Guardrail",
    "MaskingRule",
    "QueryRun",
    "RunCallback",
    "SavedQuery",
    "SemanticType",
    "Sensitivity",
    "Source",
    "Strategy",
    "UnmaskExemption",
]
