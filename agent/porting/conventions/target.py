"""What the convention codemods know about the port they rewrite (from the run's analysis and
plan), in one object so each codemod takes the same argument."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Target:
    class_name: str  # the diffusers model class in the file
    family: str = "transformers"  # "transformers", "unets" or "autoencoders" (the plan's model family)
    in_tree: bool = False  # inside a diffusers checkout (relative imports) or standalone
    depth: int = 0  # folders below models/<family>/ (1 in the model-folder layout: relative imports reach one level further)
    reference_class: str = ""
    config: dict[str, Any] = field(default_factory=dict)  # the reference config the port is built with
    inputs: list[dict[str, Any]] = field(default_factory=list)  # analysis["inputs"]: the seeded input recipe
    output_paths: list[str] = field(default_factory=list)  # measured output tree of the reference, e.g. ["output"]
    modules: list[dict[str, Any]] = field(default_factory=list)  # the built port's named modules (name, type, castable)

    @property
    def prefix(self) -> str:
        """The model's name without the family suffix: TinyDiTTransformer2DModel -> TinyDiT."""
        for suffix in ("Transformer3DModel", "Transformer2DModel", "TransformerModel", "3DModel", "2DModel", "1DModel", "Model"):
            if self.class_name.endswith(suffix) and len(self.class_name) > len(suffix):
                return self.class_name[: -len(suffix)]
        return self.class_name

    def recipe(self, name: str) -> dict[str, Any] | None:
        """How the run fed argument `name`: analyze's recipe, or, for inputs from an inputs file,
        one read off the tensor it returned (bool: a mask, integer: labels, 1-D float: times)."""
        found = next((i for i in self.inputs if i.get("name") == name), None)
        if found is not None:
            return found
        for entry in self.inputs:
            tensor = (entry.get("arguments") or {}).get(name) if entry.get("kind") == "file" else None
            if tensor and "shape" in tensor:
                dtype, shape = tensor.get("dtype", ""), list(tensor["shape"])
                kind = "mask" if dtype == "bool" else "randint" if "int" in dtype else "uniform" if len(shape) == 1 else "randn"
                return {"name": name, "kind": kind, "shape": shape}
        return None

    def relative(self, module: str) -> str:
        """A relative import written for models/<family>/<file>.py, reaching as far from the port's file."""
        return "." * self.depth + module
