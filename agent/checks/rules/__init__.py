"""One module per rule; importing this package registers them all."""

from agent.checks.rules import (  # noqa: F401
    attention_dispatch,
    attention_processor,
    flag_names,
    gradient_checkpointing,
    hardcoded_dtype,
    no_einops,
    optional_import,
    pipeline_no_grad,
    register_to_config,
    runtime_loading,
    unused_mask,
)
