"""A reference config (config.json keys) as the port's constructor arguments, after the
conventions stage renamed them to diffusers' vocabulary.

`rename_config` is written once here and copied verbatim into every generated
`_weight_mapping.py` that renames config keys (`config_source`), so `integrate convert --config`
and the run itself convert a reference config.json the same way. No imports: the generated file
depends only on torch.
"""

from __future__ import annotations

import inspect
from typing import Any


def rename_config(config, renames, per_head, defaults, drop=()):
    """Reference config -> the port's constructor arguments.

    renames: reference key -> port key. per_head: reference width key -> (port key, reference
    heads key): the port takes the width as heads x per-head channels, so it gets width // heads
    (an error when they do not divide). defaults: the reference's defaults of the keys per_head
    reads, for a config that leaves them out. drop: keys the port does not take.
    """
    out = {}
    for key, value in config.items():
        if key in drop:
            continue
        if key in per_head:
            continue
        out[renames.get(key, key)] = value
    for width_key, (port_key, heads_key) in per_head.items():
        width = config.get(width_key, defaults.get(width_key))
        heads = config.get(heads_key, defaults.get(heads_key))
        if width is None or heads is None or width % heads:
            raise ValueError(f"{width_key}={width} is not a multiple of {heads_key}={heads}")
        out[port_key] = width // heads
        out.setdefault(renames.get(heads_key, heads_key), heads)
    return out


def config_source(conversion: dict[str, Any]) -> str:
    """The config tables and `convert_config` for a generated `_weight_mapping.py`.
    `conversion` holds renames, per_head, defaults and drop (see rename_config)."""
    per_head = {k: tuple(v) for k, v in conversion.get("per_head", {}).items()}
    lines = [
        "",
        "# Config: reference config.json keys -> this port's constructor arguments (diffusers' names)",
        f"CONFIG_RENAMES = {dict(conversion.get('renames', {}))!r}",
        "# widths this port takes as heads x per-head channels: reference key -> (port key, reference heads key)",
        f"CONFIG_PER_HEAD = {per_head!r}",
        "# the reference's defaults of the keys CONFIG_PER_HEAD reads, for a config.json that omits them",
        f"CONFIG_DEFAULTS = {dict(conversion.get('defaults', {}))!r}",
        "# reference config.json keys that are not constructor arguments",
        f"CONFIG_DROP = {tuple(conversion.get('drop', ()))!r}",
        "",
        "",
        "def convert_config(config):",
        '    """A reference config.json (as a dict) -> the keyword arguments of this port\'s constructor."""',
        "    return rename_config(config, CONFIG_RENAMES, CONFIG_PER_HEAD, CONFIG_DEFAULTS, CONFIG_DROP)",
        "",
        "",
        inspect.getsource(rename_config),
    ]
    return "\n".join(lines)
