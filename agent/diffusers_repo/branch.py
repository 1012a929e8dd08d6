"""What a new model's branch of a diffusers checkout holds besides the model file and the
`__init__` exports, so that diffusers' own CI passes on it: regenerated dummy objects, the API
docs page and its table-of-contents entry (scaffold), and the model test at diffusers' path
(verify). A piece the checkout has no place for (no docs/ folder, no tester mixins) is reported
as not present, never as done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.diffusers_repo import docs_page, dummies, toctree
from agent.diffusers_repo.model_test import (
    MixinsMissing,
    format_in_checkout,
    mixin_api,
    render_diffusers_test,
    run_diffusers_test,
)
from agent.errors import IntegrateError
from agent.layouts import model_module
from agent.run_state import Run
from sandbox import safe_files


def _source(resolved: dict[str, Any]) -> tuple[str, str | None]:
    """(name to show, link) of the source: a Hub id links to its page; a local folder is named only."""
    if resolved["kind"] == "hub":
        return resolved["origin"], f"https://huggingface.co/{resolved['origin']}"
    return Path(resolved["origin"]).name, None


def _card(resolved: dict[str, Any]) -> docs_page.CardFacts:
    if not resolved.get("model_card"):
        return docs_page.CardFacts(None, None, None)
    text = (Path(resolved["snapshot"]) / resolved["model_card"]).read_text(encoding="utf-8", errors="replace")
    return docs_page.read_card(text)


def write_docs_page(run: Run, workspace: Path) -> str | None:
    """(Re)write the API page for the model; returns its path in the checkout, None without docs/."""
    resolved, planned = run.result("resolve"), run.result("plan")
    if not (workspace / toctree.TOC).is_file():
        return None
    name, url = _source(resolved)
    model_file = workspace / planned["model_path"]
    page = docs_page.render_page(
        class_name=planned["class_name"],
        family=planned["family"],
        module_name=model_module(planned).removeprefix(f"diffusers.models.{planned['family']}."),  # outputs' autodoc path
        card=_card(resolved),
        source_name=name,
        source_url=url,
        model_source=model_file.read_text(encoding="utf-8") if model_file.is_file() else "",
    )
    rel = docs_page.page_path(planned["module_name"])
    (workspace / rel).parent.mkdir(parents=True, exist_ok=True)
    (workspace / rel).write_text(page, encoding="utf-8")
    return rel.as_posix()


def add_repo_files(run: Run, workspace: Path) -> dict[str, Any]:
    """After the exports are registered: dummies, docs page, toc entry. Returns what was written
    (paths relative to the checkout) and what the checkout has no place for."""
    planned = run.result("plan")
    src = workspace / "src"
    try:
        written = [p.relative_to(workspace).as_posix() for p in dummies.regenerate_dummies(src)]
    except dummies.DummiesError as exc:
        raise IntegrateError(f"cannot regenerate diffusers' dummy objects: {exc}") from None
    result: dict[str, Any] = {"dummies": written, "docs_page": None, "toctree": None, "not_present": []}
    page = write_docs_page(run, workspace)
    if page is None:
        result["not_present"].append(f"{toctree.TOC} (no docs page written)")
        return result
    result["docs_page"] = page
    local = page.removeprefix("docs/source/en/").removesuffix(".md")
    try:
        toctree.add_model_page(workspace, local, planned["class_name"], planned["family"])
    except toctree.TocError as exc:
        raise IntegrateError(f"cannot add the docs page to the table of contents: {exc}") from None
    result["toctree"] = toctree.TOC.as_posix()
    return result


def write_and_run_model_test(
    run: Run,
    test_file: Path,
    *,
    config: dict[str, Any],
    inputs: list[dict[str, Any]],
    reference_outputs: list[dict[str, Any]],
    seed: int,
    atol: float,
    parity_command: str,
    checkpoint_dir: Path,
    hub_checkpoint: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """verify's hook for a diffusers checkout: the model test in diffusers' form at `test_file`,
    formatted with the checkout's ruff settings, run with pytest in the sandbox against the
    converted checkpoint; the docs page is refreshed too (the final model file may define an
    output dataclass that gets its own autodoc). Returns verify's `generated_test` result."""
    planned, scaffolded = run.result("plan"), run.result("scaffold")
    workspace = Path(scaffolded["workspace"])
    try:
        api = mixin_api(workspace)
    except MixinsMissing as exc:
        return {"passed": False, "suite_passed": False, "ran": False, "parity_passed": False, "failed": [],
                "reason": str(exc), "output": "", "wall_s": 0.0}
    text = render_diffusers_test(
        class_name=planned["class_name"], api=api, config=config, inputs=inputs, reference_outputs=reference_outputs,
        seed=seed, atol=atol, parity_command=parity_command, hub_checkpoint=hub_checkpoint,
    )
    test_file.parent.mkdir(parents=True, exist_ok=True)
    safe_files.write_text(test_file.parent, test_file.name, text)
    formatting = format_in_checkout(test_file, workspace)
    write_docs_page(run, workspace)
    result = run_diffusers_test(test_file, workspace, checkpoint_dir, run.path("verify", "test"))
    return {**result, "style": api.style, "mixins": list(api.mixins), "formatting": formatting}
