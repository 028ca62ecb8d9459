"""Django admin, trimmed: models whose rows hold secrets are not shown there at all.

allauth registers its second factors (a TOTP secret in clear in the change form), identity
provider apps (a client secret) and provider tokens. Warden enrols second factors in its own
pages, configures providers from the environment and keeps no tokens, so none of the three has
a use in admin; each is only a way to read or plant a secret. Changes made anyway (a shell,
plain SQL) are found by the identity watch (audit/identity_watch.py).
"""

from __future__ import annotations

# Imported first, so allauth's registrations happen before the unregister below.
import allauth.mfa.admin
import allauth.socialaccount.admin  # noqa: F401
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialApp, SocialToken
from django.contrib import admin

for model in (Authenticator, SocialApp, SocialToken):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
