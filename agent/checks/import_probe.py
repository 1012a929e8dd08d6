"""Run inside the sandbox by `integrate check --fix`: does each candidate fix still import?

    python import_probe.py MANIFEST.json RESULT.json

The manifest lists candidates, each a set of modules whose source is replaced by a file of the
candidate (`files`: module name -> [candidate file, original file]) and what to import (`modules`) and look up
(`attrs`: [module, name]). torch and transformers are imported once; each candidate runs in a
forked child, so one candidate's modules never leak into the next; what the parent preloaded
(torch, transformers, the package under test) is dropped in a child whose candidate replaces it. Nothing from the tool is
imported here: this file runs with the code under test.
"""

import importlib
import importlib.abc
import importlib.util
import json
import os
import sys


class _CandidateLoader(importlib.abc.Loader):
    """Runs the candidate's text as the module, under the original file's name and place (lazy
    `__init__` files derive their package path from `__file__`)."""

    def __init__(self, source: str, origin: str) -> None:
        self.source, self.origin = source, origin

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        with open(self.source, encoding="utf-8") as f:
            code = compile(f.read(), self.origin, "exec")
        exec(code, module.__dict__)


def _overlay(files: dict, search: dict):
    class Overlay(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name not in files:
                return None
            source, origin = files[name]
            spec = importlib.util.spec_from_loader(name, _CandidateLoader(source, origin), origin=origin, is_package=name in search)
            spec.has_location = True
            if name in search:
                spec.submodule_search_locations = search[name]
            return spec

    return Overlay()


def _probe(candidate: dict) -> str:
    files = candidate.get("files", {})
    # modules the parent preloaded that this candidate replaces: drop them and everything below
    for name in list(sys.modules):
        if any(name == f or name.startswith(f + ".") for f in files):
            del sys.modules[name]
    sys.meta_path.insert(0, _overlay(files, candidate.get("search", {})))
    try:
        for module in candidate.get("modules", []):
            importlib.import_module(module)
        for module, name in candidate.get("attrs", []):
            getattr(importlib.import_module(module), name)
    except BaseException as exc:  # noqa: BLE001  (anything the code under test raises)
        return f"{type(exc).__name__}: {exc}"[:500]
    return ""


def main() -> int:
    manifest = json.load(open(sys.argv[1]))
    for entry in reversed(manifest.get("path", [])):
        sys.path.insert(0, entry)
    for preload in ("torch", "transformers", *manifest.get("preload", [])):
        try:
            importlib.import_module(preload)
        except BaseException:  # noqa: BLE001
            pass
    results = []
    for candidate in manifest["candidates"]:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            os.write(write, _probe(candidate).encode("utf-8", "replace"))
            os._exit(0)
        os.close(write)
        chunks = []
        while True:
            chunk = os.read(read, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(read)
        _, status = os.waitpid(pid, 0)
        error = b"".join(chunks).decode("utf-8", "replace")
        if os.waitstatus_to_exitcode(status) != 0 and not error:
            error = f"the import process died (status {status})"
        results.append(error)
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
