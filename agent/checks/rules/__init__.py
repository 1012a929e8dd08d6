"""One module per rule; importing this package registers them all."""

from agent.checks.rules import (  # noqa: F401
    attention_dispatch,
    attention_processor,
    copied_from,
    flag_names,
    gradient_checkpointing,
    hardcoded_dtype,
    init_registration,
    no_einops,
    optional_import,
    pipeline_free_hooks,
    pipeline_hardcoded_config,
    pipeline_no_grad,
    pipeline_output_type,
    pipeline_progress_bar,
    pipeline_randn,
    pipeline_subclass,
    pipeline_unused_args,
    register_to_config,
    runtime_loading,
    unused_mask,
)
