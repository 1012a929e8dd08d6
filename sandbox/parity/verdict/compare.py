"""Numbers: how far apart two tensors are, and whether that is within tolerance."""

from __future__ import annotations

import math

import torch


def compare(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    a64, b64 = a.detach().double().flatten().cpu(), b.detach().double().flatten().cpu()
    diff = (a64 - b64).abs()
    denom = a64.norm() * b64.norm()
    cosine = float((a64 @ b64) / denom) if denom > 0 else (1.0 if torch.equal(a64, b64) else 0.0)
    mse = float((diff**2).mean()) if diff.numel() else 0.0
    peak = float(a64.abs().max()) if a64.numel() else 0.0
    psnr = math.inf if mse == 0 else 10 * math.log10(max(peak, 1e-12) ** 2 / mse)
    max_abs = float(diff.max()) if diff.numel() else 0.0
    if math.isnan(max_abs) or math.isnan(cosine):  # a NaN anywhere in the candidate is never close
        max_abs, cosine = math.inf, 0.0
    return {
        "max_abs_diff": max_abs,
        "mean_abs_diff": float(diff.mean()) if diff.numel() else 0.0,
        "cosine": cosine,
        "psnr": psnr,
        "reference_abs_max": peak,
    }


def within(metrics: dict[str, float], tol: dict[str, float]) -> bool:
    return metrics["max_abs_diff"] <= tol["max_abs"] and metrics["cosine"] >= tol["cosine"]


def nonfinite(t: torch.Tensor) -> bool:
    return t.is_floating_point() and not bool(torch.isfinite(t).all())


INF_METRICS = {"max_abs_diff": math.inf, "mean_abs_diff": math.inf, "cosine": 0.0, "psnr": 0.0, "reference_abs_max": 0.0}
