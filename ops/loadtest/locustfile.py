"""Locust users for `manage.py loadtest`: people submitting from the web editor, agents through
the API. Each submission is one governed statement; the command compares what Locust sent with
the runs and audit events Warden recorded.

Credentials come from the JSON file named by WARDEN_LOAD_CREDENTIALS (written by the command):
signed-in web sessions and agent tokens, one per simulated user.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading

from locust import HttpUser, between, task

CREDENTIALS = json.loads(open(os.environ["WARDEN_LOAD_CREDENTIALS"]).read())  # noqa: SIM115
CONNECTION = CREDENTIALS["connection"]
_sessions = itertools.cycle(CREDENTIALS["sessions"])
_tokens = itertools.cycle(CREDENTIALS["tokens"])
_lock = threading.Lock()


def _statement() -> str:
    """A point read that reaches a masked column, as most governed reads do."""
    return f"SELECT id, email, city FROM customers WHERE id = {random.randint(1, 1000)}"


class EditorUser(HttpUser):
    weight = 1
    wait_time = between(0.2, 0.6)

    def on_start(self) -> None:
        with _lock:
            session = next(_sessions)
        self.client.cookies.set("sessionid", session)
        self.client.get("/editor/", name="editor page")
        self.csrf = self.client.cookies.get("csrftoken", "")

    @task
    def submit(self) -> None:
        with self.client.post(
            "/runs/",
            data={"connection": CONNECTION, "sql": _statement(), "csrfmiddlewaretoken": self.csrf},
            headers={"Referer": f"{self.host}/editor/"},
            allow_redirects=False,
            name="web submit",
            catch_response=True,
        ) as response:
            if response.status_code == 302 and "run=" in response.headers.get("Location", ""):
                response.success()
            else:
                response.failure(f"status {response.status_code}")


class ApiUser(HttpUser):
    weight = 1
    wait_time = between(0.2, 0.6)

    def on_start(self) -> None:
        with _lock:
            self.token = next(_tokens)

    @task
    def submit(self) -> None:
        with self.client.post(
            "/api/v1/queries",
            json={"connection": CONNECTION, "sql": _statement()},
            headers={"Authorization": f"Bearer {self.token}"},
            name="api submit",
            catch_response=True,
        ) as response:
            if response.status_code in (200, 202) and response.json().get("run"):
                response.success()
            else:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
