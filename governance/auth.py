"""allauth adapters: no self sign-up; identity-provider users get default roles."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from audit.context import acting_as
from audit.kinds import EventKind
from audit.services import event_record
from governance import crypto
from governance.roles import Refusal
from governance.signals import client_ip


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False  # local accounts are created by administrators

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        """Record refused attempts too: a throttled login never reaches the auth backends."""
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            name = str(credentials.get("username") or credentials.get("email") or "")[:150]
            event_record(
                kind=EventKind.AUTH_LOGIN_THROTTLED, actor_name=name, source_ip=client_ip(request)
            )
            raise

    def pre_login(self, request: HttpRequest, user: Any, **kwargs: Any) -> Any:
        """Every allauth sign-in (password, identity provider, a code) ends here: an agent's
        account is refused whichever way it came (see governance/backends.py)."""
        from governance.backends import is_agent

        if is_agent(user):
            raise Refusal("An agent's account cannot sign in to the web pages.")
        return super().pre_login(request, user, **kwargs)

    def reauthenticate(self, user: Any, password: str) -> bool:
        """The password asked again before a sensitive step (approving a critical statement):
        recorded either way, since it is what makes that approval count."""
        from governance.identity_events import record_identity

        confirmed = bool(super().reauthenticate(user, password))
        kind = EventKind.AUTH_REAUTHENTICATED if confirmed else EventKind.AUTH_REAUTH_FAILED
        record_identity(kind, subject=user, method="password")
        return confirmed


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: Any) -> bool:
        return True  # the identity provider decides who may sign in

    def save_user(self, request: HttpRequest, sociallogin: Any, form: Any = None) -> Any:
        """A first sign-in through the identity provider creates the account and gives it the
        default roles; the trail records both as done by that provisioning."""
        provider = str(getattr(sociallogin.account, "provider", "") or "oidc")
        with acting_as(channel="web", request=request, via=f"identity provider {provider}"):
            user = super().save_user(request, sociallogin, form)
            for name in settings.OIDC_DEFAULT_GROUPS:
                group, _ = Group.objects.get_or_create(name=name)
                user.groups.add(group)
        return user


class MFAAdapter(DefaultMFAAdapter):
    """Second-factor secrets (TOTP keys, recovery-code seeds) encrypted at rest with
    WARDEN_ENCRYPTION_KEYS, like target passwords: allauth's default keeps them in clear, so
    a read of the app database would be the second factor itself."""

    BOUND_TO = "mfa-secret"

    def encrypt(self, text: str) -> str:
        return crypto.encrypt(text, bound_to=self.BOUND_TO)

    def decrypt(self, encrypted_text: str) -> str:
        if not crypto.is_encrypted(encrypted_text):
            return encrypted_text  # enrolled before secrets were encrypted
        return crypto.decrypt(encrypted_text, bound_to=self.BOUND_TO)
