"""A stand-in for the Hugging Face Hub on 127.0.0.1: serves local folders as model repos.

It speaks the parts of the Hub's HTTP API that huggingface_hub uses to snapshot a repo and read
safetensors headers (model info, file tree, HEAD/GET of resolve URLs with ranges), so the real
client runs against it unchanged. Repos may require a token.

For publishing it also takes writes, as huggingface_hub 2.x sends them: whoami-v2, repo
creation, the preupload check (upload mode and remote oid per file), the Git LFS batch API with
basic PUT uploads and verify, the ndjson commit endpoint with `create_pr=1` (a new pull request
and its `refs/pr/N`) or onto `refs/pr/N`, and the discussions listing. Writes need a token
registered with `add_user`; opening a pull request needs only a valid token, committing to main
needs the repo's namespace. huggingface_hub's Xet transfer (hf_xet's own protocol) is not stood
in: tests set HF_HUB_DISABLE_XET=1 so file contents travel over the LFS API. `fail()` scripts
faults (rate limits, auth failures) for the next matching requests.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".ckpt")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubStandIn:
    def __init__(self) -> None:
        self.repos: dict[str, Path] = {}
        self.tokens: dict[str, str] = {}  # repo id -> required token
        self.requests: list[dict] = []  # method, path, auth, range, query, body (JSON or ndjson records)
        self.users: dict[str, str] = {}  # token -> user name (writes)
        self.lfs: dict[str, bytes] = {}  # sha256 -> uploaded content
        self.pull_requests: dict[str, list[dict]] = {}  # repo id -> [{num, title, author, status, files}]
        self.commits: list[dict] = []  # repo, revision, create_pr, summary, operations
        self.faults: list[dict] = []
        self._created = Path(tempfile.mkdtemp(prefix="hub-standin-"))
        self._shas = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_repo(self, repo_id: str, folder: Path, token: str | None = None) -> None:
        self.repos[repo_id] = folder
        if token:
            self.tokens[repo_id] = token

    def add_user(self, name: str, token: str) -> None:
        self.users[token] = name

    def fail(self, method: str, path: str, status: int, headers: dict | None = None, body: dict | None = None,
             times: int = 1) -> None:
        """The next `times` requests matching METHOD and the path regex get this answer instead."""
        self.faults.append({"method": method, "path": re.compile(path), "status": status, "headers": headers or {},
                            "body": body or {"error": f"stand-in fault {status}"}, "times": times})

    def files_at(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of a repo at main or at refs/pr/N (as the pull request's commits left them)."""
        if revision.startswith("refs/pr/"):
            num = int(revision.rsplit("/", 1)[1])
            return dict(next(pr for pr in self.pull_requests.get(repo_id, []) if pr["num"] == num)["files"])
        root = self.repos[repo_id]
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and "__pycache__" not in p.parts}

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
                url = urlparse(self.path)
                path = unquote(url.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                record = {"method": self.command, "path": path, "auth": self.headers.get("Authorization"),
                          "range": self.headers.get("Range"), "query": parse_qs(url.query), "raw": raw}
                hub.requests.append(record)
                for fault in hub.faults:
                    if fault["times"] > 0 and fault["method"] == self.command and fault["path"].fullmatch(path):
                        fault["times"] -= 1
                        return self._send(fault["status"], json.dumps(fault["body"]).encode(),
                                          {"Content-Type": "application/json", **fault["headers"]})
                if self.command in ("POST", "PUT"):
                    return self._write(path, record["query"], raw)
                if path == "/api/whoami-v2":
                    return self._whoami()
                m = re.match(r"^/api/models/(?P<repo>[^/]+/[^/]+)/discussions$", path)
                if m:
                    return self._discussions(m["repo"], record["query"])
                m = re.match(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>.+?))?/?$", path)
                if m:
                    return self._model_info(m["repo"])
                m = re.match(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>refs/pr/\d+|[^/]+)(?:/(?P<sub>.*))?$", path)
                if m:
                    return self._tree(m["repo"], m["rev"], m["sub"] or "")
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

            def _tree(self, repo_id: str, rev: str, sub: str):
                if not self._repo_or_error(repo_id):
                    return
                entries = []
                for rel, data in sorted(hub.files_at(repo_id, rev if rev.startswith("refs/pr/") else "main").items()):
                    if sub and not rel.startswith(sub.rstrip("/") + "/"):
                        continue
                    entries.append({"type": "file", "oid": hashlib.sha1(data).hexdigest(), "size": len(data), "path": rel})
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

            # writes -------------------------------------------------------------------------
            def _user(self) -> str | None:
                auth = self.headers.get("Authorization") or ""
                return hub.users.get(auth.removeprefix("Bearer ").strip()) if auth.startswith("Bearer ") else None

            def _need_user(self) -> str | None:
                user = self._user()
                if user is None:
                    self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
                return user

            def _whoami(self):
                user = self._need_user()
                if user:
                    self._json({"type": "user", "name": user, "fullname": user, "orgs": [],
                                "auth": {"type": "access_token", "accessToken": {"displayName": "stand-in", "role": "write"}}})

            def _write(self, path: str, query: dict, raw: bytes):
                m = re.match(r"^/api/repos/create$", path)
                if m:
                    return self._create_repo(json.loads(raw or b"{}"))
                m = re.match(r"^/api/models/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>.+)$", path)
                if m:
                    return self._preupload(m["repo"], unquote(m["rev"]), json.loads(raw or b"{}"))
                m = re.match(r"^/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch$", path)
                if m:
                    return self._lfs_batch(m["repo"], json.loads(raw or b"{}"))
                m = re.match(r"^/lfs-upload/(?P<oid>[0-9a-f]{64})$", path)
                if m:
                    return self._lfs_put(m["oid"], raw)
                if path == "/lfs-verify":
                    body = json.loads(raw or b"{}")
                    return self._json({}) if body.get("oid") in hub.lfs else self._error(404, "EntryNotFound", "object not uploaded")
                m = re.match(r"^/api/models/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>.+)$", path)
                if m:
                    return self._commit(m["repo"], unquote(m["rev"]), query, raw)
                self._error(404, "EntryNotFound", f"no route for POST {path}")

            def _create_repo(self, body: dict):
                user = self._need_user()
                if not user:
                    return
                namespace = body.get("organization") or user
                repo_id = f"{namespace}/{body.get('name')}"
                if namespace != user:
                    return self._error(403, "Forbidden", f"You don't have the rights to create a model under the namespace \"{namespace}\"")
                if repo_id in hub.repos:
                    return self._send(409, json.dumps({"error": "You already created this model repo", "url": f"{hub.url}/{repo_id}"}).encode(),
                                      {"Content-Type": "application/json"})
                folder = hub._created / repo_id.replace("/", "--")
                folder.mkdir(parents=True)
                hub.repos[repo_id] = folder
                self._json({"url": f"{hub.url}/{repo_id}", "name": repo_id, "id": f"stand-in-{len(hub.repos)}"})

            def _writable(self, repo_id: str, revision: str, create_pr: bool) -> str | None:
                """The user, if they may write there; else answers the error and returns None."""
                user = self._need_user()
                if not user:
                    return None
                if repo_id not in hub.repos:
                    self._error(404, "RepoNotFound", "Repository not found")
                    return None
                owner = repo_id.split("/")[0] == user
                pr = revision.startswith("refs/pr/") and any(
                    p["num"] == int(revision.rsplit("/", 1)[1]) and p["author"] == user for p in hub.pull_requests.get(repo_id, []))
                if not (owner or create_pr or pr):
                    self._error(403, "Forbidden", "You don't have write access to this repo; open a pull request instead")
                    return None
                return user

            def _preupload(self, repo_id: str, revision: str, body: dict):
                if not self._writable(repo_id, revision, "create_pr" in parse_qs(urlparse(self.path).query)):
                    return
                current = hub.files_at(repo_id, revision)
                out = []
                for f in body.get("files", []):
                    lfs = f["path"].endswith(LFS_SUFFIXES) or f.get("size", 0) > 10 * 1024 * 1024
                    have = current.get(f["path"])
                    oid = None if have is None else (hashlib.sha256(have).hexdigest() if lfs else git_blob_sha1(have))
                    out.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
                self._json({"files": out, "commitOid": COMMIT})

            def _lfs_batch(self, repo_id: str, body: dict):
                if not self._user():
                    return self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
                objects = []
                for obj in body.get("objects", []):
                    entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                    if obj["oid"] not in hub.lfs:
                        entry["actions"] = {"upload": {"href": f"{hub.url}/lfs-upload/{obj['oid']}"},
                                            "verify": {"href": f"{hub.url}/lfs-verify"}}
                    objects.append(entry)
                self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                           {"Content-Type": "application/vnd.git-lfs+json"})

            def _lfs_put(self, oid: str, raw: bytes):
                if hashlib.sha256(raw).hexdigest() != oid:
                    return self._error(400, "BadRequest", "content does not match its oid")
                hub.lfs[oid] = raw
                self._json({})

            def _commit(self, repo_id: str, revision: str, query: dict, raw: bytes):
                create_pr = query.get("create_pr") == ["1"]
                user = self._writable(repo_id, revision, create_pr)
                if not user:
                    return
                records = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
                header = next((r["value"] for r in records if r["key"] == "header"), None)
                if not header or not header.get("summary"):
                    return self._error(400, "BadRequest", "missing commit header")
                files = hub.files_at(repo_id, revision if revision.startswith("refs/pr/") else "main")
                for r in records:
                    value = r["value"]
                    if r["key"] == "file":
                        files[value["path"]] = base64.b64decode(value["content"])
                    elif r["key"] == "lfsFile":
                        if value["oid"] not in hub.lfs:
                            return self._error(422, "BadRequest", f"LFS object {value['oid']} was never uploaded")
                        files[value["path"]] = hub.lfs[value["oid"]]
                    elif r["key"] == "deletedFile":
                        files.pop(value["path"], None)
                sha = hashlib.sha1(b"commit %d" % next(hub._shas)).hexdigest()
                hub.commits.append({"repo": repo_id, "revision": revision, "create_pr": create_pr, "user": user,
                                    "summary": header["summary"], "description": header.get("description", ""),
                                    "operations": [r for r in records if r["key"] != "header"]})
                reply = {"commitOid": sha, "commitUrl": f"{hub.url}/{repo_id}/commit/{sha}", "success": True}
                if create_pr:
                    prs = hub.pull_requests.setdefault(repo_id, [])
                    num = len(prs) + 1
                    prs.append({"num": num, "title": header["summary"], "author": user, "status": "open", "files": files,
                                "createdAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())})
                    reply["pullRequestUrl"] = f"{hub.url}/{repo_id}/discussions/{num}"
                elif revision.startswith("refs/pr/"):
                    num = int(revision.rsplit("/", 1)[1])
                    next(p for p in hub.pull_requests[repo_id] if p["num"] == num)["files"] = files
                else:
                    root = hub.repos[repo_id]
                    for rel, data in files.items():
                        (root / rel).parent.mkdir(parents=True, exist_ok=True)
                        (root / rel).write_bytes(data)
                self._json(reply)

            def _discussions(self, repo_id: str, query: dict):
                if repo_id not in hub.repos:
                    return self._error(404, "RepoNotFound", "Repository not found")
                found = [p for p in hub.pull_requests.get(repo_id, [])
                         if query.get("status", ["all"])[0] in ("all", p["status"])
                         and ("author" not in query or query["author"][0] == p["author"])]
                page = [{"num": p["num"], "title": p["title"], "author": {"name": p["author"]}, "createdAt": p["createdAt"],
                         "status": p["status"], "repo": {"name": repo_id, "type": "model"}, "isPullRequest": True,
                         "pinned": False, "numComments": 1, "topReactions": []} for p in found]
                self._json({"discussions": page, "count": len(page), "start": 0, "numClosedDiscussions": 0})

            def do_POST(self):
                self._route(head=False)

            def do_PUT(self):
                self._route(head=False)

            def do_GET(self):
                self._route(head=False)

            def do_HEAD(self):
                self._route(head=True)

        return Handler
