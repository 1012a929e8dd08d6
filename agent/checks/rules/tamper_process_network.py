from agent.checks.registry import Rule, register
from agent.checks.tamper import SCOPE_ANCHOR, find

BANNED = (
    "subprocess", "os.system", "os.popen", "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.posix_spawn",
    "os.posix_spawnp", "os.execv", "os.execve", "os.execl", "os.execle", "os.execlp", "os.execlpe", "os.execvp",
    "os.execvpe", "os.spawnl", "os.spawnle", "os.spawnlp", "os.spawnlpe", "os.spawnv", "os.spawnve", "os.spawnvp",
    "os.spawnvpe", "os._exit", "pty", "socket", "ssl", "urllib", "http", "requests", "httpx", "aiohttp", "ftplib",
    "smtplib", "telnetlib", "xmlrpc", "webbrowser", "multiprocessing", "signal", "asyncio.create_subprocess_exec",
    "asyncio.create_subprocess_shell", "asyncio.open_connection", "sys.exit", "builtins.exit", "builtins.quit",
)


def check(ctx):
    for node, name in find(ctx, BANNED):
        yield node, f"uses {name}: a model file may not start processes, signal or exit the interpreter, or reach the network"


RULE = register(Rule(
    id="T005",
    name="tamper-process-network",
    scope="port",
    summary="A port's model file does not start processes, reach the network or end the interpreter.",
    what="`subprocess`, `os.system`/`popen`/`exec*`/`spawn*`/`fork`/`kill`, `multiprocessing`, `signal`, `sys.exit`, `socket`, `urllib`, `http`, `requests`, `httpx`, under any alias.",
    why="A process can outlive or kill the harness, a signal or exit can end it with a chosen status, and the network can leak or fetch what the verdict depends on.",
    bad="import subprocess\nsubprocess.run(['sh', '-c', cmd])",
    good="def forward(self, x):\n    return self.proj(x)",
    anchor=SCOPE_ANCHOR,
    check=check,
    blocks_pass=True,
    default=False,
))
