"""A stand-in for the Hugging Face Hub on 127.0.0.1: serves local folders as model repos.

It speaks the parts of the Hub's HTTP API that huggingface_hub uses to snapshot a repo and read
safetensors headers (model info, file tree, HEAD/GET of resolve URLs with ranges), so the real
client runs against it unchanged. Repos may require a token.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubStandIn:
    def __init__(self) -> None:
        self.repos: dict[str, Path] = {}
        self.tokens: dict[str, str] = {}  # repo id -> required token
        self.requests: list[dict] = []  # method, path, auth, range
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_repo(self, repo_id: str, folder: Path, token: str | None = None) -> None:
        self.repos[repo_id] = folder
        if token:
            self.tokens[repo_id] = token

    def __enter__(self) -> HubStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)) if not head or "Content-Length" not in (headers or {}) else (headers or {})["Content-Length"])
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _json(self, payload, status: int = 200):
                self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

            def _error(self, status: int, code: str, message: str):
                self._send(status, json.dumps({"error": message}).encode(), {"Content-Type": "application/json", "X-Error-Code": code, "X-Error-Message": message})

            def _authorized(self, repo_id: str) -> bool:
                need = hub.tokens.get(repo_id)
                return need is None or self.headers.get("Authorization") == f"Bearer {need}"

            def _files(self, repo_id: str) -> list[Path]:
                root = hub.repos[repo_id]
                return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)

            def _route(self, head: bool):
                path = unquote(urlparse(self.path).path)
                hub.requests.append({"method": self.command, "path": path, "auth": self.headers.get("Authorization"), "range": self.headers.get("Range")})
                m = re.match(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?/?$", path)
                if m:
                    return self._model_info(m["repo"])
                m = re.match(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?$", path)
                if m:
                    return self._tree(m["repo"], m["sub"] or "")
                m = re.match(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$", path)
                if m:
                    return self._resolve(m["repo"], m["file"], head)
                self._error(404, "EntryNotFound", f"no route for {path}")

            def _repo_or_error(self, repo_id: str) -> bool:
                if repo_id not in hub.repos or not self._authorized(repo_id):
                    self._error(401 if repo_id in hub.repos else 404, "RepoNotFound", "Repository not found")
                    return False
                return True

            def _model_info(self, repo_id: str):
                if not self._repo_or_error(repo_id):
                    return
                root = hub.repos[repo_id]
                siblings = [{"rfilename": str(p.relative_to(root))} for p in self._files(repo_id)]
                self._json({"_id": "stand-in", "id": repo_id, "modelId": repo_id, "sha": COMMIT, "private": repo_id in hub.tokens, "siblings": siblings, "tags": [], "downloads": 0, "likes": 0})

            def _tree(self, repo_id: str, sub: str):
                if not self._repo_or_error(repo_id):
                    return
                root = hub.repos[repo_id]
                entries = []
                for p in self._files(repo_id):
                    rel = str(p.relative_to(root))
                    if sub and not rel.startswith(sub.rstrip("/") + "/"):
                        continue
                    entries.append({"type": "file", "oid": hashlib.sha1(p.read_bytes()).hexdigest(), "size": p.stat().st_size, "path": rel})
                self._json(entries)

            def _resolve(self, repo_id: str, filename: str, head: bool):
                if not self._repo_or_error(repo_id):
                    return
                target = hub.repos[repo_id] / filename
                if not target.is_file():
                    self._error(404, "EntryNotFound", f"{filename} not found")
                    return
                data = target.read_bytes()
                etag = '"' + hashlib.sha256(data).hexdigest() + '"'
                headers = {"X-Repo-Commit": COMMIT, "ETag": etag, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
                rng = self.headers.get("Range")
                status, body = 200, data
                if rng:
                    m = re.match(r"bytes=(\d+)-(\d*)", rng)
                    start = int(m[1])
                    end = min(int(m[2]) if m[2] else len(data) - 1, len(data) - 1)
                    body = data[start:end + 1]
                    status = 206
                    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                if head:
                    headers["Content-Length"] = str(len(data))
                    self._send(status, b"", headers, head=True)
                else:
                    self._send(status, body, headers)

            def do_GET(self):
                self._route(head=False)

            def do_HEAD(self):
                self._route(head=True)

        return Handler
