"""analyze: find the reference nn.Module classes and the top-level model, read its config,
check that the reference imports, builds and matches its weights (sandboxed), and work out
seeded test inputs for its forward."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from agent.errors import IntegrateError
from agent.run_state import Run
from agent.sandboxed import run_job
from sandbox.loading import CONFIG_OBJECT_KEY, TUPLE_ARGS_KEY, module_name_for

TORCH_MODULE_BASES = {"Module", "Sequential", "ModuleList", "ModuleDict"}
IGNORED_CONFIG_KEYS = {"architectures", "model_type", "_name_or_path", "torch_dtype", "transformers_version", "_class_name", "_diffusers_version"}

# A constructor that takes its whole configuration as one object under one of these names.
CONFIG_OBJECT_NAMES = {"config", "cfg", "conf", "args", "hparams", "params", "opt", "opts", "hps", "model_config"}

IMAGE_ARGS = {"x", "img", "image", "images", "latents", "latent", "sample", "hidden_states", "z", "x_t", "xt", "noisy"}
TIME_ARGS = {"t", "timestep", "timesteps", "time", "times", "sigma", "sigmas", "noise_level"}
LABEL_ARGS = {"y", "class_labels", "labels", "class_label", "label", "cls"}
CONTEXT_ARGS = {"context", "encoder_hidden_states", "cond", "text_emb", "text_embeds", "txt"}


def analyze(run: Run) -> dict[str, Any]:
    resolved = run.result("resolve")
    snapshot = Path(resolved["snapshot"])
    config = json.loads((snapshot / resolved["config_file"]).read_text())

    classes = _module_classes(snapshot, resolved["code_files"])
    if not classes:
        raise IntegrateError("no torch.nn.Module subclass found in the reference code")
    top = _pick_top_class(classes, config)
    init_args = top["init_args"]
    missing = [a["name"] for a in init_args if a["required"] and a["name"] not in config]
    config_object = _config_object(init_args, missing, config)
    if missing and not config_object:
        raise IntegrateError(f"{top['name']}.__init__ needs {', '.join(missing)} but config.json does not set them")
    if config_object:
        # The port takes every config key as a named argument; the reference gets the object.
        kwargs = {k: config[k] for k in config_object["keys"]}
        port_init_args = [{"name": k, "required": False, "default": config[k]} for k in config_object["keys"]]
    else:
        kwargs = {a["name"]: config[a["name"]] for a in init_args if a["name"] in config}
        port_init_args = init_args
    tuple_args = sorted(a["name"] for a in init_args if a.get("default_is_tuple") and a["name"] in kwargs)
    ignored = sorted(k for k in config if k not in kwargs)

    probe = _probe(run, snapshot, top, kwargs, tuple_args, config_object)
    _compare_with_weights(run, probe["state_dict"])
    inputs = _input_recipe(top["name"], probe["forward"], kwargs)

    return {
        "module_classes": [{k: c[k] for k in ("name", "file", "line", "bases")} for c in classes],
        "top_class": {k: top[k] for k in ("name", "file", "line", "module")},
        "init_args": init_args,
        "port_init_args": port_init_args,
        "config_object": config_object,
        "config_kwargs": kwargs,
        "tuple_args": tuple_args,
        "ignored_config_keys": ignored,
        "forward_args": probe["forward"],
        "parameters": probe["parameters"],
        "state_dict_keys": len(probe["state_dict"]),
        "submodule_types": probe["submodules"],
        "inputs": inputs,
    }


def _module_classes(snapshot: Path, code_files: list[str]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    pending: list[dict[str, Any]] = []
    for rel in code_files:
        path = snapshot / rel
        try:
            tree = ast.parse(path.read_text(), filename=rel)
        except SyntaxError as exc:
            raise IntegrateError(f"reference code does not parse: {rel}:{exc.lineno}: {exc.msg}") from None
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                pending.append({
                    "name": node.name,
                    "file": rel,
                    "line": node.lineno,
                    "module": module_name_for(path, snapshot),
                    "bases": [ast.unparse(b) for b in node.bases],
                    "init_args": _init_args(node),
                    "uses": _called_names(node),
                })
    changed = True
    while changed:  # a class is a module if a base is torch's Module family or another module class
        changed = False
        for cls in pending:
            if cls["name"] in found:
                continue
            base_names = {b.split(".")[-1] for b in cls["bases"]}
            if base_names & TORCH_MODULE_BASES or base_names & found.keys():
                found[cls["name"]] = cls
                changed = True
    return sorted(found.values(), key=lambda c: (c["file"], c["line"]))


def _init_args(node: ast.ClassDef) -> list[dict[str, Any]]:
    init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is None:
        return []
    args = init.args.args[1:]
    defaults = [None] * (len(args) - len(init.args.defaults)) + list(init.args.defaults)
    pairs = [*zip(args, defaults, strict=True), *zip(init.args.kwonlyargs, init.args.kw_defaults, strict=True)]
    out = []
    for i, (arg, default) in enumerate(pairs):
        entry: dict[str, Any] = {"name": arg.arg, "required": default is None}
        if i >= len(args):
            entry["keyword_only"] = True
        used_as = _used_as(init, arg.arg)
        if used_as:
            entry["used_as"] = used_as
        if default is not None:
            try:
                entry["default"] = ast.literal_eval(default)
                if isinstance(entry["default"], tuple):
                    entry["default_is_tuple"] = True  # run.json will hold it as a list
            except ValueError:
                entry["default_source"] = ast.unparse(default)
        out.append(entry)
    return out


def _used_as(fn: ast.FunctionDef, name: str) -> str | None:
    """'mapping' when the body subscripts the argument (or calls .get), 'namespace' when it
    reads attributes of it."""
    mapping = namespace = False
    for node in ast.walk(fn):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == name:
            mapping = True
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == name:
            if node.attr in ("get", "items", "keys", "values"):
                mapping = True
            else:
                namespace = True
    return "mapping" if mapping else "namespace" if namespace else None


def _called_names(node: ast.ClassDef) -> set[str]:
    return {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


def _pick_top_class(classes: list[dict[str, Any]], config: dict[str, Any]) -> dict[str, Any]:
    by_name = {c["name"]: c for c in classes}
    for declared in [*config.get("architectures", []), config.get("_class_name")]:
        if declared in by_name:
            return by_name[declared]
    used = set().union(*(c["uses"] for c in classes))
    roots = [c for c in classes if c["name"] not in used] or classes
    # The model is the root whose constructor the config describes best.
    return max(roots, key=lambda c: (sum(a["name"] in config for a in c["init_args"]), len(c["init_args"])))


def _config_object(init_args: list[dict], missing: list[str], config: dict[str, Any]) -> dict[str, Any] | None:
    """The constructor takes one configuration object (dict or namespace) that config.json fills."""
    if len(missing) != 1 or missing[0] not in CONFIG_OBJECT_NAMES:
        return None
    arg = next(a for a in init_args if a["name"] == missing[0])
    keys = [k for k in config if k not in IGNORED_CONFIG_KEYS]
    bad = [k for k in keys if not k.isidentifier()]
    if bad:
        raise IntegrateError(f"config.json key {bad[0]!r} cannot become a constructor argument of the port")
    return {"param": arg["name"], "kind": arg.get("used_as") or "namespace", "keys": keys}


def _probe(
    run: Run, snapshot: Path, top: dict[str, Any], kwargs: dict[str, Any], tuple_args: list[str], config_object: dict | None
) -> dict[str, Any]:
    work = run.path("analyze")
    work.mkdir(exist_ok=True)
    payload = {**kwargs, TUPLE_ARGS_KEY: tuple_args}
    if config_object:
        payload = {CONFIG_OBJECT_KEY: {**config_object, "values": kwargs}}
    (work / "kwargs.json").write_text(json.dumps(payload))
    payload, _ = run_job(
        "probe_reference",
        [snapshot, top["module"], top["name"], work / "kwargs.json", work / "probe.json"],
        workspace=work,
        result_file=work / "probe.json",
        ro_paths=[snapshot],
        what="probing the reference model",
    )
    if not payload["ok"]:
        verb = "import" if payload["stage"] == "import" else "build"
        raise IntegrateError(f"reference code fails to {verb} {top['name']}: {payload['error']}")
    return payload


def _compare_with_weights(run: Run, state_dict: dict[str, dict]) -> None:
    inventory = json.loads(run.path("inventory.json").read_text())
    weights = {k: v for tensors in inventory.values() for k, v in tensors.items()}
    missing = sorted(set(state_dict) - set(weights))
    unexpected = sorted(set(weights) - set(state_dict))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} model keys absent from the weights (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} weight keys the model does not have (first: {unexpected[0]})")
        raise IntegrateError("reference weights do not fit the reference model: " + "; ".join(parts))
    for key, spec in state_dict.items():
        if list(weights[key]["shape"]) != spec["shape"]:
            raise IntegrateError(f"reference weights do not fit the reference model: {key} has shape {weights[key]['shape']}, the model expects {spec['shape']}")


def _first(config: dict[str, Any], names: tuple[str, ...], default: Any) -> Any:
    return next((config[n] for n in names if n in config), default)


def _input_recipe(cls_name: str, forward: list[dict], config: dict[str, Any]) -> list[dict[str, Any]]:
    """Seeded inputs for the forward, inferred from argument names and the config."""
    batch = 2
    channels = _first(config, ("in_channels", "in_chans", "channels", "latent_channels"), 4)
    size = _first(config, ("input_size", "sample_size", "image_size", "resolution"), 16)
    recipe = []
    for arg in forward:
        name = arg["name"]
        if arg["kind"] in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            continue
        if name in IMAGE_ARGS:
            recipe.append({"name": name, "kind": "randn", "shape": [batch, channels, size, size]})
        elif name in TIME_ARGS:
            recipe.append({"name": name, "kind": "uniform", "shape": [batch], "low": 0.0, "high": 1000.0})
        elif name in LABEL_ARGS and (arg["required"] or _first(config, ("num_classes", "n_classes"), None) is not None):
            recipe.append({"name": name, "kind": "randint", "shape": [batch], "low": 0, "high": _first(config, ("num_classes", "n_classes"), 10)})
        elif name in CONTEXT_ARGS and (arg["required"] or _first(config, ("context_dim", "cross_attention_dim", "encoder_dim", "text_dim"), None) is not None):
            dim = _first(config, ("context_dim", "cross_attention_dim", "encoder_dim", "text_dim"), None)
            if dim is None:
                raise IntegrateError(f"cannot size forward argument {name!r} of {cls_name}: no context dimension in config.json")
            recipe.append({"name": name, "kind": "randn", "shape": [batch, 8, dim]})
        elif arg["required"]:
            raise IntegrateError(f"cannot build a test input for forward argument {name!r} of {cls_name}")
    return recipe
