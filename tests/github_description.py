"""The part of GitHub's published REST API description the stand-in answers, as JSON Schema.

The full description (github/rest-api-description, ~13 MB) is not in the repository. A trimmed
copy, holding only the operations below and the schemas they reach, lives in the steering repo's
shared/ folder (beside the checkout); tests that validate the stand-in against it skip, and say
why, when it is absent. Regenerate it from a full description with:

    python tests/github_description.py path/to/api.github.com.json

OpenAPI 3.0 differs from JSON Schema in `nullable`; the trim rewrites it as `anyOf [..., null]`
and moves component schemas under `$defs`, so `jsonschema` validates the answers as they are.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

# (method, path template, success status) of every operation the stand-in serves
OPERATIONS = [
    ("get", "/user", "200"),
    ("get", "/repos/{owner}/{repo}", "200"),
    ("post", "/repos/{owner}/{repo}/forks", "202"),
    ("get", "/repos/{owner}/{repo}/pulls", "200"),
    ("post", "/repos/{owner}/{repo}/pulls", "201"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}", "200"),
    ("patch", "/repos/{owner}/{repo}/pulls/{pull_number}", "200"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/files", "200"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/labels", "200"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", "200"),
    ("post", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", "200"),
    ("put", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}", "200"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/comments", "200"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/comments", "200"),
    ("post", "/repos/{owner}/{repo}/pulls/{pull_number}/comments", "201"),
    ("patch", "/repos/{owner}/{repo}/pulls/comments/{comment_id}", "200"),
    ("delete", "/repos/{owner}/{repo}/pulls/comments/{comment_id}", "204"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments", "200"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments", "201"),
    ("patch", "/repos/{owner}/{repo}/issues/comments/{comment_id}", "200"),
    ("get", "/repos/{owner}/{repo}/installation", "200"),
    ("post", "/app/installations/{installation_id}/access_tokens", "201"),
]
FILE_NAME = "github-rest-trimmed.json"


def shared_dir() -> Path:
    """shared/ beside the checkout (the layout of the development machines and of CI)."""
    override = os.environ.get("INTEGRATE_SHARED_DIR")
    return Path(override) if override else Path(__file__).resolve().parent.parent.parent / "shared"


def trimmed_path() -> Path:
    return shared_dir() / "github-rest" / FILE_NAME


def load() -> dict[str, Any] | None:
    path = trimmed_path()
    return json.loads(path.read_text()) if path.is_file() else None


def _convert(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema (refs to $defs, nullable as a null alternative)."""
    if isinstance(node, list):
        return [_convert(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if k not in ("nullable", "discriminator", "example", "examples")}
    if "$ref" in out:
        out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/$defs/")
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for v in node.values():
            _refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _refs(v, found)


def trim(full: dict[str, Any]) -> dict[str, Any]:
    schemas = full["components"]["schemas"]
    operations: dict[str, Any] = {}
    wanted: set[str] = set()
    for method, path, status in OPERATIONS:
        op = full["paths"][path][method]
        response = op["responses"][status]
        if "$ref" in response:
            response = full["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        operations[f"{method.upper()} {path}"] = {"status": status, "response": schema, "request": body,
                                                   "operationId": op.get("operationId")}
        _refs(schema, wanted)
        _refs(body, wanted)
    for error in ("basic-error", "validation-error"):
        wanted.add(error)
    done: set[str] = set()
    while wanted - done:
        name = sorted(wanted - done)[0]
        done.add(name)
        _refs(schemas[name], wanted)
    return {
        "source": full["info"].get("description") or full["info"].get("title"),
        "version": full["info"].get("version"),
        "operations": {k: {**v, "response": _convert(v["response"]), "request": _convert(v["request"])}
                       for k, v in operations.items()},
        "$defs": {name: _convert(schemas[name]) for name in sorted(done)},
    }


def validator_for(trimmed: dict[str, Any], method: str, path_template: str, part: str = "response"):
    """A jsonschema validator for one operation's response (or request) body."""
    import jsonschema

    schema = trimmed["operations"][f"{method} {path_template}"][part]
    return jsonschema.Draft202012Validator({**schema, "$defs": trimmed["$defs"]})


if __name__ == "__main__":
    full = json.loads(Path(sys.argv[1]).read_text())
    out = trimmed_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(trim(full), indent=1, sort_keys=True) + "\n")
    print(f"{out}: {out.stat().st_size:,} bytes, {len(OPERATIONS)} operations")
