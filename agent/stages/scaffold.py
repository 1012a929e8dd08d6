"""scaffold: create the workspace (new repo in --out, or a branch worktree of --target), render
the model file from templates/ (the flat file, or the model folder: agent/layouts.py), and
register the class in diffusers' `__init__` files. In a diffusers checkout the branch also gets
what diffusers' CI asks of a new model: regenerated dummy objects and an API docs page in the
table of contents (agent/diffusers_repo)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agent.diffusers_repo.branch import add_repo_files
from agent.errors import IntegrateError
from agent.layouts import FOLDER, INIT, METADATA, deepen_relative_imports, layout_of
from agent.porting.config_capture import IN_TREE_IMPORTS, STANDALONE_IMPORTS
from agent.registration import RegistrationError, register_model
from agent.render import render
from agent.run_state import Run
from agent.workspace import commit_all, create_standalone, create_worktree


def source_label(resolved: dict[str, Any]) -> str:
    """How the branch names the source: a Hub id, or a local folder by its name only (no path of
    the author's machine goes into the branch)."""
    return resolved["origin"] if resolved["kind"] == "hub" else Path(resolved["origin"]).name


def model_file(run: Run, body: str | None) -> str:
    """The model file rendered from the template: the shell (body=None) or the ported code."""
    resolved, analysis, planned = run.result("resolve"), run.result("analyze"), run.result("plan")
    init_args = [
        {**a, "default_repr": repr(a["default"]) if "default" in a else a.get("default_source", "None")}
        for a in analysis["port_init_args"]
    ]
    text = render(
        "model/transformer_flat.py.j2",
        year=time.strftime("%Y"),
        class_name=planned["class_name"],
        reference_class=planned["reference_class"],
        origin=source_label(resolved),
        body=body,
        license=planned.get("license"),
        diffusers_imports=(IN_TREE_IMPORTS if planned["layout"] == "diffusers-tree" else STANDALONE_IMPORTS).rstrip(),
        init_args=init_args,
        forward_args=[a["name"] for a in analysis["forward_args"] if a["kind"] not in ("VAR_POSITIONAL", "VAR_KEYWORD")],
    )
    # the port writes relative imports for models/<family>/<module>.py; model.py sits one folder deeper
    if layout_of(planned) == FOLDER and planned["layout"] == "diffusers-tree":
        text = deepen_relative_imports(text)
    return text


def package_files(run: Run) -> dict[str, str]:
    """The folder layout's files besides model.py ({path relative to the workspace: text}): the
    exports and, unless the checkout's ModelMixin has its own, the capability record."""
    planned = run.result("plan")
    if layout_of(planned) != FOLDER:
        return {}
    own_record = any(p.endswith(f"/{METADATA}") for p in planned["package_files"])
    common = {"year": time.strftime("%Y"), "class_name": planned["class_name"]}
    files = {f"{planned['package_dir']}/{INIT}": render("model/folder/__init__.py.j2", own_record=own_record, **common)}
    if own_record:
        origin = source_label(run.result("resolve"))
        files[f"{planned['package_dir']}/{METADATA}"] = render("model/folder/_metadata.py.j2", origin=origin, **common)
    return files


def scaffold(run: Run) -> dict[str, Any]:
    planned = run.result("plan")
    owned = run.data.setdefault("owned", {})
    if planned["layout"] == "diffusers-tree":
        target = Path(run.inputs["target"])
        workspace = run.path("workspace")
        repo = create_worktree(target, workspace, planned["branch"], owned)
        run.save()
        try:
            edited = register_model(workspace / "src", planned["module_name"], planned["class_name"], planned["family"])
        except RegistrationError as exc:
            raise IntegrateError(str(exc)) from None
        registered = [str(p.relative_to(workspace)) for p in edited]
        repo_files = add_repo_files(run, workspace)
    else:
        workspace = Path(run.inputs["out"]).resolve()
        owned["out"] = str(workspace)
        run.save()
        repo = create_standalone(workspace, run.id, run.path("out.git"))
        registered = []
        repo_files = None

    path = workspace / planned["model_path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model_file(run, body=None))
    written = package_files(run)
    for rel, text in written.items():
        (workspace / rel).write_text(text)
    what = "model folder" if written else "model file"
    what += ", exports, dummy objects and docs page" if registered else ""
    sha = commit_all(repo, f"Scaffold {planned['class_name']}: {what}")
    return {
        "workspace": str(workspace),
        "model_file": str(path),
        "model_layout": layout_of(planned),
        "package_files": [str(workspace / rel) for rel in written],
        "registered_in": registered,
        "repo_files": repo_files,
        "commit": sha,
        "branch": planned["branch"] if registered else repo.branch(),
        "git_dir": str(repo.git_dir),
    }
