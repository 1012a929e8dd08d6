"""Run the structural porter on real reference models from registry packages.

For each model it lays out a Hub-style folder (the package's own source files, a config.json
with a tiny configuration, random seeded weights made inside the sandbox since that runs the
third-party code), runs `integrate FOLDER --llm none`, and reports what the porter inlined,
rewrote and left, and the parity it measured.

    python benchmarks/porter_real_models.py [--markdown OUT.md] [--keep DIR]

Sources: the original latent-diffusion code (stable-diffusion-sdkit, installed with --no-deps)
and lucidrains' denoising-diffusion-pytorch 2.3.4 (downloaded from PyPI with pip, not installed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sandbox  # noqa: E402

MAKE_WEIGHTS = """
import importlib, json, sys, torch
from safetensors.torch import save_file
sys.path.insert(0, ".")
config = json.load(open("config.json"))
cls = getattr(importlib.import_module({module!r}), config["architectures"][0])
import inspect
defaults = {{p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()}}
kwargs = {{k: tuple(v) if isinstance(v, list) and isinstance(defaults.get(k), tuple) else v
          for k, v in config.items() if k not in {ignored!r}}}
model = cls(**kwargs)
g = torch.Generator().manual_seed(0)
state = {{k: (torch.randn(v.shape, generator=g) * 0.2).contiguous() if v.is_floating_point() else v.contiguous()
          for k, v in model.state_dict().items()}}
save_file(state, "model.safetensors")
print(len(state), "tensors")
"""

IGNORED = ["architectures", "model_type", "sample_size"]


def ldm_unet(work: Path) -> tuple[Path, str]:
    spec = importlib.util.find_spec("ldm")
    if spec is None:
        raise SystemExit("the ldm package is missing: pip install --no-deps stable-diffusion-sdkit==2.1.5")
    src = Path(spec.submodule_search_locations[0])
    repo = work / "ldm-unet"
    for rel in ["util.py", "modules/attention.py", "modules/diffusionmodules/openaimodel.py", "modules/diffusionmodules/util.py"]:
        (repo / "ldm" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, repo / "ldm" / rel)
    for pkg in ["ldm", "ldm/modules", "ldm/modules/diffusionmodules"]:
        (repo / pkg / "__init__.py").touch()
    config = {
        "architectures": ["UNetModel"], "image_size": 8, "in_channels": 4, "out_channels": 4, "model_channels": 32,
        "attention_resolutions": [1], "num_res_blocks": 1, "channel_mult": [1, 2], "num_head_channels": 16,
        "use_spatial_transformer": True, "use_linear_in_transformer": True, "transformer_depth": 1,
        "context_dim": 24, "legacy": False,
    }
    (repo / "config.json").write_text(json.dumps(config, indent=2))
    (repo / "README.md").write_text("# latent-diffusion UNetModel (tiny, random weights)\n\nOriginal code from the ldm package.\n")
    return repo, "ldm.modules.diffusionmodules.openaimodel"


def _ddp_wheel(work: Path) -> zipfile.ZipFile:
    dest = work / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "denoising-diffusion-pytorch==2.3.4", "-d", str(dest)], check=True, capture_output=True)
    return zipfile.ZipFile(next(dest.glob("denoising_diffusion_pytorch-*.whl")))


def uvit(work: Path) -> tuple[Path, str]:
    repo = work / "uvit"
    repo.mkdir()
    with _ddp_wheel(work) as wheel:
        (repo / "simple_diffusion.py").write_bytes(wheel.read("denoising_diffusion_pytorch/simple_diffusion.py"))
    config = {
        "architectures": ["UViT"], "dim": 32, "dim_mults": [1, 2], "channels": 3, "vit_depth": 1,
        "vit_dropout": 0.0, "attn_dim_head": 16, "attn_heads": 2, "ff_mult": 2, "sample_size": 16,
    }
    (repo / "config.json").write_text(json.dumps(config, indent=2))
    (repo / "README.md").write_text("# UViT from simple diffusion (lucidrains, tiny, random weights)\n")
    return repo, "simple_diffusion"


def karras_unet(work: Path) -> tuple[Path, str]:
    repo = work / "karras-unet"
    (repo / "denoising_diffusion_pytorch").mkdir(parents=True)
    with _ddp_wheel(work) as wheel:
        for name in ("karras_unet.py", "attend.py"):
            (repo / "denoising_diffusion_pytorch" / name).write_bytes(wheel.read(f"denoising_diffusion_pytorch/{name}"))
    (repo / "denoising_diffusion_pytorch" / "__init__.py").touch()  # the package's own __init__ pulls in its trainer
    config = {
        "architectures": ["KarrasUnet"], "image_size": 16, "dim": 16, "dim_max": 32, "channels": 3,
        "num_downsamples": 2, "num_blocks_per_stage": 1, "attn_res": [8], "attn_dim_head": 8, "dropout": 0.0,
    }
    (repo / "config.json").write_text(json.dumps(config, indent=2))
    (repo / "README.md").write_text("# KarrasUnet, EDM2-style (lucidrains, tiny, random weights)\n")
    return repo, "denoising_diffusion_pytorch.karras_unet"


MODELS = {"ldm UNetModel": ldm_unet, "lucidrains UViT": uvit, "lucidrains KarrasUnet": karras_unet}


def run_model(name: str, build, work: Path) -> dict:
    repo, module = build(work)
    res = sandbox.run([sys.executable, "-c", MAKE_WEIGHTS.format(module=module, ignored=IGNORED)], repo, limits=sandbox.Limits(wall_s=300))
    if not res.ok:
        return {"model": name, "error": f"weights: {res.one_line_error()}"}
    out = work / "out" / repo.name
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli", str(repo), "--out", str(out), "--llm", "none", "--json", "--runs-dir", str(work / "runs")],
        capture_output=True, text=True, cwd=work,
    )
    try:
        summary = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"model": name, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    run = json.loads((Path(summary["run_dir"]) / "run.json").read_text())
    port = run["stages"].get("port", {}).get("result") or {}
    return {
        "model": name,
        "exit": proc.returncode,
        "status": summary["status"],
        "error": summary.get("error"),
        "stage_reached": summary["stage_reached"],
        "parity": summary.get("parity"),
        "port_parity": port.get("parity"),
        "codemods": port.get("codemods"),
        "findings": [f"{f['rule']} {f['message']}" for f in port.get("left_for_refinement", [])],
    }


def markdown(rows: list[dict]) -> str:
    out = []
    for r in rows:
        out.append(f"### {r['model']}\n")
        if r.get("codemods") is None:
            out.append(f"Did not get through the port: {r.get('error')}\n")
            continue
        c = r["codemods"]
        p = r.get("parity") or r.get("port_parity") or {}
        out.append(f"- run: exit {r['exit']}, {r['status']} (reached {r['stage_reached']})" + (f": {r['error']}" if r.get("error") else ""))
        if p:
            out.append(f"- parity after the codemods: {'passed' if p.get('passed') else 'FAILED'}, max abs {p.get('max_abs_diff'):.3g}, cosine {p.get('cosine'):.8f}")
        inlined = ", ".join("`{}` ({} definitions)".format(m["module"], len(m["names"])) for m in c["inlined"]) or "nothing"
        out.append(f"- inlined: {inlined}")
        if c.get("renamed"):
            renamed = ", ".join("`{}` from `{}` -> `{}`".format(x["from"], x["module"], x["to"]) for x in c["renamed"])
            out.append(f"- renamed on collision: {renamed}")
        out.append(f"- rewritten: {len(c['converted'])} calls")
        for item in c["converted"]:
            out.append(f"  - `{item['file']}:{item['line']}` `{item['from']}` -> `{item['to']}`")
        out.append(f"- left: {len(c['left'])}")
        for item in c["left"]:
            out.append(f"  - `{item['file']}:{item['line']}` `{item['what']}`: {item['reason']}")
        out.append(f"- dropped imports: {', '.join(c['dropped_imports']) or 'none'}")
        out.append(f"- convention findings on the port: {len(r['findings'])}")
        for f in r["findings"]:
            out.append(f"  - {f}")
        out.append("")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", help="write the per-model report here")
    parser.add_argument("--keep", help="build in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="integrate-real-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for name, build in MODELS.items():
            row = run_model(name, build, work)
            rows.append(row)
            p = row.get("parity") or row.get("port_parity") or {}
            c = row.get("codemods") or {}
            print(f"{name:<24} {row.get('status', 'error'):<7} parity {'passed' if p.get('passed') else 'FAILED' if p else '-':<7} "
                  f"max abs {p.get('max_abs_diff', float('nan')):.3g}  inlined {len(c.get('inlined', []))}  rewritten {len(c.get('converted', []))}  left {len(c.get('left', []))}"
                  + (f"  error: {row['error']}" if row.get("error") else ""))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.markdown:
        Path(args.markdown).write_text(markdown(rows))
    return 0 if all(r.get("status") == "passed" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
