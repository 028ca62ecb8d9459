"""Sign-in for people only: an agent's account never opens a web session, whatever password
someone sets on it (an administrator in the Django admin, a shell), and a session it somehow
holds stops at its next request (`get_user` asks the same question)."""

from __future__ import annotations

from typing import Any

from allauth.account.auth_backends import AuthenticationBackend
from django.contrib.auth.backends import ModelBackend

from governance.models import Agent


def is_agent(user: Any) -> bool:
    return getattr(user, "pk", None) is not None and Agent.objects.filter(user_id=user.pk).exists()


class PeopleModelBackend(ModelBackend):
    def user_can_authenticate(self, user: Any) -> bool:
        return bool(super().user_can_authenticate(user)) and not is_agent(user)


class PeopleAuthenticationBackend(AuthenticationBackend):
    def user_can_authenticate(self, user: Any) -> bool:
        return bool(super().user_can_authenticate(user)) and not is_agent(user)
