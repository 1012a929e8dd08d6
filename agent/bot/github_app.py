"""GitHub clients for the bot, one per App installation, on the publish client.

The server and the workers authenticate as the GitHub App (GITHUB_APP_ID and its private key,
read by agent/publish/github_auth.py): each webhook names the installation it came from, and
PyGithub trades a short JWT for that installation's token and renews it before it expires.
Without an App (the Actions deployment, or a quick trial) GITHUB_TOKEN is used instead.

The credentials stay in this process. A job's `integrate` child gets exactly the variables it
needs to publish (`child_env`), and `integrate` keeps them out of the sandbox, run.json and logs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from github import Auth

from agent.errors import IntegrateError
from agent.publish.github import GitHubClient
from agent.publish.github_auth import NEEDS, AppCredentials, api_url_from_env, app_credentials_from_env
from agent.publish.retry import RetryPolicy

CREDENTIAL_VARIABLES = ("GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_PRIVATE_KEY_FILE",
                        "GITHUB_APP_INSTALLATION_ID")


class Clients:
    def __init__(self, env: Mapping[str, str] = os.environ, pace_s: tuple[float, float] | None = None,
                 policy: RetryPolicy | None = None) -> None:
        """`pace_s`: PyGithub's spacing of requests (None: its default, GitHub's advice)."""
        self.api_url = api_url_from_env(env)
        self.app = app_credentials_from_env(env)
        self.token = (env.get("GITHUB_TOKEN") or "").strip() or None
        if self.app is None and self.token is None:
            raise IntegrateError(f"the bot has no GitHub credentials: {NEEDS}")
        self.pace_s = pace_s
        self.policy = policy
        self._cache: dict[object, GitHubClient] = {}
        self._lock = threading.Lock()

    @property
    def mode(self) -> str:
        return "app" if self.app else "token"

    def _installation(self, installation_id: int | None) -> int | None:
        return installation_id if installation_id is not None else (self.app.installation_id if self.app else None)

    def client(self, repo: str, installation_id: int | None = None) -> GitHubClient:
        """The client for a repository, as the installation the event came from."""
        inst = self._installation(installation_id)
        key = inst if self.app and inst is not None else (repo if self.app else "token")
        with self._lock:
            if key not in self._cache:
                if self.app:
                    creds = AppCredentials(self.app.app_id, self.app.private_key, inst)
                    auth: Auth.Auth = creds.installation_auth(self.api_url, repo)
                else:
                    auth = Auth.Token(self.token)
                self._cache[key] = GitHubClient(auth, self.api_url, self.policy, pace_s=self.pace_s)
            return self._cache[key]

    def child_env(self, installation_id: int | None) -> dict[str, str]:
        """What a job's `integrate --publish github` child needs to act as the same identity."""
        env = {name: "" for name in CREDENTIAL_VARIABLES}
        env["GITHUB_API_URL"] = self.api_url
        if self.app:
            env["GITHUB_APP_ID"] = self.app.app_id
            env["GITHUB_APP_PRIVATE_KEY"] = self.app.private_key
            inst = self._installation(installation_id)
            if inst is not None:
                env["GITHUB_APP_INSTALLATION_ID"] = str(inst)
        else:
            env["GITHUB_TOKEN"] = self.token or ""
        return env
