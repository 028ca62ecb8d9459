from governance.models.connections import AccessGrant, Capability, Connection, Environment
from governance.models.guardrails import Guardrail
from governance.models.runs import QueryRun

__all__ = ["AccessGrant", "Capability", "Connection", "Environment", "Guardrail", "QueryRun"]
