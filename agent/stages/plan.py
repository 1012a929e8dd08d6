"""plan: decide names, layout (flat file or model folder, agent/layouts.py), files, tolerances and the license header, list what the port
will depend on, and write plan.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent.layouts import AUTO, choose_layout, model_files
from agent.parity_run import port_config
from agent.porting.dependencies import port_dependencies, reference_dependencies
from agent.porting.inline import InlineError, inline_local_imports
from agent.porting.license import reference_license
from agent.porting.naming import (
    autoencoder_kind,
    data_dims,
    diffusers_exports,
    diffusers_spelling,
    snake_case,
    split_suffix,
    without_autoencoder_words,
)
from agent.render import render
from agent.run_state import Run, slugify
from agent.skills import load_skills

__all__ = ["plan", "diffusers_class_name", "snake_case", "camel_case"]

# The structural port moves code without touching numerics, so it is held to 1e-5 at fp32,
# tighter than the engine's default preset.
STRUCTURAL_TOLERANCE = {"max_abs": 1e-5, "cosine": 0.99999}

# A reference base name that is only a family word says nothing about the model: the source's
# name goes in front (`Unet3D` from video-diffusion-pytorch is not diffusers' `UNet3D...`).
GENERIC = {"unet", "dit", "transformer", "net", "model", "vit", "diffusion"}


def camel_case(slug: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", slug) if part)


def _exists_in_diffusers(name: str) -> bool:
    return name in diffusers_exports()[1]


def diffusers_class_name(reference_class: str, analysis: dict[str, Any], source_name: str, autoencoder: str | None = None) -> tuple[str, str]:
    """(class name, model family). UNets are `<Name><N>DModel` under models/unets, transformers
    `<Name>Transformer<N>DModel` under models/transformers, with N the dimensionality of the data
    the forward consumes (no N for token sequences) and diffusers' spelling of known words. A
    name diffusers already has, or a bare family word, is replaced by one built from the source.
    A model with encode/decode methods (`autoencoder`: 'kl' when it samples a diagonal Gaussian,
    else 'plain', see naming.autoencoder_kind) is `AutoencoderKL<Name>` / `Autoencoder<Name>`
    under models/autoencoders, as diffusers names its own."""
    if autoencoder:
        head = "AutoencoderKL" if autoencoder == "kl" else "Autoencoder"
        base = without_autoencoder_words(diffusers_spelling(split_suffix(reference_class)))
        if base.lower() in GENERIC or not base or _exists_in_diffusers(head + base):
            base = without_autoencoder_words(diffusers_spelling(split_suffix(camel_case(source_name)))) or "Model"
        return head + base, "autoencoders"
    dims = data_dims(analysis)
    d = f"{dims}D" if dims else ""
    base = diffusers_spelling(split_suffix(reference_class))
    attention = any("attention" in t.lower() or "attn" in t.lower() for t in analysis["submodule_types"])
    if "unet" in base.lower():
        family, suffix = "unets", f"{d}Model"
    elif attention or "dit" in base.lower() or "transformer" in base.lower():
        family, suffix = "transformers", f"Transformer{d}Model"
        base = re.sub(r"Transformer$", "", base) or base
    else:
        family, suffix = "transformers", f"{d}Model"
    name = f"{base}{suffix}"
    if base.lower() in GENERIC or _exists_in_diffusers(name) or _exists_in_diffusers(base):
        base = diffusers_spelling(split_suffix(camel_case(source_name)))
        if family == "unets" and "unet" not in base.lower():
            base += "UNet"
        if family == "transformers" and suffix.startswith("Transformer"):
            base = re.sub(r"Transformer$", "", base) or base
        name = f"{base}{suffix}"
    return name, family


def module_name_for(class_name: str, family: str, dims: int | None) -> str:
    if family == "autoencoders":
        return snake_case(class_name)  # AutoencoderKLFlux -> autoencoder_kl_flux, as diffusers' files
    if family == "unets":
        rest = re.sub(r"UNet", "", re.sub(r"([123]D)?Model$", "", class_name), count=1)
        parts = [p for p in ["unet", snake_case(rest) if rest else "", f"{dims}d" if dims else ""] if p]
        return "_".join(parts) if len(parts) > 1 else "unet_model"
    short = snake_case(re.sub(r"(Transformer)?([123]D)?Model$", "", class_name))
    return f"transformer_{short}" if "Transformer" in class_name else short


def _dependencies(snapshot: Path, analysis: dict[str, Any], code_files: list[str]) -> list[dict]:
    """What the port will import from outside torch and diffusers' own dependencies: the
    reference code the model uses, inlined the way the port will (parsing only)."""
    local = {Path(f).parts[0].removesuffix(".py") for f in code_files}
    try:
        merged = inline_local_imports(snapshot, analysis["top_class"]["file"], code_files, top=analysis["top_class"]["name"])
    except InlineError:
        return reference_dependencies(snapshot, code_files)
    return port_dependencies(merged.code, local)


def plan(run: Run) -> dict[str, Any]:
    resolved, analysis = run.result("resolve"), run.result("analyze")
    snapshot = Path(resolved["snapshot"])
    reference_class = analysis["top_class"]["name"]
    source_name = slugify(resolved["origin"])
    sources = [(snapshot / f).read_text(errors="replace") for f in analysis.get("code_files", resolved["code_files"])
               if f.endswith(".py") and (snapshot / f).is_file()]
    class_name, family = diffusers_class_name(reference_class, analysis, source_name, autoencoder_kind(sources, reference_class))
    dims = data_dims(analysis)
    flat_module = module_name_for(class_name, family, dims)
    short = flat_module.removeprefix("transformer_")
    target = run.inputs.get("target")
    checkout = Path(target) if target else None
    choice = choose_layout(run.inputs.get("layout") or AUTO, family, checkout)
    placed = model_files(choice.layout, family, flat_module, checkout)
    if target:
        layout = "diffusers-tree"
        test_path = f"tests/models/{family}/test_models_{flat_module}.py"
    else:
        layout = "standalone"
        test_path = f"test_{flat_module}.py"
    model_path = placed.model_path
    files = [model_path, *placed.package_files, test_path, "parity_spec.py", "PR.md"]
    if target:
        files += [
            "src/diffusers/__init__.py",
            "src/diffusers/models/__init__.py",
            f"src/diffusers/models/{family}/__init__.py",
        ]
    else:
        files += ["weights/config.json", "weights/diffusion_pytorch_model.safetensors"]
    code_files = analysis.get("code_files", resolved["code_files"])
    source = Path(run.inputs["source"]) if Path(run.inputs["source"]).is_dir() else None
    named = resolved["origin"] if resolved["kind"] == "hub" else Path(resolved["origin"]).name  # no local paths in the file
    license_info = reference_license(snapshot, source, analysis["top_class"]["file"], named)
    dependencies = _dependencies(snapshot, analysis, code_files)

    result = {
        "reference_class": reference_class,
        "class_name": class_name,
        "family": family,
        "data_dims": dims,
        "module_name": placed.module_name,
        "layout": layout,
        "model_layout": placed.layout,
        "layout_reason": choice.reason,
        "model_path": model_path,
        "package_dir": placed.package_dir,
        "package_files": list(placed.package_files),
        "metadata_record": placed.metadata_record,
        "test_path": test_path,
        "files": files,
        "tolerance": STRUCTURAL_TOLERANCE,
        "branch": f"integrate/{short.replace('_', '-')}",
        "license": license_info,
        "dependencies": dependencies,
    }
    run.path("plan.md").write_text(render(
        "plan.md.j2",
        origin=resolved["origin"],
        source_kind=resolved["kind"],
        revision=resolved.get("revision"),
        reference_file=analysis["top_class"]["file"],
        reference_line=analysis["top_class"]["line"],
        parameters=analysis["parameters"],
        module_classes=[c["name"] for c in analysis["module_classes"]],
        config_args=list(port_config(analysis)),
        port_renames=analysis.get("port_renames") or {},
        ignored_config_keys=analysis["ignored_config_keys"],
        passthrough=analysis.get("config_passthrough"),
        config_object=analysis.get("config_object"),
        factory=analysis.get("factory"),
        config_dataclasses=analysis.get("config_dataclasses"),
        inputs=analysis["inputs"],
        inputs_source=analysis.get("inputs_source", "worked out from the model"),
        input_decisions=analysis.get("input_decisions", []),
        device=run.inputs.get("device", "cpu"),
        target=target,
        **result,
    ))
    result["plan"] = "plan.md"
    skills = load_skills(target)
    result["skills"] = {name: skill.source for name, skill in skills.items()}
    return result
