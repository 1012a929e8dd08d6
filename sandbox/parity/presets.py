"""Tolerance presets per dtype, shared by the sides (for the report) and the verdict."""

# fp32: a faithful port differs by reassociation only. Half precisions round at every op, so
# max-abs is loose there and cosine is the gate that tells a wrong port from rounding.
PRESETS = {
    "float32": {"max_abs": 1e-4, "cosine": 0.99999},
    "bfloat16": {"max_abs": 5e-2, "cosine": 0.999},
    "float16": {"max_abs": 1e-2, "cosine": 0.9995},
}
DTYPES = tuple(PRESETS)
