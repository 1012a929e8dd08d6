import ast

from agent.checks.registry import Rule, register
from agent.checks.tamper import SCOPE_ANCHOR, find

BANNED = (
    "builtins.open", "builtins.input", "io.open", "io.FileIO", "os.open", "os.fdopen", "os.read", "os.write", "os.environ",
    "os.environb", "os.getenv", "os.getenvb", "os.putenv", "os.unsetenv", "os.listdir", "os.scandir", "os.walk", "os.remove",
    "os.unlink", "os.rename", "os.replace", "os.makedirs", "os.mkdir", "os.rmdir", "os.chdir", "os.chmod", "os.symlink",
    "os.link", "os.truncate", "os.stat", "os.path.exists", "os.path.isfile", "os.path.getsize", "shutil", "glob",
    "tempfile", "fileinput", "pathlib", "sys.argv", "sys.stdin", "numpy.load", "numpy.save", "numpy.fromfile",
    "numpy.loadtxt", "numpy.savetxt", "numpy.memmap", "torch.save", "torch.from_file", "safetensors",
    "huggingface_hub", "linecache", "zipfile", "tarfile", "sqlite3", "dbm",
)
FILE_METHODS = {"read_text", "read_bytes", "write_text", "write_bytes", "iterdir", "rglob", "unlink", "touch"}


def check(ctx):
    for node, name in find(ctx, BANNED):
        yield node, f"uses {name}: a model file may not read or write files or the environment"
    for node in ctx.of_type(ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr in FILE_METHODS and not ctx.names.qualify(node.func):
            yield node, f"calls .{node.func.attr}(): a model file may not read or write files"


RULE = register(Rule(
    id="T006",
    name="tamper-file-env",
    scope="port",
    summary="A port's model file does not read or write files or the environment.",
    what="`open`, `io`/`os` file functions, `pathlib`, `shutil`, `glob`, `tempfile`, `os.environ`/`getenv`, `sys.argv`, numpy/torch/safetensors file I/O, hub downloads, or path methods such as `.read_text()`.",
    why="Files and environment variables are where a harness keeps references, tolerances and reports: reading them lets a model copy the expected answer, writing them lets it rewrite the verdict.",
    bad="import os\nif os.environ.get('PARITY'):\n    ...",
    good="# configuration arrives through __init__ arguments (@register_to_config)",
    anchor=SCOPE_ANCHOR,
    check=check,
    blocks_pass=True,
    default=False,
))
