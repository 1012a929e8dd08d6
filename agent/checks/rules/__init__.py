"""One module per rule; importing this package registers them all."""

from agent.checks.rules import (  # noqa: F401
    attention_backend,
    attention_dispatch,
    attention_processor,
    class_name_shadow,
    copied_from,
    dummy_objects,
    flag_names,
    forward_argument_names,
    forward_output_dataclass,
    forward_return_dict,
    gradient_checkpointing,
    gradient_checkpointing_support,
    hardcoded_dtype,
    init_halves,
    init_registration,
    model_docstring,
    no_einops,
    optional_import,
    pipeline_batch_expansion,
    pipeline_check_inputs,
    pipeline_free_hooks,
    pipeline_hardcoded_config,
    pipeline_latents_cast,
    pipeline_mask_dropped,
    pipeline_no_grad,
    pipeline_output_type,
    pipeline_progress_bar,
    pipeline_randn,
    pipeline_subclass,
    pipeline_unused_args,
    register_to_config,
    runtime_loading,
    tamper_dynamic_code,
    tamper_file_env,
    tamper_import_side_effects,
    tamper_introspection,
    tamper_monkeypatch,
    tamper_native_code,
    tamper_process_network,
    tamper_tool_import,
    unannotated_copy,
    unused_mask,
)


def _prepare_tree(files) -> None:
    """Indexes every worker would otherwise build for itself: the copy index, the class names and
    the top-level `__init__` with its dummy files, of the diffusers tree being checked."""
    from agent.checks import indexes
    from agent.checks.copies import copy_index
    from agent.checks.tree import dummy_file, dummy_names, installed_root, package_root, read_init

    class _Sink:  # dependencies are recorded by each worker when it runs the rule
        deps: set = set()

        def depend(self, key: str) -> None:
            pass

    root = package_root(files[0]) if files else None
    for r in {root, installed_root()} - {None}:
        copy_index(r)
        indexes.class_names(_Sink(), r)
    if root is not None:
        top = read_init(_Sink(), root / "__init__.py")
        for modules in (top.dummy_of.values() if top else []):
            for module in modules:
                dummy_names(_Sink(), dummy_file(root, root, module))


# Hooks that build shared indexes in the parent process before workers fork (rule id -> fn(files));
# the engine calls each once per cold run.
PREPARE: dict = {"R003": _prepare_tree, "M008": _prepare_tree, "R001": _prepare_tree, "R005": _prepare_tree}
