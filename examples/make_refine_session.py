"""Write examples/tiny-dit/refine_qkv.jsonl: a scripted refinement session for the bundled example.

Each line is one assistant turn as the Messages API returns it (content blocks, stop_reason,
usage). Play it with `integrate examples/tiny-dit --llm scripted:examples/tiny-dit/refine_qkv.jsonl`.
The session splits the fused `qkv` projection into diffusers' `to_q`/`to_k`/`to_v` and renames
`proj` to `to_out.0`, checks parity (a green checkpoint), runs the checks and finishes.
"""

import json
from pathlib import Path

MODEL = "transformer_tiny_dit.py"
FUSED_INIT = """        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)"""
SPLIT_INIT = """        self.to_q = nn.Linear(dim, dim, bias=qkv_bias)
        self.to_k = nn.Linear(dim, dim, bias=qkv_bias)
        self.to_v = nn.Linear(dim, dim, bias=qkv_bias)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])"""
FUSED_FORWARD = """        qkv = self.qkv(x)
        q, k, v = qkv.unflatten(2, (3, self.num_heads, -1)).permute(2, 0, 3, 1, 4)"""
SPLIT_FORWARD = """        q = self.to_q(x).unflatten(2, (self.num_heads, -1)).transpose(1, 2)
        k = self.to_k(x).unflatten(2, (self.num_heads, -1)).transpose(1, 2)
        v = self.to_v(x).unflatten(2, (self.num_heads, -1)).transpose(1, 2)"""
OLD_OUT = "        return self.proj(x)"
NEW_OUT = "        x = self.to_out[0](x)\n        return self.to_out[1](x)"


def tool_use(n: int, name: str, **arguments) -> dict:
    return {"type": "tool_use", "id": f"toolu_{n:02d}", "name": name, "input": arguments}


def text(words: str) -> dict:
    return {"type": "text", "text": words}


def turn(*blocks: dict, usage: dict, stop_reason: str = "tool_use") -> dict:
    return {"content": list(blocks), "stop_reason": stop_reason, "usage": usage}


def usage(plain: int, written: int, read: int, output: int) -> dict:
    return {"input_tokens": plain, "cache_creation_input_tokens": written, "cache_read_input_tokens": read, "output_tokens": output}


SESSION = [
    turn(text("I will read the port first."), tool_use(1, "read_file", path=MODEL), usage=usage(1200, 5400, 0, 60)),
    turn(
        text("The attention uses a fused qkv projection and `proj`; diffusers names them to_q/to_k/to_v and to_out."),
        tool_use(2, "edit_file", path=MODEL, old=FUSED_INIT, new=SPLIT_INIT),
        tool_use(3, "edit_file", path=MODEL, old=FUSED_FORWARD, new=SPLIT_FORWARD),
        tool_use(4, "edit_file", path=MODEL, old=OLD_OUT, new=NEW_OUT),
        usage=usage(2900, 0, 5400, 420),
    ),
    turn(tool_use(5, "run_parity"), usage=usage(150, 0, 8300, 20)),
    turn(tool_use(6, "run_checks"), usage=usage(200, 0, 8450, 20)),
    turn(
        tool_use(7, "finish", summary="Split the fused qkv projection into to_q, to_k and to_v and renamed proj to "
                 "to_out.0 (diffusers attention naming); the weight mapping splits qkv by rows."),
        usage=usage(90, 0, 8650, 60),
    ),
]

if __name__ == "__main__":
    out = Path(__file__).parent / "tiny-dit" / "refine_qkv.jsonl"
    out.write_text("".join(json.dumps(t) + "\n" for t in SESSION))
    print(f"wrote {out} ({len(SESSION)} turns)")
