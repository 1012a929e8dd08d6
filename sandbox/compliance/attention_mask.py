"""An attention mask is honoured: what a masked token holds does not reach the other outputs.

For each mask argument of the forward (`attention_mask`, `encoder_attention_mask`, any `*_mask`
naming attention, keys, padding or the encoder, or `mask`):

- the tokens it masks: the 3-D float input whose second size is the mask's last size (when the
  spec passes a mask), `encoder_hidden_states` for an `encoder_*` mask, otherwise
  `hidden_states` when it is a token sequence (batch, tokens, channels), else
  `encoder_hidden_states`;
- a key-padding mask that keeps every token but the last one, `j`. A mask the spec passes keeps
  its dtype and layout (bool: True keeps; float with negative entries: additive, 0 keeps and
  the spec's most negative value drops; else 1 keeps, 0 drops); one the check makes is (batch, tokens), tried as bool, then int64, then float;
- the input is run twice with token `j` masked, once as drawn and once with token `j` replaced by
  other values. The outputs must agree within the port's tolerance, except token `j`'s own
  output when the masked tokens are the output's own sequence (a self-attention mask).

The same replacement is also made with nothing masked: when it moves nothing there either, the
check cannot tell a honoured mask from an ignored token, and says so (skipped)."""

from __future__ import annotations

from typing import Any

import torch

from sandbox.compliance.port import INPUT_SEEDS, Port, max_abs_diff, output_tensors, within
from sandbox.compliance.result import CheckResult, failed, passed, skipped

NAME = "attention_mask"
TITLE = "attention mask honoured"
MASK_WORDS = ("attention", "attn", "padding", "encoder", "key")


def mask_parameters(names: list[str]) -> list[str]:
    return [n for n in names if n == "mask" or (n.endswith("mask") and any(w in n for w in MASK_WORDS))]


def masked_tokens(name: str, kwargs: dict[str, Any], given: torch.Tensor | None) -> str | None:
    """The argument whose tokens the mask `name` masks (see the module docstring)."""
    tokens = {k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor) and v.dim() == 3 and v.is_floating_point()}
    if given is not None:
        fits = [k for k, v in tokens.items() if v.shape[1] == given.shape[-1]]
        prefer = [k for k in fits if ("encoder" in k) == name.startswith("encoder")]
        return (prefer or fits or [None])[0]
    if name.startswith("encoder"):
        return "encoder_hidden_states" if "encoder_hidden_states" in tokens else None
    for k in ("hidden_states", "encoder_hidden_states"):
        if k in tokens:
            return k
    return None


def _mask_values(dtype: torch.dtype, given: torch.Tensor | None) -> tuple[Any, Any]:
    """(keep, drop) values for a mask of `dtype`."""
    if dtype == torch.bool:
        return True, False
    if dtype.is_floating_point and given is not None and bool((given < 0).any()):
        return 0.0, float(given.min())  # additive: the spec's own "drop" value
    return 1, 0


def _masks(given: torch.Tensor | None, batch: int, length: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(open, masked): everything kept, and everything kept but the last token."""
    keep, drop = _mask_values(dtype, given)
    shape = given.shape if given is not None else (batch, length)
    open_ = torch.full(shape, keep, dtype=dtype, device=device)
    masked = open_.clone()
    masked[..., -1] = drop
    return open_, masked


def _region(out: Any, skip_token: int | None, length: int) -> list[tuple[str, torch.Tensor]]:
    """The output tensors, without token `skip_token` where the output is the masked sequence."""
    kept = []
    for path, t in output_tensors(out):
        if skip_token is not None and t.dim() >= 2 and t.shape[1] == length:
            t = torch.cat([t[:, :skip_token], t[:, skip_token + 1 :]], dim=1)
        kept.append((path, t))
    return kept


def _worst(first: list[tuple[str, torch.Tensor]], second: list[tuple[str, torch.Tensor]]) -> tuple[str | None, float]:
    if len(first) != len(second):
        return None, float("inf")
    worst: tuple[str | None, float] = (None, 0.0)
    for (path, x), (_, y) in zip(first, second, strict=True):
        d = max_abs_diff(x, y)
        if d != d or d > worst[1]:
            worst = (path, d)
    return worst


def _one_mask(port: Port, model: torch.nn.Module, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    given = kwargs.get(name) if isinstance(kwargs.get(name), torch.Tensor) else None
    target = masked_tokens(name, kwargs, given)
    if target is None:
        return {"mask": name, "status": "skipped", "reason": f"no token sequence (batch, tokens, channels) among the inputs for {name} to mask"}
    tokens = kwargs[target]
    batch, length = tokens.shape[0], tokens.shape[1]
    j = length - 1
    g = torch.Generator().manual_seed(7)
    replaced = tokens.clone()
    noise = torch.randn(replaced[:, j].shape, generator=g).to(replaced)
    replaced[:, j] = -3.0 * replaced[:, j] + 5.0 * (float(tokens.std()) + 1.0) * noise
    self_mask = "encoder" not in target  # the masked tokens are the output's own sequence
    skip_token = j if self_mask else None

    errors = []
    for dtype in ([given.dtype] if given is not None else [torch.bool, torch.int64, torch.float32]):
        open_, masked = _masks(given, batch, length, dtype, tokens.device)
        try:
            runs = {
                (mask_kind, which): _region(port.forward(model, {**kwargs, name: mask, target: value}), skip_token, length)
                for mask_kind, mask in (("masked", masked), ("open", open_))
                for which, value in (("drawn", tokens), ("replaced", replaced))
            }
        except Exception as exc:  # a mask dtype the forward does not take: try the next one
            errors.append(f"{str(dtype).removeprefix('torch.')}: {exc.__class__.__name__}: {str(exc)[:200]}")
            continue
        leak_at, leak = _worst(runs["masked", "drawn"], runs["masked", "replaced"])
        moved_at, moved = _worst(runs["open", "drawn"], runs["open", "replaced"])
        row = {
            "mask": name, "masks_tokens_of": target, "masked_token": j, "tokens": length,
            "mask_dtype": str(dtype).removeprefix("torch."), "mask_shape": list(masked.shape),
            "self_attention_mask": self_mask, "leak_when_masked": {"tensor": leak_at, "max_abs_diff": leak},
            "change_when_unmasked": {"tensor": moved_at, "max_abs_diff": moved}, "tolerance": port.tolerance,
            "rejected_mask_dtypes": errors,
        }
        if within(moved, port.tolerance):
            return {**row, "status": "skipped", "reason": f"replacing token {j} of {target} changes nothing even unmasked: the check cannot tell"}
        if not within(leak, port.tolerance):
            return {**row, "status": "failed", "reason": (
                f"{name} is not honoured: replacing masked token {j} of {target} changes {leak_at} by max abs {leak:.3g} "
                f"(> {port.tolerance:g}; unmasked it changes by {moved:.3g})")}
        return {**row, "status": "passed", "reason": (
            f"{name} hides token {j} of {target}: other outputs move by max abs {leak:.3g} masked, {moved:.3g} unmasked")}
    return {"mask": name, "status": "failed", "reason": f"the forward rejects every {name} tried: {'; '.join(errors)}", "masks_tokens_of": target}


def check(port: Port) -> CheckResult:
    model = port.model()
    names = mask_parameters(list(port.forward_parameters(model)))
    if not names:
        return skipped("the forward takes no attention mask")
    kwargs = port.inputs(INPUT_SEEDS[0])
    rows = [_one_mask(port, model, n, kwargs) for n in names]
    evidence = {"masks": rows}
    statuses = {r["status"] for r in rows}
    text = "; ".join(r["reason"] for r in rows)
    if "failed" in statuses:
        return failed("; ".join(r["reason"] for r in rows if r["status"] == "failed"), **evidence)
    if statuses == {"skipped"}:
        return skipped(text, **evidence)
    return passed(text, **evidence)
