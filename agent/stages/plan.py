"""plan: decide names, layout, files and tolerances, and write plan.md."""

from __future__ import annotations

import re
from typing import Any

from agent.render import render
from agent.run_state import Run

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


def diffusers_class_name(reference_class: str, analysis: dict[str, Any]) -> str:
    base = re.sub(r"(Model|Net|Network)$", "", reference_class) or reference_class
    image_input = any(len(i["shape"]) == 4 for i in analysis["inputs"])
    attention = any("attention" in t.lower() or "attn" in t.lower() for t in analysis["submodule_types"])
    if attention or "dit" in base.lower() or "transformer" in base.lower():
        base = re.sub(r"Transformer$", "", base)
        return f"{base}Transformer2DModel" if image_input else f"{base}TransformerModel"
    return f"{base}Model"


def plan(run: Run) -> dict[str, Any]:
    resolved, analysis = run.result("resolve"), run.result("analyze")
    reference_class = analysis["top_class"]["name"]
    class_name = diffusers_class_name(reference_class, analysis)
    short = snake_case(re.sub(r"(Transformer2DModel|TransformerModel|Model)$", "", class_name))
    module_name = f"transformer_{short}" if "Transformer" in class_name else short
    target = run.inputs.get("target")
    if target:
        layout = "diffusers-tree"
        model_path = f"src/diffusers/models/transformers/{module_name}.py"
        test_path = f"tests/models/transformers/test_models_{module_name}.py"
    else:
        layout = "standalone"
        model_path = f"{module_name}.py"
        test_path = f"test_{module_name}.py"
    files = [model_path, test_path, "parity_spec.py", "PR.md"]
    if target:
        files += [
            "src/diffusers/__init__.py",
            "src/diffusers/models/__init__.py",
            "src/diffusers/models/transformers/__init__.py",
        ]
    else:
        files += ["weights/config.json", "weights/diffusion_pytorch_model.safetensors"]

    result = {
        "reference_class": reference_class,
        "class_name": class_name,
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
    return result
