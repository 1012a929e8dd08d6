"""The reference's license, for the header of the ported file.

The original copyright lines and license always stay. diffusers' own header (HuggingFace
copyright, Apache-2.0) is added only when the reference's license allows its code to be
distributed under Apache-2.0 with its notice kept (MIT, BSD, Apache-2.0, ISC, ...); with any
other license, or none found, the file keeps the original notice alone and the plan says why.
Where the license comes from, in order: a LICENSE/COPYING file (the snapshot, then the local
source folder), the model card's `license:` field, the reference file's own header comment.
"""

from __future__ import annotations

import re
from pathlib import Path

PERMISSIVE = {"mit", "apache-2.0", "bsd-2-clause", "bsd-3-clause", "bsd", "isc", "unlicense", "cc0-1.0", "zlib", "0bsd"}
NAMES = {"mit": "MIT License", "apache-2.0": "Apache License 2.0", "bsd-2-clause": "BSD 2-Clause License",
         "bsd-3-clause": "BSD 3-Clause License", "isc": "ISC License"}
LICENSE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "LICENCE.md", "LICENCE.txt", "COPYING", "COPYING.md", "COPYING.txt")


def _printable(line: str) -> str:
    return re.sub(r"[^\x20-\x7e]", "", line).rstrip()


def identify(text: str) -> str | None:
    """An SPDX id from a license text or notice."""
    t = " ".join(text.split()).lower()
    spdx = re.search(r"spdx-license-identifier:\s*([\w.+-]+)", t)
    if spdx:
        return spdx.group(1)
    if "apache license" in t and "version 2.0" in t:
        return "apache-2.0"
    if "permission is hereby granted, free of charge" in t or re.search(r"\bmit license\b", t):
        return "mit"
    if "redistribution and use in source and binary forms" in t:
        return "bsd-3-clause" if "neither the name" in t else "bsd-2-clause"
    if "permission to use, copy, modify, and/or distribute this software" in t:
        return "isc"
    if "gnu general public license" in t:
        return "gpl-3.0" if "version 3" in t else "gpl-2.0"
    if "gnu lesser general public license" in t:
        return "lgpl-3.0"
    if "creative commons" in t or "attribution-noncommercial" in t:
        return "cc-by-nc-4.0" if "noncommercial" in t else "cc-by-4.0"
    return None


def _card_license(card: str) -> str | None:
    front = re.match(r"---\s*\n(.*?)\n---", card, re.S)
    if front:
        m = re.search(r"^license:\s*['\"]?([\w.+-]+)", front.group(1), re.M)
        if m:
            return m.group(1).lower()
    return None


def _header_comment(source: str) -> str:
    lines = []
    for line in source.splitlines():
        if line.startswith("#!") or line.startswith("# -*-"):
            continue
        if line.startswith("#"):
            lines.append(line.lstrip("#").strip())
        elif line.strip():
            break
    return "\n".join(lines)


def _copyright_lines(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = _printable(line.lstrip("#").strip())
        if re.match(r"copyright\b", line, re.I) and (re.search(r"\d{4}", line) or "(c)" in line.lower() or "©" in line):
            out.append(line)
    return out


def reference_license(snapshot: Path, source_dir: Path | None, entry_file: str, origin: str) -> dict:
    """{spdx, name, source, copyright, text, diffusers_header, why}."""
    text, source = "", None
    for folder in [snapshot, source_dir] if source_dir else [snapshot]:
        found = next((folder / n for n in LICENSE_FILES if (folder / n).is_file()), None)
        if found:
            text, source = found.read_text(errors="replace"), found.name
            break
    header = _header_comment((snapshot / entry_file).read_text(errors="replace"))
    card = (snapshot / "README.md").read_text(errors="replace") if (snapshot / "README.md").is_file() else ""
    spdx = identify(text) if text else None
    if spdx is None and _card_license(card):
        spdx, source = _card_license(card), "the model card"
    if spdx is None and header:
        spdx, source = identify(header), f"the header of {entry_file}"
    copyright = list(dict.fromkeys(_copyright_lines(header) + _copyright_lines(text)))
    allowed = spdx in PERMISSIVE
    if spdx is None:
        why = "no license found in the source (no LICENSE file, no license in the model card or the file header): only the original notice is kept; diffusers' Apache-2.0 header needs the author's license first"
    elif allowed:
        why = f"{spdx} permits distribution under Apache-2.0 with the original notice kept: diffusers' header added above it"
    else:
        why = f"{spdx} does not permit relicensing under Apache-2.0: the original notice is kept alone, diffusers' header is not added"
    notice = [_printable(line) for line in text.strip().splitlines()] if text and spdx != "apache-2.0" else []
    return {
        "spdx": spdx, "name": NAMES.get(spdx or "", spdx), "source": source, "origin": origin, "copyright": copyright,
        "notice": notice, "diffusers_header": allowed, "why": why,
    }


def strip_license_header(code: str) -> str:
    """The ported body without the reference's leading copyright/license comment (the file's
    header carries it)."""
    lines = code.splitlines(keepends=True)
    end = 0
    while end < len(lines) and (lines[end].startswith("#") or not lines[end].strip()):
        end += 1
    head = "".join(lines[:end])
    if re.search(r"copyright|license|licence|spdx", head, re.I):
        return "".join(lines[end:])
    return code
