"""A per-layer plot of max abs diff, written as PNG with no plotting dependency.

One bar per aligned layer pair, in execution order (bar i is row i of the report's `layers`
table), on a log scale from 1e-12 up; green within tolerance, red diverged, grey not comparable
(the two sides use different layouts there). The blue line is the max-abs tolerance.
"""

from __future__ import annotations

import math
import struct
import zlib

GREEN, RED, GREY, BLUE, AXIS, WHITE = (46, 160, 67), (207, 34, 46), (170, 170, 170), (9, 105, 218), (60, 60, 60), (255, 255, 255)
LOW = -12.0


def _png(width: int, height: int, pixels: list[bytearray]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(row) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def layer_plot_png(layers: list[dict], tolerance: float) -> bytes:
    n = max(len(layers), 1)
    bar = max(2, min(12, 1200 // n))
    margin = 20
    width, height = margin * 2 + bar * n, 260
    plot_h = height - 2 * margin
    pixels = [bytearray(WHITE * width) for _ in range(height)]
    values = [row.get("max_abs_diff") for row in layers]
    top = max([1.0] + [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)])
    high = math.ceil(math.log10(top))

    def y_of(value: float) -> int:
        frac = (max(math.log10(max(value, 10**LOW)), LOW) - LOW) / (high - LOW)
        return height - margin - int(frac * plot_h)

    def put(x: int, y: int, color) -> None:
        if 0 <= x < width and 0 <= y < height:
            pixels[y][3 * x:3 * x + 3] = bytes(color)

    for i, row in enumerate(layers):
        v = row.get("max_abs_diff")
        diverged = row.get("diverged")
        color = GREY if diverged is None else RED if diverged else GREEN
        y0 = height - margin if diverged is not None else margin
        y1 = y_of(v if isinstance(v, (int, float)) and math.isfinite(v) else top) if diverged is not None else height - margin
        for x in range(margin + i * bar, margin + (i + 1) * bar - (1 if bar > 2 else 0)):
            for y in range(min(y0, y1), max(y0, y1) + 1):
                put(x, y, color if diverged is not None else (235, 235, 235))
    ty = y_of(tolerance)
    for x in range(margin, width - margin):
        put(x, ty, BLUE)
    for decade in range(int(LOW), high + 1):  # ticks at each power of ten
        for x in range(margin - 6, margin):
            put(x, y_of(10.0**decade), AXIS)
    for y in range(margin, height - margin + 1):
        put(margin - 1, y, AXIS)
    for x in range(margin - 1, width - margin):
        put(x, height - margin, AXIS)
    return _png(width, height, pixels)
