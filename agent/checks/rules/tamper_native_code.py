from agent.checks.registry import Rule, register
from agent.checks.tamper import SCOPE_ANCHOR, find

BANNED = (
    "pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "copyreg", "ctypes", "_ctypes", "cffi",
    "torch.load", "torch.jit.load", "torch.package", "torch.ops.load_library", "torch.utils.cpp_extension",
    "torch.classes.load_library", "mmap",
)


def check(ctx):
    for node, name in find(ctx, BANNED):
        yield node, f"uses {name}: a model file may not deserialize objects or load native code"


RULE = register(Rule(
    id="T004",
    name="tamper-native-code",
    scope="port",
    summary="A port's model file does not unpickle objects or load native code.",
    what="`pickle`, `marshal`, `shelve`, `dill`, `ctypes`, `cffi`, `torch.load`, `torch.jit.load`, `torch.ops.load_library`, C++ extensions, under any alias.",
    why="Unpickling and native libraries run arbitrary code that no review of the model file can see, with the process's full access.",
    bad="import pickle\nstate = pickle.loads(blob)",
    good="# weights arrive through from_pretrained (safetensors)",
    anchor=SCOPE_ANCHOR,
    check=check,
    blocks_pass=True,
    default=False,
))
