"""Write examples/tiny-dit/refine_names.jsonl: a scripted refinement session for the bundled example.

Each line is one assistant turn as the Messages API returns it (content blocks, stop_reason,
usage). Play it with `integrate examples/tiny-dit --llm scripted:examples/tiny-dit/refine_names.jsonl`.
The session starts from the port after the blocks stage (diffusers' Attention, FeedForward,
AdaLayerNormContinuous already in place) and the conventions stage (diffusers' forward names,
return_dict, checkpointing) and renames the model's research attribute names to
diffusers' (`blocks` -> `transformer_blocks`, `final_layer` -> `norm_out`), checks parity (a
green checkpoint), runs the checks and finishes; the weight mapping follows the new names.
"""

import json
from pathlib import Path

MODEL = "transformer_tiny_dit.py"
OLD_BLOCKS = "        self.blocks = nn.ModuleList("  # the port writes the list on its own lines (ruff format, 119 columns)
NEW_BLOCKS = "        self.transformer_blocks = nn.ModuleList("
OLD_LOOP = "        for block in self.blocks:"
NEW_LOOP = "        for block in self.transformer_blocks:"
OLD_NORM = "        self.final_layer = AdaLayerNormContinuous("
NEW_NORM = "        self.norm_out = AdaLayerNormContinuous("
OLD_NORM_CALL = "        hidden_states = self.proj_out(self.final_layer(hidden_states, c))"  # forward names from the conventions stage
NEW_NORM_CALL = "        hidden_states = self.proj_out(self.norm_out(hidden_states, c))"


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
        text("The blocks are diffusers' already; the model keeps research names. diffusers calls them "
             "`transformer_blocks` and `norm_out`."),
        tool_use(2, "edit_file", path=MODEL, old=OLD_BLOCKS, new=NEW_BLOCKS),
        tool_use(3, "edit_file", path=MODEL, old=OLD_LOOP, new=NEW_LOOP),
        tool_use(4, "edit_file", path=MODEL, old=OLD_NORM, new=NEW_NORM),
        tool_use(5, "edit_file", path=MODEL, old=OLD_NORM_CALL, new=NEW_NORM_CALL),
        usage=usage(2900, 0, 5400, 420),
    ),
    turn(tool_use(6, "run_parity"), usage=usage(150, 0, 8300, 20)),
    turn(tool_use(7, "run_checks"), usage=usage(200, 0, 8450, 20)),
    turn(
        tool_use(8, "finish", summary="Renamed blocks to transformer_blocks and final_layer to norm_out (diffusers naming); "
                 "the weight mapping follows the new names."),
        usage=usage(90, 0, 8650, 60),
    ),
]

if __name__ == "__main__":
    out = Path(__file__).parent / "tiny-dit" / "refine_names.jsonl"
    out.write_text("".join(json.dumps(t) + "\n" for t in SESSION))
    print(f"wrote {out} ({len(SESSION)} turns)")
