"""analyze: find the reference nn.Module classes and the top-level model, read its config,
check that the reference imports, builds and matches its weights (sandboxed), and work out the
seeded test inputs of its forward (docs/inputs.md)."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path
from typing import Any

from agent.errors import IntegrateError
from agent.input_recipe import InputsError, check_decisions, check_inputs
from agent.run_state import Run
from agent.sandboxed import run_job
from sandbox.loading import CONFIG_OBJECT_KEY, HUB_KEYS, TUPLE_ARGS_KEY, module_name_for

TORCH_MODULE_BASES = {"Module", "Sequential", "ModuleList", "ModuleDict"}
IGNORED_CONFIG_KEYS = HUB_KEYS

# A constructor that takes its whole configuration as one object under one of these names.
CONFIG_OBJECT_NAMES = {"config", "cfg", "conf", "args", "hparams", "params", "opt", "opts", "hps", "model_config"}

# The inputs file an author ships in the source folder (docs/inputs.md).
INPUTS_FILE = "integrate_inputs.py"
INPUTS_HELP = f"tell integrate with an inputs file defining inputs(seed): {INPUTS_FILE} in the source folder, or --inputs FILE (docs/inputs.md)"


def analyze(run: Run) -> dict[str, Any]:
    resolved = run.result("resolve")
    snapshot = Path(resolved["snapshot"])
    config = json.loads((snapshot / resolved["config_file"]).read_text())
    code_files = [f for f in resolved["code_files"] if Path(f).name != INPUTS_FILE]

    classes = _module_classes(snapshot, code_files)
    if not classes:
        raise IntegrateError("no torch.nn.Module subclass found in the reference code")
    top = _pick_top_class(classes, config)
    factory = config.get("_factory")
    if factory is not None and not (isinstance(factory, str) and re.fullmatch(r"[\w.]+:\w+", factory)):
        raise IntegrateError(f'config.json "_factory" must be "package.module:function", not {factory!r}')
    init_args = top["init_args"]
    passthrough = None
    config_object = None
    if factory:
        kwargs = {}
    else:
        missing = [a["name"] for a in init_args if a["required"] and a["name"] not in config]
        config_object = _config_object(init_args, missing, config)
        if missing and not config_object:
            raise IntegrateError(
                f"config.json does not set {', '.join(map(repr, missing))}, which {top['name']}.__init__ ({top['file']}:{top['line']}) "
                f"requires: add {'them' if len(missing) > 1 else 'it'} to config.json"
                + ("" if len(missing) > 1 else f' (e.g. "{missing[0]}": ...)')
                + ', or name the function that builds the model from config.json with "_factory": "module:function"'
            )
        if config_object:
            kwargs = {k: config[k] for k in config_object["keys"]}
        else:
            kwargs = {a["name"]: config[a["name"]] for a in init_args if a["name"] in config}
            if top.get("var_keyword"):
                extra = [k for k in config if k not in kwargs and k not in IGNORED_CONFIG_KEYS]
                _check_identifiers(extra)
                kwargs.update({k: config[k] for k in extra})
                if extra:
                    passthrough = {"param": top["var_keyword"], "keys": extra}
    tuple_args = sorted(a["name"] for a in init_args if a.get("default_is_tuple") and a["name"] in kwargs)

    inputs_file = _inputs_file(run, snapshot)
    probe = _probe(run, snapshot, top, kwargs, tuple_args, config_object, config, factory, inputs_file)
    _compare_with_weights(run, probe["state_dict"])
    if probe.get("built_by"):
        kwargs = probe["built_by"]["arguments"]
        tuple_args = sorted(probe["built_by"]["tuple_args"])
    ignored = sorted(k for k in config if k not in kwargs) if not factory else []
    port_renames = _shadowed_arguments(init_args, kwargs, probe.get("module_attributes", []))
    port_init_args = [{**a, "name": port_renames.get(a["name"], a["name"])}
                      for a in _port_init_args(init_args, kwargs, config_object, passthrough, factory)]
    inputs, source = _inputs(probe, inputs_file)
    run.write_json("analyze/call_sites.json", {"executed": probe.get("executed", {}), "attention_ranks": probe.get("attention_ranks", {})})

    return {
        "module_classes": [{k: c[k] for k in ("name", "file", "line", "bases")} for c in classes],
        "top_class": {k: top[k] for k in ("name", "file", "line", "module")},
        "init_args": init_args,
        "port_init_args": port_init_args,
        "config_object": config_object,
        "config_kwargs": kwargs,
        "config_passthrough": passthrough,
        "port_renames": port_renames,
        "factory": _factory_record(probe.get("built_by"), config),
        "config_dataclasses": _config_dataclasses(probe.get("built_by")),
        "tuple_args": tuple_args,
        "ignored_config_keys": ignored,
        "forward_args": probe["forward"],
        "parameters": probe["parameters"],
        "state_dict_keys": len(probe["state_dict"]),
        "submodule_types": probe["submodules"],
        "inputs": inputs,
        "inputs_source": source,
        "input_decisions": _clean_decisions(probe.get("decisions", [])),
        "output_shape": probe.get("output_shape"),
        "call_sites": "analyze/call_sites.json",
        "code_files": code_files,
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
                init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
                pending.append({
                    "name": node.name,
                    "file": rel,
                    "line": node.lineno,
                    "module": module_name_for(path, snapshot),
                    "bases": [ast.unparse(b) for b in node.bases],
                    "init_args": _init_args(node),
                    "var_keyword": init.args.kwarg.arg if init is not None and init.args.kwarg else None,
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


def _check_identifiers(keys: list[str]) -> None:
    bad = [k for k in keys if not k.isidentifier()]
    if bad:
        raise IntegrateError(f"config.json key {bad[0]!r} cannot become a constructor argument of the port: rename it to a Python identifier")


def _config_object(init_args: list[dict], missing: list[str], config: dict[str, Any]) -> dict[str, Any] | None:
    """The constructor takes one configuration object (dict or namespace) that config.json fills."""
    if len(missing) != 1 or missing[0] not in CONFIG_OBJECT_NAMES:
        return None
    arg = next(a for a in init_args if a["name"] == missing[0])
    keys = [k for k in config if k not in IGNORED_CONFIG_KEYS]
    _check_identifiers(keys)
    return {"param": arg["name"], "kind": arg.get("used_as") or "namespace", "keys": keys}


def _port_init_args(init_args, kwargs, config_object, passthrough, factory) -> list[dict]:
    """The port's constructor arguments: the reference's, with a config object or **kwargs
    flattened into one named argument per key (defaults: the config's values)."""
    if config_object:
        return [{"name": k, "required": False, "default": kwargs[k]} for k in config_object["keys"]]
    out = [dict(a) for a in init_args]
    if passthrough:
        out += [{"name": k, "required": False, "default": kwargs[k], "passthrough": passthrough["param"]} for k in passthrough["keys"]]
    if factory:
        for a in out:
            if a["name"] in kwargs:
                a.update(required=False, default=kwargs[a["name"]])
    return out


def _factory_record(built_by: dict | None, config: dict[str, Any]) -> dict | None:
    """How the factory's arguments map back to the nested config (for the plan and the PR)."""
    if not built_by:
        return None
    leaves = dict(_leaves(config))
    arguments = []
    for name, value in built_by["arguments"].items():
        paths = [p for p, v in leaves.items() if v == value and type(v) is type(value)]
        arguments.append({"name": name, "value": value, "from": paths[0] if len(paths) == 1 else None,
                          "candidates": paths if len(paths) > 1 else []})
    return {"factory": built_by["factory"], "arguments": arguments}


def _shadowed_arguments(init_args: list[dict], kwargs: dict[str, Any], attributes: list[str]) -> dict[str, str]:
    """Constructor arguments named like a submodule, parameter or buffer of the model: in a
    ModelMixin, `self.<name>` would answer the config value (ConfigMixin's keys win over what
    nn.Module keeps outside __dict__), so the port's argument gets a `_config` suffix."""
    taken = {a["name"] for a in init_args} | set(kwargs)
    renames = {}
    for a in init_args:
        if a["name"] in attributes and a["name"] in kwargs:
            new = f"{a['name']}_config"
            while new in taken:
                new += "_"
            taken.add(new)
            renames[a["name"]] = new
    return renames


def _config_dataclasses(built_by: dict | None) -> dict | None:
    """The dataclasses the factory passed (written as JSON in the config; the port rebuilds them)."""
    if not built_by or not built_by.get("dataclasses"):
        return None
    types = built_by["dataclasses"]
    return {"arguments": built_by["dataclass_args"], "classes": {n: t["module"] for n, t in types.items()},
            "not_in_entry_module": sorted(n for n, t in types.items() if not t["in_entry"])}


def _leaves(config: Any, prefix: str = ""):
    if isinstance(config, dict):
        for k, v in config.items():
            if k not in HUB_KEYS:
                yield from _leaves(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix, config


def embeddable_inputs_source(text: str, name: str) -> str:
    """An inputs file's code as the spec embeds it (inside a function): checked for what cannot be
    embedded, `from __future__` lines blanked. `integrate verify` compares a branch's embedded
    code with this function's output on the reference's own file."""
    try:
        tree = ast.parse(text, filename=name)
    except SyntaxError as exc:
        raise IntegrateError(f"inputs file {name}:{exc.lineno}: {exc.msg}") from None
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "inputs"), None)
    if fn is None or not (fn.args.args or fn.args.posonlyargs):
        raise IntegrateError(f"inputs file {name} must define inputs(seed) at its top level (docs/inputs.md)")
    lines = text.splitlines()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            for i in range(node.lineno - 1, node.end_lineno):
                lines[i] = ""  # only legal at a file's top; the file's code is embedded in a function
        elif isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            raise IntegrateError(f"inputs file {name}:{node.lineno}: `import *` cannot be embedded in the parity spec; import names explicitly")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            raise IntegrateError(f"inputs file {name}:{node.lineno}: a top-level global/nonlocal statement cannot be embedded")
    return "\n".join(lines).strip("\n") + "\n"


def _inputs_file(run: Run, snapshot: Path) -> dict | None:
    """The inputs file (--inputs wins over the source folder's), parsed here, run only sandboxed."""
    given = run.inputs.get("inputs_file")
    path, origin = (Path(given), f"--inputs {Path(given).name}") if given else (snapshot / INPUTS_FILE, f"{INPUTS_FILE} in the source folder")
    if not path.is_file():
        if given:
            raise IntegrateError(f"--inputs file not found: {given}")
        return None
    source = embeddable_inputs_source(path.read_text(), path.name)
    work = run.path("analyze")
    work.mkdir(exist_ok=True)
    copy = work / INPUTS_FILE
    shutil.copy(path, copy)
    return {"path": str(copy), "origin": origin, "source": source}


def _probe(
    run: Run, snapshot: Path, top: dict[str, Any], kwargs: dict[str, Any], tuple_args: list[str], config_object: dict | None,
    config: dict[str, Any], factory: str | None, inputs_file: dict | None,
) -> dict[str, Any]:
    work = run.path("analyze")
    work.mkdir(exist_ok=True)
    payload = {**kwargs, TUPLE_ARGS_KEY: tuple_args}
    if config_object:
        payload = {CONFIG_OBJECT_KEY: {**config_object, "values": kwargs}}
    job = {"root": str(snapshot), "module": top["module"], "class": top["name"], "kwargs": payload, "config": config,
           "factory": factory, "inputs_file": inputs_file["path"] if inputs_file else None}
    (work / "probe_job.json").write_text(json.dumps(job, indent=2))
    result, _ = run_job(
        "probe_reference",
        [work / "probe_job.json", work / "probe.json"],
        workspace=work,
        result_file=work / "probe.json",
        ro_paths=[snapshot],
        what="probing the reference model",
    )
    if not result["ok"]:
        raise IntegrateError(_probe_error(result, top, kwargs, inputs_file))
    return result


def _probe_error(result: dict, top: dict[str, Any], kwargs: dict[str, Any], inputs_file: dict | None) -> str:
    stage, error, name = result.get("stage"), result.get("error", ""), top["name"]
    if stage == "import":
        missing = re.match(r"ModuleNotFoundError: No module named '([\w.]+)'", error)
        if missing:
            return f"reference code fails to import {name}: it needs the package {missing.group(1).split('.')[0]!r}, which is not installed (install it in the environment integrate runs in: the sandbox uses the same Python)"
        return f"reference code fails to import {name}: {error}"
    if stage == "instantiate":
        unexpected = re.search(r"unexpected keyword argument '(\w+)'", error)
        if unexpected and unexpected.group(1) in kwargs:
            key = unexpected.group(1)
            return f"config.json key {key!r} is passed to {name}.__init__ (through its **kwargs), and the code it reaches does not take it ({error}): remove {key!r} from config.json"
        return f"reference code fails to build {name} from config.json: {error}"
    if stage == "inputs":
        if inputs_file:
            return f"inputs file ({inputs_file['origin']}): {error}"
        return f"cannot work out test inputs for {name}.forward: {error}; {INPUTS_HELP}"
    if stage == "forward":
        error = result.get("forward_error", error)
        if re.match(r"(ModuleNotFoundError|ImportError):", error):
            missing = re.search(r"No module named '([\w.]+)'", error)
            what = f"the package {missing.group(1).split('.')[0]!r}, which is not installed" if missing else "a package that is not installed"
            return (f"the reference forward needs {what} ({error}): install it in the environment integrate runs in "
                    "(the sandbox uses the same Python), or port a configuration that does not use it")
        if inputs_file:
            return f"the reference forward fails on the inputs of {inputs_file['origin']}: {error}"
        return f"the reference forward fails on the inputs worked out for it ({error}); {INPUTS_HELP}"
    return f"probing the reference failed: {error}"


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


def _inputs(probe: dict, inputs_file: dict | None) -> tuple[list[dict], str]:
    """The inputs as templates/parity/inputs.py.j2 renders them, checked (agent/input_recipe.py)."""
    try:
        if inputs_file:
            described = probe["inputs_file"]
            entry = {"kind": "file", "origin": inputs_file["origin"], "source": inputs_file["source"],
                     "returns": described["returns"], "arguments": described["arguments"]}
            return check_inputs([entry]), inputs_file["origin"]
        return check_inputs(probe["recipe"]), "worked out from the model"
    except InputsError as exc:
        raise IntegrateError(f"the probe proposed unusable inputs: {exc}") from None


def _clean_decisions(decisions: list[dict]) -> list[dict]:
    try:
        return check_decisions(decisions)
    except InputsError as exc:
        raise IntegrateError(f"the probe proposed unusable inputs: {exc}") from None
