"""plan: decide names, layout, files and tolerances, and write plan.md."""

from __future__ import annotations

import re
from typing import Any

from agent.render import render
from agent.run_state import Run, slugify
from agent.skills import load_skills

# The structural port moves code without touching numerics, so it is held to 1e-5 at fp32,
# tighter than the engine's default preset.
STRUCTURAL_TOLERANCE = {"max_abs": 1e-5, "cosine": 0.99999}


def snake_case(name: str) -> str:
    """TinyDiT -> tiny_dit, UNet2D -> unet2d, PixArtAlpha -> pix_art_alpha."""
    tokens = re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z]*|[a-z]+|\d+", name)
    words: list[str] = []
    for tok in tokens:
        if words and (len(tok) == 1 and tok.isupper() or tok.isdigit()):
            words[-1] += tok  # a lone capital or a number belongs to the word before it
        elif words and len(words[-1]) == 1 and words[-1].isupper():
            words[-1] += tok
        else:
            words.append(tok)
    return "_".join(w.lower() for w in words)


def camel_case(slug: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", slug) if part)


def _exists_in_diffusers(name: str) -> bool:
    import diffusers

    return name in getattr(diffusers, "_import_structure", {}).get("models", []) or hasattr(diffusers, name)


def diffusers_class_name(reference_class: str, analysis: dict[str, Any], source_name: str) -> tuple[str, str]:
    """(class name, model family): UNets are `<Name>2DModel` under models/unets, transformers
    `<Name>Transformer2DModel` under models/transformers. A name diffusers already has is
    replaced by one built from the source's name."""
    image_input = any(len(i["shape"]) == 4 for i in analysis["inputs"])
    if "unet" in reference_class.lower():
        family, suffix = "unets", "2DModel" if image_input else "Model"
        base = re.sub(r"(Model|Net|Network)$", "", reference_class) if not reference_class.lower().endswith("unet") else reference_class
    else:
        base = re.sub(r"(Model|Net|Network)$", "", reference_class) or reference_class
        attention = any("attention" in t.lower() or "attn" in t.lower() for t in analysis["submodule_types"])
        if attention or "dit" in base.lower() or "transformer" in base.lower():
            family, suffix = "transformers", "Transformer2DModel" if image_input else "TransformerModel"
            base = re.sub(r"Transformer$", "", base)
        else:
            family, suffix = "transformers", "Model"
    name = f"{base}{suffix}"
    if _exists_in_diffusers(name) or _exists_in_diffusers(base):
        name = f"{camel_case(source_name)}{suffix}"
    return name, family


def plan(run: Run) -> dict[str, Any]:
    resolved, analysis = run.result("resolve"), run.result("analyze")
    reference_class = analysis["top_class"]["name"]
    source_name = slugify(resolved["origin"])
    class_name, family = diffusers_class_name(reference_class, analysis, source_name)
    short = snake_case(re.sub(r"(Transformer2DModel|TransformerModel|2DModel|Model)$", "", class_name))
    if family == "unets":
        module_name = f"unet_{short.removeprefix('unet_').removesuffix('_unet') or 'model'}"
    else:
        module_name = f"transformer_{short}" if "Transformer" in class_name else short
    target = run.inputs.get("target")
    if target:
        layout = "diffusers-tree"
        model_path = f"src/diffusers/models/{family}/{module_name}.py"
        test_path = f"tests/models/{family}/test_models_{module_name}.py"
    else:
        layout = "standalone"
        model_path = f"{module_name}.py"
        test_path = f"test_{module_name}.py"
    files = [model_path, test_path, "parity_spec.py", "PR.md"]
    if target:
        files += [
            "src/diffusers/__init__.py",
            "src/diffusers/models/__init__.py",
            f"src/diffusers/models/{family}/__init__.py",
        ]
    else:
        files += ["weights/config.json", "weights/diffusion_pytorch_model.safetensors"]

    result = {
        "reference_class": reference_class,
        "class_name": class_name,
        "family": family,
        "module_name": module_name,
        "layout": layout,
        "model_path": model_path,
        "test_path": test_path,
        "files": files,
        "tolerance": STRUCTURAL_TOLERANCE,
        "branch": f"integrate/{short.replace('_', '-')}",
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
        config_args=list(analysis["config_kwargs"]),
        ignored_config_keys=analysis["ignored_config_keys"],
        inputs=analysis["inputs"],
        device=run.inputs.get("device", "cpu"),
        target=target,
        **result,
    ))
    result["plan"] = "plan.md"
    skills = load_skills(target)
    result["skills"] = {name: skill.source for name, skill in skills.items()}
    return result
