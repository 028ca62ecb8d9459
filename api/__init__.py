"""The token API (`/api/v1/`): agents and people with a token, under the same rules as the
web editor. A channel: it calls the services, and nothing below imports it."""
