"""Work out a model's forward inputs by probing it (runs sandboxed, on the reference).

Per forward argument: what the signature says (required, default, annotation), a first guess
from the config and the argument's name, then evidence from running the model. The tensors
passed in are tagged, the tags follow every torch operation, and forward pre-hooks read what
the first module that receives an argument's own tensor expects: Linear `in_features`, ConvNd
`in_channels` and dimensionality, Embedding `num_embeddings`, LayerNorm/GroupNorm sizes. A guess
that disagrees is corrected and the forward tried again. When no evidence decides, the
alternatives of the arguments the failing module received are tried, and the one that gets
furthest into the forward is kept. Optional arguments (default None) are provided only when the
model reads them; the decision and its reason are recorded per argument.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

from sandbox.forward_trace import Prober, Trial
from sandbox.seeded_inputs import make_inputs

BATCH = 2
CONTEXT_LEN = 8
MAX_TRIALS = 60

CHANNELS = ("in_channels", "in_chans", "input_channels", "channels", "io_channels", "latent_channels", "num_channels", "image_channels", "in_dim")
SIZE = ("sample_size", "input_size", "image_size", "img_size", "resolution")
FRAMES = ("num_frames", "frames", "video_length", "n_frames", "sample_frames", "temporal_size")
LENGTH = ("sample_length", "sequence_length", "audio_length", "seq_len", "length", "n_samples")
TOKENS = ("num_patches", "num_tokens", "n_tokens", "max_seq_len", "num_image_tokens", "seq_len")
CONTEXT_DIM = ("context_dim", "cross_attention_dim", "encoder_dim", "text_dim", "cond_token_dim", "encoder_hidden_dim",
               "dim_text", "text_embed_dim", "txt_dim", "encoder_hid_dim")
CLASSES = ("num_classes", "n_classes", "class_num", "num_labels")

IMAGE_NAMES = {"x", "img", "image", "images", "latents", "latent", "sample", "samples", "hidden_states", "z", "x_t", "xt",
               "noisy", "input", "inp", "image_tokens", "video", "videos", "audio", "tokens"}
TIME_NAMES = {"t", "time", "times", "timestep", "timesteps", "sigma", "sigmas", "noise_level", "noise_levels", "time_cond", "c_noise"}
LABEL_NAMES = {"y", "class_labels", "labels", "label", "class_label", "cls", "class_cond", "class_idx", "classes"}
CONTEXT_NAMES = {"context", "encoder_hidden_states", "cond", "text_emb", "text_embeds", "txt", "cross_attn_cond", "text_tokens",
                 "cond_tokens", "encoder_states", "prompt_embeds", "text", "c_crossattn", "crossattn_cond"}
SIZE_NAMES = {"height", "width", "h", "w", "H", "W", "img_size", "size"}
FRAME_NAMES = {"num_frames", "frames", "n_frames", "f", "T"}


class UndecidedInputs(Exception):
    """Some argument's input could not be worked out; the message names it."""


class MissingPackage(UndecidedInputs):
    """The forward imports a package that is not installed: no input can make it run."""


@dataclass
class Param:
    name: str
    kind: str
    required: bool
    default: Any
    annotation: str

    @property
    def role(self) -> str:
        n, a = self.name, self.annotation
        if "mask" in n.lower():
            return "mask"
        if n in TIME_NAMES:
            return "time"
        if n in LABEL_NAMES:
            return "label"
        if n in CONTEXT_NAMES:
            return "context"
        if re.search(r"\b(int|bool|float|str)\b", a) and "Tensor" not in a:
            return "scalar"
        if n in SIZE_NAMES | FRAME_NAMES and "Tensor" not in a:
            return "scalar"
        if re.search(r"\b[Tt]uple\b", a):
            return "tuple"
        return "tensor"


def signature_params(model) -> list[Param]:
    out = []
    for p in inspect.signature(model.forward).parameters.values():
        annotation = "" if p.annotation is inspect.Parameter.empty else (p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(p.annotation))
        default = None if p.default is inspect.Parameter.empty else p.default
        out.append(Param(p.name, p.kind.name, p.default is inspect.Parameter.empty, default, annotation))
    return out


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    """Config keys at any depth (the outermost wins), for nested training configs."""
    out: dict[str, Any] = {}
    stack = [config]
    while stack:
        d = stack.pop(0)
        for k, v in d.items():
            out.setdefault(k, v)
            if isinstance(v, dict):
                stack.append(v)
    return out


def _int(config: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for k in keys:
        v = config.get(k)
        if isinstance(v, bool):
            continue
        if isinstance(v, int) and v > 0:
            return v
        if isinstance(v, (list, tuple)) and v and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            return v[0]
    return None


@dataclass
class Sizes:
    channels: int
    size: int
    frames: int
    length: int
    tokens: int
    context_dim: int | None
    classes: int | None
    dims: int  # 1, 2 or 3: the data the config suggests

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sizes:
        c = _flat(config)
        dims = 3 if _int(c, FRAMES) else 1 if _int(c, ("sample_length", "sequence_length", "audio_length", "io_channels")) else 2
        return cls(
            channels=_int(c, CHANNELS) or 4, size=min(_int(c, SIZE) or 16, 64), frames=_int(c, FRAMES) or 4,
            length=_int(c, LENGTH) or 32, tokens=_int(c, TOKENS) or 16, context_dim=_int(c, CONTEXT_DIM),
            classes=_int(c, CLASSES), dims=dims,
        )

    def spatial(self, k: int, size: int | None = None) -> list[int]:
        s = size or self.size
        return {1: [self.length if size is None else size], 2: [s, s], 3: [self.frames, s, s]}[k]


def corrected(entry: dict, consumer: dict, sizes: Sizes) -> dict | None:
    """The entry the first consumer of the argument's own tensor asks for, or None if it agrees."""
    shape = list(entry.get("shape") or [BATCH])
    kind = entry["kind"]
    new = dict(entry)
    if "dims" in consumer:  # ConvNd: batch, channels, k spatial dims
        k = consumer["dims"]
        spatial = shape[2:] if len(shape) == k + 2 else sizes.spatial(k)
        new.update(kind="randn", shape=[BATCH, consumer["in_channels"], *spatial])
        new.pop("low", None), new.pop("high", None), new.pop("mode", None)
    elif "in_features" in consumer:
        f = consumer["in_features"]
        if len(shape) >= 4:
            shape = [BATCH, sizes.tokens, f]
        elif len(shape) == 1:
            shape = [BATCH, f]
        else:
            shape = [*shape[:-1], f]
        if kind not in ("randn", "uniform"):
            new = {"kind": "randn"}
        new["shape"] = shape
    elif "num_embeddings" in consumer:
        new = {"kind": "randint", "shape": shape if len(shape) <= 2 else [BATCH], "low": 0, "high": consumer["num_embeddings"]}
    elif "normalized_shape" in consumer:
        ns = consumer["normalized_shape"]
        if len(shape) >= 4 and len(ns) == 1:  # an image guess read as tokens
            shape = [BATCH, sizes.tokens, *ns]
        else:
            shape = [*shape[: -len(ns)], *ns] if len(shape) > len(ns) else [BATCH, *ns]
        new = {"kind": "randn", "shape": shape}
    elif "num_channels" in consumer:
        if len(shape) < 2:
            shape = [BATCH, consumer["num_channels"], *sizes.spatial(sizes.dims)]
        shape[1] = consumer["num_channels"]
        new = {"kind": "randn", "shape": shape}
    new = {k: v for k, v in new.items() if k != "why"}
    old = {k: v for k, v in entry.items() if k != "why"}
    return new if new != old else None


def corrected_from_reader(entry: dict, reader: dict) -> dict | None:
    """A Linear that reads something made from the argument (reshaped, not only cast) and got
    the argument's own last dim: the argument's features are what the Linear takes."""
    shape = entry.get("shape") or []
    f = reader.get("in_features")
    received = reader.get("received") or []
    if f is None or len(shape) < 2 or not received or received[-1] != shape[-1] or shape[-1] == f:
        return None
    return {**{k: v for k, v in entry.items() if k != "why"}, "shape": [*shape[:-1], f]}


class InputSearch:
    """The search itself: guesses, evidence, alternatives; one Prober underneath."""

    def __init__(self, prober: Prober, params: list[Param], config: dict[str, Any]):
        self.prober = prober
        self.params = [p for p in params if p.kind not in ("VAR_POSITIONAL", "VAR_KEYWORD")]
        self.sizes = Sizes.from_config(config)
        self.trials = 0
        self.decisions: dict[str, dict] = {}
        self.primary = self._primary()

    def _primary(self) -> str | None:
        tensors = [p for p in self.params if p.role == "tensor"]
        named = [p for p in tensors if p.name in IMAGE_NAMES]
        pick = (named or [p for p in tensors if p.required] or tensors or [None])[0]
        return pick.name if pick else None

    # --- guesses -------------------------------------------------------------------------
    def guess(self, p: Param, state: dict[str, dict]) -> dict | None:
        s = self.sizes
        role = p.role
        if p.name == self.primary:
            if s.dims == 3:
                return {"kind": "randn", "shape": [BATCH, s.channels, s.frames, s.size, s.size]}
            if s.dims == 1:
                return {"kind": "randn", "shape": [BATCH, s.channels, s.length]}
            return {"kind": "randn", "shape": [BATCH, s.channels, s.size, s.size]}
        if role == "time":
            return {"kind": "uniform", "shape": [BATCH], "low": 0.0, "high": 1000.0 if "step" in p.name else 1.0}
        if role == "label":
            return {"kind": "randint", "shape": [BATCH], "low": 0, "high": s.classes or 10}
        if role == "context":
            return {"kind": "randn", "shape": [BATCH, CONTEXT_LEN, s.context_dim or 32]}
        if role == "mask":
            return {"kind": "mask", "shape": [BATCH, self._mask_length(state)], "mode": "bool"}
        if role == "scalar":
            if p.name in FRAME_NAMES:
                return {"kind": "value", "value": s.frames}
            if p.name in SIZE_NAMES or "int" in p.annotation:
                return {"kind": "value", "value": s.size}
            if "bool" in p.annotation:
                return {"kind": "value", "value": False}
            return None
        if role == "tuple":
            count = p.annotation.count("Tensor")
            if count < 1:
                return None
            return {"kind": "tuple", "items": [{"kind": "randn", "shape": [BATCH, 32]} for _ in range(count)]}
        return {"kind": "randn", "shape": [BATCH, 32]}

    def _mask_length(self, state: dict[str, dict]) -> int:
        for p in self.params:
            e = state.get(p.name)
            if e and p.role == "context" and len(e.get("shape", [])) == 3:
                return e["shape"][1]
        e = state.get(self.primary or "")
        if e and len(e.get("shape", [])) == 3 and "dims" not in (self.decisions.get(self.primary, {}).get("consumer") or {}):
            return e["shape"][1]
        return CONTEXT_LEN

    def alternatives(self, p: Param, entry: dict) -> list[dict]:
        s, role = self.sizes, p.role
        out: list[dict] = []
        if role == "mask":
            n = entry["shape"][-1]
            out = [{"kind": "mask", "shape": [BATCH, n], "mode": "additive"}, {"kind": "mask", "shape": [BATCH, 1, n], "mode": "bool"},
                   {"kind": "mask", "shape": [BATCH, n, n], "mode": "bool"}, {"kind": "mask", "shape": [BATCH, 1, n, n], "mode": "additive"}]
        elif role == "scalar":
            out = [{"kind": "value", "value": v} for v in (s.size, 32, s.frames, 8, 1)]
        elif role == "time":
            out = [{"kind": "uniform", "shape": [BATCH], "low": 0.0, "high": 1.0}, {"kind": "randint", "shape": [BATCH], "low": 0, "high": 1000},
                   {"kind": "uniform", "shape": [BATCH, 1], "low": 0.0, "high": 1.0}, {"kind": "uniform", "shape": [], "low": 0.0, "high": 1.0}]
        elif role == "label":
            out = [{"kind": "randint", "shape": [BATCH], "low": 0, "high": entry.get("high", 10)}, {"kind": "randint", "shape": [BATCH, CONTEXT_LEN], "low": 0, "high": entry.get("high", 10)}]
        else:
            c = entry["shape"][1] if len(entry.get("shape", [])) >= 3 and entry["kind"] == "randn" else s.channels
            last = entry["shape"][-1] if entry.get("shape") else 32
            for size in dict.fromkeys([s.size, 32, 64, 8, 16]):
                out.append({"kind": "randn", "shape": [BATCH, c, size, size]})
            for size in dict.fromkeys([s.size, 32, 8, 16]):
                out.append({"kind": "randn", "shape": [BATCH, c, s.frames, size, size]})
            for n in dict.fromkeys([s.length, 64, 128, 16]):
                out.append({"kind": "randn", "shape": [BATCH, c, n]})
            for n in dict.fromkeys([s.tokens, CONTEXT_LEN, 64, 16]):
                out.append({"kind": "randn", "shape": [BATCH, n, last]})
            out.append({"kind": "randn", "shape": [BATCH, last]})
        old = {k: v for k, v in entry.items() if k != "why"}
        return [a for a in out if a != old]

    # --- running -------------------------------------------------------------------------
    def run(self, state: dict[str, dict]) -> Trial:
        self.trials += 1
        recipe = [{"name": n, **e} for n, e in state.items()]
        return self.prober.trial(make_inputs(recipe, 0))

    def settle(self, state: dict[str, dict], budget: int) -> tuple[Trial, dict[str, dict]]:
        """Evidence rounds, then alternatives, until the forward runs or nothing helps."""
        applied: set[tuple[str, str]] = set()
        trial = self.run(state)
        spent = 1
        while spent < budget:
            changes = {}
            readers = {} if trial.ok else {n: ("reader", r) for n, r in trial.readers.items()}  # weaker: only to fix a failure
            evidence = {**readers, **{n: ("own", c) for n, c in trial.consumers.items()}}
            for name, (how, consumer) in evidence.items():
                if name in state:
                    new = corrected(state[name], consumer, self.sizes) if how == "own" else corrected_from_reader(state[name], consumer)
                    if new is not None and (name, repr(new)) not in applied:
                        changes[name] = new
                        applied.add((name, repr(new)))
            if changes:
                state = {**state, **changes}
                trial = self.run(state)
                spent += 1
                continue
            if trial.ok:
                break
            better = self._climb(state, trial, budget - spent)
            if better is None:
                break
            state, trial, used = better
            spent += used
        return trial, state

    def _climb(self, state: dict[str, dict], failed: Trial, budget: int):
        names = [n for n in failed.blamed if n in state] or ([self.primary] if self.primary in state else list(state))
        params = {p.name: p for p in self.params}
        used = 0
        best = None
        for name in names:
            for alt in self.alternatives(params[name], state[name]):
                if used >= budget:
                    break
                candidate = {**state, name: alt}
                trial = self.run(candidate)
                used += 1
                if trial.ok:
                    return candidate, trial, used
                if trial.progress > (best[1].progress if best else failed.progress):
                    best = (candidate, trial)
            if best:
                return best[0], best[1], used
        return None

    # --- the whole decision --------------------------------------------------------------
    def decide(self) -> tuple[list[dict], list[dict]]:
        """(recipe in signature order, one decision per argument)."""
        state: dict[str, dict] = {}
        for p in self.params:
            if p.kind == "POSITIONAL_ONLY":
                raise UndecidedInputs(f"forward argument {p.name!r} is positional-only; parity passes keyword arguments")
            if not p.required and p.default is not None:
                self.decisions[p.name] = {"name": p.name, "decision": "left out", "reason": f"has a default ({_short(p.default)})"}
                continue
            if not p.required and p.role not in ("time", "context") and not (p.role == "label" and self.sizes.classes):
                continue  # optional: tried once the required ones run
            g = self.guess(p, state)
            if g is None:
                raise UndecidedInputs(f"cannot tell what forward argument {p.name!r} ({p.annotation or 'no annotation'}) takes")
            state[p.name] = g
        trial, state = self.settle(state, MAX_TRIALS // 2)
        if not trial.ok:
            state, trial = self._drop_failing_optionals(state, trial)
        if not trial.ok and re.match(r"(ModuleNotFoundError|ImportError):", trial.error):
            raise MissingPackage(trial.error)
        if not trial.ok:
            blamed = [n for n in trial.blamed if n in state] or [n for n in state]
            tried = ", ".join(f"{n}={_describe(state[n])}" for n in blamed)
            raise UndecidedInputs(f"forward argument{'s' if len(blamed) > 1 else ''} {', '.join(map(repr, blamed))}: last tried {tried}; {trial.error}")
        state, trial = self._widen(state, trial)
        for p in self.params:
            if p.name in state and not p.required and p.name not in trial.touched:
                state.pop(p.name)
                self.decisions[p.name] = {"name": p.name, "decision": "left out", "reason": "optional (default None) and the model does not read it"}
        for p in self.params:
            if p.name in state or p.name in self.decisions or p.required:
                continue
            if p.role == "mask":
                self.decisions[p.name] = {"name": p.name, "decision": "left out", "reason": "optional mask (default None): every position attends"}
                continue
            g = self.guess(p, state)
            if g is None:
                self.decisions[p.name] = {"name": p.name, "decision": "left out", "reason": "optional (default None), kind unknown"}
                continue
            t2, s2 = self.settle({**state, p.name: g}, 8)
            if t2.ok and p.name in t2.touched:
                state, trial = s2, t2
            else:
                why = t2.error if not t2.ok else "the model does not read it"
                self.decisions[p.name] = {"name": p.name, "decision": "left out", "reason": f"optional (default None); providing it: {why}"}
        recipe = []
        for p in self.params:
            if p.name not in state:
                continue
            entry = state[p.name]
            consumer = trial.consumers.get(p.name) or trial.readers.get(p.name)
            why = ("required" if p.required else "optional, read by the model") + "; " + _evidence(p, consumer, entry, trial.first_op.get(p.name))
            recipe.append({"name": p.name, **entry, "why": why})
            self.decisions[p.name] = {"name": p.name, "decision": "provided", "reason": why, "consumer": consumer}
        return recipe, [self.decisions[p.name] for p in self.params if p.name in self.decisions]

    def _widen(self, state: dict[str, dict], trial: Trial) -> tuple[dict[str, dict], Trial]:
        """A model that runs on images may be a video model that also takes images (frames
        folded into the batch): when frames run too and reach more of the model, they win, so
        parity exercises the temporal layers as well."""
        entry = state.get(self.primary or "")
        if not entry or entry["kind"] != "randn" or len(entry["shape"]) != 4:
            return state, trial
        b, c, h, w = entry["shape"]
        wider = {**state, self.primary: {"kind": "randn", "shape": [b, c, self.sizes.frames, h, w]}}
        t2, s2 = self.settle(wider, 6)
        if t2.ok and t2.modules > trial.modules:
            return s2, t2
        return state, trial

    def _drop_failing_optionals(self, state, trial):
        for p in self.params:
            if not p.required and p.name in state and p.name in trial.blamed:
                reduced = {k: v for k, v in state.items() if k != p.name}
                t2, s2 = self.settle(reduced, 10)
                if t2.ok:
                    self.decisions[p.name] = {"name": p.name, "decision": "left out", "reason": f"optional (default None); providing it: {trial.error}"}
                    return s2, t2
        return state, trial


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(entry: dict) -> str:
    if entry["kind"] == "value":
        return repr(entry["value"])
    if entry["kind"] == "tuple":
        return "(" + ", ".join(_describe(i) for i in entry["items"]) + ")"
    return f"{entry['kind']}{entry.get('shape')}"


def _evidence(p: Param, consumer: dict | None, entry: dict, first_op: str | None = None) -> str:
    if entry["kind"] == "mask":
        return f"{entry['mode']} mask" + (f", first used by {first_op}" if first_op else "")
    if consumer:
        attrs = ", ".join(f"{k}={v}" for k, v in consumer.items() if k in ("in_channels", "in_features", "num_embeddings", "normalized_shape", "num_channels"))
        first = "first read by" if "shape" in consumer else "reaches"
        return f"{first} {consumer['type']}({attrs}) at {consumer['module']}"
    if entry["kind"] == "uniform":
        return f"{p.role if p.role == 'time' else 'values'} in [{entry['low']}, {entry['high']})"
    if entry["kind"] == "value":
        return f"size from the config ({entry['value']})"
    return "shape from the config and the forward running"
