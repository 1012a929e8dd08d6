"""Who we are on GitHub: a token from the environment, or a GitHub App installation.

A personal or Actions token comes from GITHUB_TOKEN. An App (the bot's self-hosted deployment)
authenticates with GITHUB_APP_ID and its private key (GITHUB_APP_PRIVATE_KEY, the PEM text, or
GITHUB_APP_PRIVATE_KEY_FILE): PyGithub signs a short JWT with the key, trades it for an
installation token (GITHUB_APP_INSTALLATION_ID, or the installation on the target repository,
looked up with the JWT) and asks for a new one 20 s before the old one expires. The same object
hands git its current token for a push, so a long job never pushes with an expired one.

Nothing here is written anywhere: the values live in this process only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from github import Auth, GithubIntegration

from agent.errors import IntegrateError

DEFAULT_API_URL = "https://api.github.com"
NEEDS = "set GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY (or GITHUB_APP_PRIVATE_KEY_FILE)"


def api_url_from_env(env: Mapping[str, str] = os.environ) -> str:
    """GITHUB_API_URL, as GitHub Actions sets it (GitHub Enterprise Server too), else github.com."""
    return (env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")


@dataclass(frozen=True)
class AppCredentials:
    app_id: str
    private_key: str
    installation_id: int | None = None

    def app_auth(self) -> Auth.AppAuth:
        return Auth.AppAuth(self.app_id, self.private_key)

    def installation_auth(self, api_url: str, repo: str | None) -> Auth.AppInstallationAuth:
        """Auth for the installation: the configured id, else the one installed on `repo`."""
        installation_id = self.installation_id
        if installation_id is None:
            if not repo:
                raise IntegrateError("GitHub App: set GITHUB_APP_INSTALLATION_ID (no repository to look the installation up on)")
            from agent.publish.github import github_errors  # one error wording for every call

            with github_errors(f"find the GitHub App's installation on {repo}"):
                integration = GithubIntegration(auth=self.app_auth(), base_url=api_url)
                owner, name = repo.split("/", 1)
                installation_id = integration.get_repo_installation(owner, name).id
        return self.app_auth().get_installation_auth(int(installation_id))


def app_credentials_from_env(env: Mapping[str, str] = os.environ) -> AppCredentials | None:
    app_id = env.get("GITHUB_APP_ID", "").strip()
    if not app_id:
        return None
    key = env.get("GITHUB_APP_PRIVATE_KEY", "")
    key_file = env.get("GITHUB_APP_PRIVATE_KEY_FILE", "")
    if not key and key_file:
        try:
            key = Path(key_file).read_text()
        except OSError as exc:
            raise IntegrateError(f"GITHUB_APP_PRIVATE_KEY_FILE: cannot read {key_file}: {exc.strerror}") from None
    if "PRIVATE KEY" not in key:
        raise IntegrateError("GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY(_FILE) holds no PEM private key")
    installation = env.get("GITHUB_APP_INSTALLATION_ID", "").strip()
    if installation and not installation.isdigit():
        raise IntegrateError(f"GITHUB_APP_INSTALLATION_ID must be a number, not {installation!r}")
    return AppCredentials(app_id, key, int(installation) if installation else None)


def auth_from_env(repo: str | None = None, env: Mapping[str, str] = os.environ, api_url: str | None = None) -> Auth.Auth:
    """The credentials to use, from the environment: a GitHub App when GITHUB_APP_ID is set
    (it outranks a GITHUB_TOKEN that Actions may also provide), else GITHUB_TOKEN."""
    app = app_credentials_from_env(env)
    if app is not None:
        return app.installation_auth(api_url or api_url_from_env(env), repo)
    token = env.get("GITHUB_TOKEN", "").strip()
    if token:
        return Auth.Token(token)
    raise IntegrateError(f"--publish github: no GitHub credentials: {NEEDS}")
