"""Single-stream transformer blocks with attention and MLP in parallel (FLUX.1's single-stream
block, after ViT-22B): diffusers' `FluxSingleTransformerBlock`.

One three-way adaLN-Zero modulation (shift, scale, gate) from a conditioning vector; one input
projection feeding q, k, v and the MLP (fused in one Linear or apart: the mapping engine splits a
fused one by rows, the row order decided by running); RMS q/k norms; one output projection over
the attention output and the GELU (tanh) MLP side by side; a gated residual. Read from the module:
the width (from the calls), the MLP width (the output projection's input beyond the width), the
head width (from the parameter count); from the calls: which argument is the token sequence, the
conditioning and the rotary embedding (and its form, `rotary_input.py`).

The reference runs on the joint sequence (context tokens first) it receives; diffusers' block
takes the context and the image tokens apart and joins them itself. The call site passes the
whole sequence as the hidden stream with an empty context (the joined sequence is then the same
tokens in the same order) and keeps the hidden stream of the result.
"""

from __future__ import annotations

import itertools
from typing import Any

from . import rotary_input
from .base import BlockCode, Call, Family, Proposal, Scalar, is_tensor, linears
from .joint_block import TRANSFORMER_FLUX, head_width, read_roles


class ParallelTransformerBlockFamily(Family):
    name = "parallel-transformer-block"
    block = "FluxSingleTransformerBlock"
    aliases = {"dim": ("hidden", "dim", "size", "embed", "width"), "num_attention_heads": ("heads", "head"),
               "attention_head_dim": ("head", "dim"), "mlp_ratio": ("mlp", "ratio")}

    def choices(self) -> list[dict[str, Scalar]]:
        return [{"hidden_pos": h, "temb_pos": t, "rope_pos": r, "rope": form}
                for h, t, r in itertools.permutations(range(3)) for form in rotary_input.FORMS]

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        roles = read_roles(calls, streams=1)
        if isinstance(roles, str):
            return roles
        dim = roles["dim"]
        if max(roles["streams"][0], roles["temb"], roles["rope"]) > 2:
            return "its tokens, conditioning and rotary embedding are not its first three arguments"
        lin = linears(module)
        if not all(b for *_, b in lin):
            return "some of its projections have no bias"
        if sum(1 for _, i, o, _ in lin if (i, o) == (dim, 3 * dim)) < 1:
            return f"no Linear({dim}, {3 * dim}) modulation"
        outs = [i - dim for _, i, o, _ in lin if o == dim and i > dim]
        if len(outs) != 1:
            return f"not one output projection over the attention output and the MLP (Linear(dim + mlp, {dim}))"
        mlp = outs[0]
        # modulation, q/k/v and the MLP input, the output projection; then two q/k norm scales
        fixed = (dim * 3 * dim + 3 * dim) + (dim * (3 * dim + mlp) + 3 * dim + mlp) + ((dim + mlp) * dim + dim)
        head = head_width(module, dim, fixed, norms=2)
        if head is None:
            return "its parameters are not a modulation, q/k/v + MLP input, output projection and q/k norm scales"
        hidden = roles["streams"][0]
        if not all(is_tensor(c.output, ndim=3) and c.output.shape == c.bound[c.params[hidden]].shape for c in calls):
            return "it does not return a sequence of the shape it received"
        if int(dim * (mlp / dim)) != mlp:
            return f"its MLP width {mlp} is not int(dim * ratio) for its ratio to the width"
        dims = {"dim": dim, "num_attention_heads": dim // head, "attention_head_dim": head, "mlp_ratio": mlp / dim}
        return [Proposal({"hidden_pos": hidden, "temb_pos": roles["temb"], "rope_pos": roles["rope"], "rope": roles["form"]}, dims)]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        hidden = f"{{{choice['hidden_pos']}}}"
        rope = rotary_input.argument(str(choice["rope"]), int(choice["rope_pos"]))
        # an empty context: the block joins it with the hidden stream (the same tokens, in order); [1] is the hidden stream
        call = f"{{self}}({hidden}, {hidden}[:, :0], {{{choice['temb_pos']}}}, {rope})[1]"
        return BlockCode(
            imports=((TRANSFORMER_FLUX, "FluxSingleTransformerBlock"),),
            main="FluxSingleTransformerBlock({dim}, {num_attention_heads}, {attention_head_dim}, mlp_ratio={mlp_ratio})",
            call=call,
            definitions=rotary_input.definitions(str(choice["rope"])),
            defaults=(("mlp_ratio", "4.0"),),
        )
