"""Names for the port, spelled the way diffusers spells its own classes.

A reference class `Unet3D` becomes `...UNet3DModel`, `Dit` becomes `DiT`, because the words
diffusers already uses (UNet, DiT, UVit, VAE, ...) are taken from diffusers' own model class
names, case and all. The dimensionality in the name (1D/2D/3D) comes from the data the forward
consumes (the convolution that first reads the main input, or the input's rank), never from a
default: a 1-D audio model is not named 2D.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path


def _starts(name: str) -> list[int]:
    """Where a word may start in a CamelCase name: 0, a capital, a digit after a letter, after _."""
    out = [0]
    for i in range(1, len(name)):
        c, p = name[i], name[i - 1]
        if (c.isupper() or (c.isdigit() and not p.isdigit()) or p == "_") and c != "_":
            out.append(i)
    return out


def _ends(name: str) -> set[int]:
    return {len(name)} | {i for i in _starts(name) if i > 0} | {i for i, c in enumerate(name) if c == "_"}


@cache
def diffusers_exports() -> tuple[frozenset[str], frozenset[str]]:
    """(model class names, every exported name) of the installed diffusers, read from its
    `__init__.py` (parsing only: importing diffusers costs seconds)."""
    import ast
    import importlib.util

    try:
        tree = ast.parse(Path(importlib.util.find_spec("diffusers").origin).read_text())
    except (AttributeError, OSError, SyntaxError, ValueError):
        return frozenset(), frozenset()
    models: set[str] = set()
    every: set[str] = set()
    for node in ast.walk(tree):
        under_models = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("extend", "append"):
            target = node.func.value
            if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant) and target.slice.value == "models":
                under_models = node.args
        elif isinstance(node, ast.Dict):
            under_models = [v for k, v in zip(node.keys, node.values, strict=True) if isinstance(k, ast.Constant) and k.value == "models"]
        for part in under_models:
            models.update(c.value for c in ast.walk(part) if isinstance(c, ast.Constant) and isinstance(c.value, str))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier() and node.value[:1].isupper():
            every.add(node.value)
    return frozenset(models), frozenset(every)


@cache
def diffusers_words() -> dict[str, str]:
    """lower-case word -> the spelling diffusers' model classes use for it (the most common)."""
    names = sorted(diffusers_exports()[0])
    counts: dict[str, dict[str, int]] = {}
    for name in names:
        ends = _ends(name)
        for i in _starts(name):
            for j in ends:
                word = name[i:j]
                if j > i + 2 and any(c.isalpha() for c in word) and any(c.isupper() for c in word[1:] + word[:1]):
                    counts.setdefault(word.lower(), {}).setdefault(word, 0)
                    counts[word.lower()][word] += 1
    return {low: max(spellings, key=lambda s: (spellings[s], s)) for low, spellings in counts.items()}


def diffusers_spelling(name: str) -> str:
    """`name` with every word diffusers spells differently re-cased its way (longest words first)."""
    words = diffusers_words()
    starts, ends = _starts(name), _ends(name)
    out, i = [], 0
    while i < len(name):
        if i in starts:
            for j in sorted((e for e in ends if e > i), reverse=True):
                spelled = words.get(name[i:j].lower())
                if spelled and spelled.lower() != spelled:  # a word with a case pattern of its own
                    out.append(spelled)
                    i = j
                    break
            else:
                out.append(name[i])
                i += 1
        else:
            out.append(name[i])
            i += 1
    return "".join(out)


def data_dims(analysis: dict) -> int | None:
    """1, 2 or 3: the spatial dimensions of the main input, from what first reads it (a ConvNd)
    or, failing that, its rank; None for token sequences (b, n, d) read by a Linear."""
    decisions = {d["name"]: d for d in analysis.get("input_decisions", [])}
    shapes: list[tuple[str, list[int]]] = []
    for entry in analysis.get("inputs", []):
        if entry.get("kind") == "file":
            shapes += [(k, v["shape"]) for k, v in entry.get("arguments", {}).items() if "shape" in v]
        elif entry.get("kind") == "randn":
            shapes.append((entry["name"], entry["shape"]))
    for name, _ in shapes:
        dims = decisions.get(name, {}).get("conv_dims")
        if dims in (1, 2, 3):
            return dims
    if not shapes:
        return None
    name, shape = max(shapes, key=lambda s: len(s[1]))
    if len(shape) == 5:
        return 3
    if len(shape) == 4:
        return 2
    return None  # (b, n, d) token sequences, or channels-first sequences no Conv1d reads


def split_suffix(name: str) -> str:
    """The base of a reference class name: without a trailing Model/Network and 1D/2D/3D."""
    base = re.sub(r"(Model|Network)(?=(V\d+)?$)", "", name) or name  # ...ModelV1 -> ...V1
    base = re.sub(r"_?[123][dD]$", "", base) or base
    return base


def snake_case(name: str) -> str:
    """TinyDiT -> tiny_dit, UNet -> unet, PixArtAlpha -> pix_art_alpha, SD3 -> sd3."""
    tokens = re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z]*|[a-z]+|\d+", name)
    words: list[str] = []
    for i, tok in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        starts_word = following[:1].isupper() and following[1:2].islower()  # U + Net, U + Vit
        ends_word = bool(words) and (words[-1] + tok).lower() in diffusers_words()  # Di + T
        if words and (tok.isdigit() or (len(tok) == 1 and tok.isupper() and (ends_word or not starts_word))):
            words[-1] += tok  # a number or a lone capital (DiT, 2D) belongs to the word before it
        elif words and len(words[-1]) == 1 and words[-1].isupper():
            words[-1] += tok
        else:
            words.append(tok)
    return "_".join(w.lower() for w in words)


AUTOENCODER_WORDS = {"autoencoder", "auto", "encoder", "vae", "kl", "ae"}


def autoencoder_kind(sources: list[str], class_name: str) -> str | None:
    """'kl' when `class_name` has `encode` and `decode` methods and the code samples a diagonal
    Gaussian (a `logvar` and normal noise drawn with randn), 'plain' for encode/decode alone,
    None for anything else (parsing only)."""
    import ast

    methods: set[str] = set()
    gaussian = {"logvar": False, "randn": False}
    for text in sources:
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == class_name:
                methods |= {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
            if name:
                gaussian["logvar"] |= name.lower().replace("_", "") == "logvar"
                gaussian["randn"] |= name in ("randn", "randn_like")
    if not {"encode", "decode"} <= methods:
        return None
    return "kl" if all(gaussian.values()) else "plain"


def without_autoencoder_words(name: str) -> str:
    """`AutoEncoder` -> '', `FluxVAE` -> `Flux`: what is left of a name once the words that only say
    "autoencoder" are gone (the class name says it already)."""
    parts = re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z]*|[a-z]+|\d+", name)
    return "".join(p[:1].upper() + p[1:] for p in parts if p.lower() not in AUTOENCODER_WORDS)
