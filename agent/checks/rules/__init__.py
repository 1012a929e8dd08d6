"""One module per rule; importing this package registers them all."""

from agent.checks.rules import (  # noqa: F401
    attention_dispatch,
    no_einops,
    pipeline_no_grad,
    register_to_config,
    runtime_loading,
    unused_mask,
)
