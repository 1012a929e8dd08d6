"""Regenerate examples/tiny-dit/model.safetensors deterministically.

The weights are random but seeded, and every parameter is drawn from a normal distribution
(no zero-initialised gates), so that parity between a port and the reference is a real test.

    python examples/make_tiny_dit_weights.py [OUT_FILE]
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent / "tiny-dit"


def build_state_dict() -> dict[str, torch.Tensor]:
    sys.path.insert(0, str(HERE))
    from tiny_dit import TinyDiT

    config = json.loads((HERE / "config.json").read_text())
    kwargs = {k: v for k, v in config.items() if k not in ("architectures", "model_type")}
    model = TinyDiT(**kwargs)
    generator = torch.Generator().manual_seed(0)
    state = {}
    for name, tensor in sorted(model.state_dict().items()):
        state[name] = (torch.randn(tensor.shape, generator=generator) * 0.05).contiguous()
    return state


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "model.safetensors"
    save_file(build_state_dict(), str(out), metadata={"format": "pt"})
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
