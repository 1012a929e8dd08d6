"""The `integrate` command line."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path

import click
from rich.console import Console

from agent import __version__
from agent.errors import IntegrateError
from agent.llm.backends import DEFAULT_MODEL, DEFAULT_TIMEOUT_S
from agent.llm.limits import LoopLimits

LLM_CHOICES = "auto|anthropic|none|scripted:FILE"


class DefaultGroup(click.Group):
    """`integrate SOURCE` runs the main flow; `integrate <command>` runs a subcommand."""

    default_command = "run"
    global_flags = ("--allow-reduced-isolation",)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # A global flag may be written anywhere before `--`: it moves in front of the command.
        end = args.index("--") if "--" in args else len(args)
        flags = [a for a in args[:end] if a in self.global_flags]
        args = [*flags, *(a for a in args[:end] if a not in self.global_flags), *args[end:]]
        rest = args[len(flags):]
        if rest and rest[0] not in self.commands and rest[0] not in ("--help", "-h", "--version"):
            args = [*flags, self.default_command, *rest]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage("integrate", "SOURCE [OPTIONS]  |  integrate COMMAND [ARGS]...")


def _console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="integrate")
@click.option("--allow-reduced-isolation", is_flag=True,
              help="Without bubblewrap, run untrusted code anyway, with reduced isolation (it can write files as this user and reach host unix sockets); every report says so.")
def cli(allow_reduced_isolation: bool) -> None:
    """Port a diffusion model into diffusers, prove the port computes what the reference
    computes, and prepare a pull request.

    \b
    integrate SOURCE --out DIR          port into a new standalone folder (git repo)
    integrate SOURCE --target CHECKOUT  port onto a new branch of a diffusers checkout
    integrate resume RUN                continue a run that was interrupted
    integrate verify [PATH|PR]          re-measure every claim of a published branch or PR
    integrate parity SPEC.py            compare a reference and a candidate model
    integrate check PATH...             run the convention checks
    integrate convert CKPT... --out DIR convert weights with a _weight_mapping.py, streaming
    integrate sandbox -- CMD...         run a command in the sandbox (debugging)
    integrate bot serve|worker|workflow the issue-triggered bot

    SOURCE is a local folder laid out like a Hub repo, or a Hub id (org/name).
    """
    if allow_reduced_isolation:
        from sandbox.runner import allow_reduced_isolation as allow

        allow()


def _validate_llm(llm: str) -> str:
    if llm in ("auto", "none"):
        return llm
    if llm == "anthropic":
        if not os.environ.get("ANTHROPIC_API_KEY"):
            raise IntegrateError("--llm anthropic: ANTHROPIC_API_KEY is not set (or use --llm auto, which skips refinement without a key)")
        return llm
    if llm.startswith("scripted:"):
        script = Path(llm.removeprefix("scripted:"))
        if not script.is_file():
            raise IntegrateError(f"--llm scripted: script not found: {script}")
        from agent.llm.backends import BackendError, ScriptedBackend

        try:
            ScriptedBackend(script)  # parsed now, so a broken script fails before any work
        except BackendError as exc:
            raise IntegrateError(f"--llm scripted: {exc}") from None
        return f"scripted:{script.resolve()}"
    raise IntegrateError(f"--llm must be one of {LLM_CHOICES}, not {llm!r}")


def _refine_settings(llm: str, model: str, prices: str | None, limits: dict) -> dict:
    """Refinement settings, checked now so a bad price table fails before any work is done."""
    from agent.llm.cost import load_prices, prices_for

    if prices and not Path(prices).is_file():
        raise IntegrateError(f"--prices not found: {prices}")
    if llm != "none":
        prices_for(load_prices(prices), model)
    for name, value in limits.items():
        if value is not None and value <= 0:
            raise IntegrateError(f"--{name.replace('_', '-')} must be positive, not {value}")
    return {"model": model, "prices": str(Path(prices).resolve()) if prices else None, "limits": limits}


def _validate_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise IntegrateError("--device cuda: no CUDA device is visible on this machine")


@cli.command("run")
@click.argument("source")
@click.option("--reference", type=click.Path(), help="Folder or file with the reference model code, when SOURCE has none.")
@click.option("--target", type=click.Path(), help="A clean diffusers git checkout: the port goes on a new branch there.")
@click.option("--out", type=click.Path(), help="New (or empty) folder for a standalone port. Default: out/<model>.")
@click.option("--layout", type=click.Choice(["auto", "flat", "folder"]), default="auto", show_default=True,
              help="The model's files: one flat file, or a model folder (__init__.py, model.py, _weight_mapping.py, _metadata.py). auto: what --target's family folder already uses, flat for --out (docs/layout.md).")
@click.option("--llm", default="auto", show_default=True, metavar=LLM_CHOICES, help="LLM for the refinement step; auto uses anthropic when ANTHROPIC_API_KEY is set.")
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Anthropic model for refinement.")
@click.option("--max-turns", type=int, help=f"Refinement budget: model turns (default {LoopLimits.max_turns}).")
@click.option("--max-tokens", type=int, help=f"Refinement budget: input+output tokens summed over turns (default {LoopLimits.max_tokens:,}).")
@click.option("--max-dollars", type=float, help=f"Refinement budget: dollars, from usage and the price table (default {LoopLimits.max_dollars:g}).")
@click.option("--max-wall", type=float, help=f"Refinement budget: seconds of wall time (default {LoopLimits.max_wall_s:g}).")
@click.option("--llm-timeout", type=float, help=f"Seconds to wait for one model response before retrying (default {DEFAULT_TIMEOUT_S:g}).")
@click.option("--prices", type=click.Path(), help="JSON price table ($ per million tokens: input, output, cache_write, cache_read per model).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True, help="Where parity runs.")
@click.option("--inputs", "inputs_file", type=click.Path(), help="Python file defining inputs(seed) for the model's forward, as parity specs do (docs/inputs.md); wins over integrate_inputs.py in SOURCE and over inputs worked out from the model.")
@click.option("--compile-check", is_flag=True, help="Also check that torch.compile runs the port and matches (slow on CPU).")
@click.option("--revision", help="Hub revision (branch, tag or commit) for a Hub SOURCE.")
@click.option("--runs-dir", type=click.Path(), default="runs", show_default=True, help="Where run folders are created.")
@click.option("--run-id", help="Name of the run folder (default: <model>-<timestamp>).")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout.")
@click.option("--publish", "publish", multiple=True, metavar="bundle|github|hub",
              help="Where the result goes once parity passed: bundle (offline PR.md and patch, the default), github (push to a fork, open a draft PR; needs --target and GITHUB_TOKEN or a GitHub App), hub (converted weights as a Hub pull request; HF_TOKEN). Repeat or comma-separate for several.")
@click.option("--fork", metavar="OWNER/NAME", help="--publish github: the fork to push to (created through the API if missing). Default: your account's fork of the upstream.")
@click.option("--upstream", metavar="OWNER/NAME", help="--publish github: the repository the PR goes to. Default: the --target checkout's upstream/origin remote on GitHub, else huggingface/diffusers.")
@click.option("--label", "labels", multiple=True, metavar="NAME", help="--publish github: label for the PR (repeatable; default integrate-generated). Needs triage access upstream; skipped, and said, without it.")
@click.option("--hub-repo", metavar="OWNER/NAME", help="--publish hub: put the weights in this repo (created if missing) instead of diffusers/ of the SOURCE repo.")
@click.option("--dry-run", is_flag=True, help="With --publish github/hub: print every API call publishing would make (method, path, body keys) and make none; needs no token.")
def run_cmd(source, reference, target, out, layout, llm, model, max_turns, max_tokens, max_dollars, max_wall, llm_timeout, prices, device, inputs_file, compile_check, revision, runs_dir, run_id, as_json,
            publish, fork, upstream, labels, hub_repo, dry_run) -> None:
    """Port SOURCE into diffusers: resolve, analyze, plan, scaffold, port, refine, convert, verify, publish.

    Exits 0 only when parity passed; 1 when the port ran but parity (or the refinement) failed;
    2 when it could not run. Refinement is skipped, and says so, without an LLM.
    """
    from agent.publish.options import publish_options
    from agent.run_state import Run, slugify
    from agent.stages.resolve import is_hub_id
    from agent.workspace import check_out_dir, check_target

    publishing = publish_options(publish, fork, upstream, hub_repo, labels, dry_run,
                                 source_is_hub_id=not Path(source).is_dir() and is_hub_id(source), has_target=bool(target))
    llm = _validate_llm(llm)
    refine = _refine_settings(llm, model, prices, {"max_turns": max_turns, "max_tokens": max_tokens, "max_dollars": max_dollars, "max_wall_s": max_wall})
    if llm_timeout is not None and llm_timeout <= 0:
        raise IntegrateError(f"--llm-timeout must be positive, not {llm_timeout}")
    refine["timeout"] = llm_timeout
    if not Path(source).is_dir() and not is_hub_id(source):
        raise IntegrateError(f"source not found: {source} (not a folder, and not a Hub id like org/name)")
    if reference and not Path(reference).exists():
        raise IntegrateError(f"--reference not found: {reference}")
    if inputs_file and not Path(inputs_file).is_file():
        raise IntegrateError(f"--inputs file not found: {inputs_file}")
    if target and out:
        raise IntegrateError("use either --target (a diffusers checkout) or --out (a standalone folder), not both")
    if target:
        check_target(Path(target))
        target = str(Path(target).resolve())
    else:
        out = str(Path(out or Path("out") / slugify(source)).resolve())
        check_out_dir(Path(out))
    _validate_device(device)
    inputs = {
        "source": source if not Path(source).is_dir() else str(Path(source).resolve()),
        "reference": str(Path(reference).resolve()) if reference else None,
        "target": target,
        "out": out,
        "layout": layout,
        "llm": llm,
        "refine": refine,
        "device": device,
        "compile_check": compile_check,
        "revision": revision,
        "inputs_file": str(Path(inputs_file).resolve()) if inputs_file else None,
        "publish": publishing,
    }
    run = Run.create(Path(runs_dir), inputs, run_id)
    _execute(run, as_json)


@cli.command("resume")
@click.argument("run_dir", metavar="RUN", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout.")
def resume_cmd(run_dir, as_json) -> None:
    """Continue RUN (a folder under runs/) at the stage it reached; finished stages are kept."""
    from agent.run_state import Run

    run = Run.load(run_dir)
    if run.data["status"] == "passed":
        _console().print(f"run {run.id} already finished")
        _report(run, as_json)
        return
    run.data["status"] = "running"
    run.save()
    _execute(run, as_json)


def _execute(run, as_json: bool) -> None:
    from agent.orchestrator import execute

    console = _console()
    console.print(f"[bold]integrate[/bold] {run.inputs['source']}  (run {run.id}, folder {run.dir})")
    try:
        execute(run, console)
    except IntegrateError:
        _report(run, as_json)
        raise
    except KeyboardInterrupt:
        console.print(f"\ninterrupted; continue with: integrate resume {shlex.quote(str(run.dir))}")
        sys.exit(130)
    _report(run, as_json)


def _report(run, as_json: bool) -> None:
    from agent.orchestrator import summary

    s = summary(run)
    if as_json:
        click.echo(json.dumps(s, indent=2, default=str))
        return
    console = _console()
    if s.get("parity"):
        p = s["parity"]
        verdict = "[green]passed[/green]" if p["passed"] else "[red]FAILED[/red]"
        console.print(f"parity {verdict}: max abs {p['max_abs_diff']:.3g}, mean abs {p['mean_abs_diff']:.3g}, cosine {p['cosine']:.8f} ({p['dtype']}, {p['device']})")
    if s.get("refinement"):
        console.print(f"refinement: {s['refinement']['status']} ({s['refinement']['reason']})")
        if s["refinement"].get("trajectory"):
            console.print(f"trajectory: {s['refinement']['trajectory']}")
    if s.get("publish"):
        pub = s["publish"]
        where = pub.get("out") or f"branch {pub['branch']} in {pub['target']}"
        console.print(f"port: {where}\nPR description: {pub['pr_body']}")
        remote = pub.get("remote") or {}
        if remote.get("hub"):
            console.print(f"Hub pull request: {remote['hub']['pr_url']}")
        if remote.get("github"):
            gh = remote["github"]
            console.print(f"GitHub pull request ({'draft, ' if gh['draft'] else ''}{'opened' if gh['created'] else 'updated'}): {gh['pr_url']}")
            for note in gh.get("notes", []):
                console.print(f"[yellow]note:[/yellow] {note}")
        if remote.get("dry_run"):
            console.print(f"dry run: {len(remote['dry_run'])} calls printed above, none made")
    if s["status"] != "passed" and s.get("error"):
        if s["stage_reached"] in ("resolve", "analyze"):
            # the run holds a copy of the source taken when it started: resume would not see a fix
            console.print(f"run {run.id} stopped at {s['stage_reached']}; after fixing the source, run the same command again")
        else:
            console.print(f"run {run.id} stopped at {s['stage_reached']}; after fixing, continue with: integrate resume {shlex.quote(str(run.dir))}")


@cli.command("parity")
@click.argument("spec", type=click.Path())
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="float32", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the first input set.")
@click.option("--no-fresh-seed", is_flag=True, help="Judge on --seed only (by default a second input set comes from a seed drawn at run time).")
@click.option("--json", "json_out", type=click.Path(), help="Write the full report (JSON) here.")
@click.option("--plot", "plot_out", type=click.Path(), help="Write a PNG of max abs diff per aligned layer here.")
@click.option("--reference-path", multiple=True, type=click.Path(), help="Host path only the reference side may read (repeatable).")
@click.option("--candidate-path", multiple=True, type=click.Path(), help="Host path only the candidate side may read (repeatable).")
@click.option("--allow-read", multiple=True, type=click.Path(), help="Host path both sides may read (repeatable).")
@click.option("--timeout", type=float, default=1800, show_default=True, help="Wall-time limit of each side, in seconds.")
def parity_cmd(spec, device, dtype, seed, no_fresh_seed, json_out, plot_out, reference_path, candidate_path, allow_read, timeout) -> None:
    """Compare reference() and candidate() from SPEC.py on seeded inputs.

    The reference and the candidate each run in their own sandbox and see only the spec's
    folder, their own paths and their work folder; the verdict is computed outside both from
    the files they leave. Exit 0 passed, 1 not passed, 2 could not run. The spec contract is
    in docs/parity.md.
    """
    import tempfile

    import sandbox
    from agent.parity_run import SidePaths, run_parity_sandboxed

    spec_path = Path(spec)
    if not spec_path.is_file():
        raise IntegrateError(f"spec not found: {spec}")
    for p in (*reference_path, *candidate_path, *allow_read):
        if not Path(p).exists():
            raise IntegrateError(f"path not found: {p}")
    paths = SidePaths(
        reference=[Path(p).resolve() for p in reference_path],
        candidate=[Path(p).resolve() for p in candidate_path],
        shared=[Path(p).resolve() for p in allow_read],
    )
    with tempfile.TemporaryDirectory(prefix="integrate-parity-") as scratch:
        work = Path(scratch)
        report = run_parity_sandboxed(
            spec_path, work, paths, device=device, dtype=dtype, seed=seed, fresh=not no_fresh_seed,
            limits=sandbox.Limits(wall_s=timeout),
        )
        verdict = "passed" if report["passed"] else "NOT passed"
        click.echo(f"parity {verdict}: max abs {report['max_abs_diff']}, mean abs {report['mean_abs_diff']}, cosine {report['cosine']} "
                   f"(seeds {', '.join(map(str, report['seeds']))}; {len(report['outputs'])} output tensors compared)")
        for problem in report["problems"]:
            click.echo(f"  - {problem}")
        if report["first_divergence"]:
            fd = report["first_divergence"]
            click.echo(f"  first divergence: {fd['reference_module']} -> {fd['candidate_module']} (max abs {fd['max_abs_diff']})")
        if json_out:
            _write_user_file(Path(json_out), (json.dumps(report, indent=2) + "\n").encode())
        if plot_out:
            _write_user_file(Path(plot_out), (work / "parity_layers.png").read_bytes())
        if report["sandbox"]["isolation"] != "full":
            _console().print(f"[yellow]reduced isolation:[/yellow] {'; '.join(report['sandbox']['notes'])}")
    sys.exit(0 if report["passed"] else 1)


def _write_user_file(path: Path, data: bytes) -> None:
    """An output the user named: replaced as a new file, never written through a link."""
    from sandbox import safe_files

    try:
        safe_files.write_bytes(path.parent.resolve(), path.name, data)
    except OSError as exc:
        raise IntegrateError(f"cannot write {path}: {exc.strerror or exc}") from None


@cli.command("verify")
@click.argument("where", default=".", metavar="[PATH | PR-URL | OWNER/REPO#N]")
@click.option("--reference", type=click.Path(), help="The reference folder, when the manifest names a local source (not on the Hub).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--json", "json_out", type=click.Path(), help="Write the claims table (JSON) here.")
@click.option("--keep", type=click.Path(), help="Keep the re-measurement's files (reference, converted weights, parity sides) in this new folder.")
@click.option("--post", is_flag=True, help="Post the result as the tool's review on the pull request (updated on a re-run), with line comments for findings.")
def verify_cmd(where, reference, device, json_out, keep, post) -> None:
    """Re-measure every claim of a branch integrate published: file hashes, the reference at its
    recorded revision, the conversion, parity (every side sandboxed, the spec rendered again from
    the manifest, never taken from the branch), the generated test and the convention checks.

    PATH is a checkout of the branch (default: the current folder); a pull request (its URL or
    OWNER/REPO#N) is fetched first (GITHUB_TOKEN, or a GitHub App, for private repositories and
    for --post). Prints one table of claim, recorded, re-measured, agrees. Exit 0 only if every
    claim reproduces, 1 if one does not, 2 if verification could not run.
    """
    import tempfile

    from agent.publish.github import parse_pull_ref
    from agent.publish.verify import checkout_pull, post_review, verify_folder

    if keep and Path(keep).exists():
        raise IntegrateError(f"--keep folder exists already: {keep}")
    pull_ref = parse_pull_ref(where)
    if post and pull_ref is None:
        raise IntegrateError("--post needs a pull request (its URL or OWNER/REPO#N), not a folder")
    findings: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="integrate-pr-") as tmp:
        if pull_ref:
            client, pull = checkout_pull(*pull_ref, Path(tmp) / "checkout")
            root = Path(tmp) / "checkout"
            _console().print(f"verifying {pull.html_url} at {pull.head_sha[:12]}")
        else:
            root = Path(where)
        rows = verify_folder(root, reference=Path(reference) if reference else None, device=device,
                             keep=Path(keep) if keep else None, findings_out=findings)
        width = max(len(r.claim) for r in rows)
        for r in rows:
            click.echo(f"{r.claim:<{width}}  {r.recorded:<24}  {r.measured:<24}  {'yes' if r.agrees else 'NO'}")
        agreed = sum(r.agrees for r in rows)
        click.echo(f"{agreed}/{len(rows)} claims reproduce")
        if json_out:
            _write_user_file(Path(json_out), (json.dumps([r.to_dict() for r in rows], indent=2) + "\n").encode())
        if post:
            review = post_review(client, *pull_ref, rows, findings)
            click.echo(f"review posted: {getattr(review, 'html_url', None) or review}")
    sys.exit(0 if agreed == len(rows) else 1)


@cli.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif", "github"]), default="text", show_default=True)
@click.option("--select", help="Comma-separated rule ids or names (or id prefixes: M, P, R, T).")
@click.option("--ignore", help="Comma-separated rule ids or names to skip.")
@click.option("--port", is_flag=True, help="Also run the port-only rules (T: tampering with the verdict), as verification does.")
@click.option("--include-deprecated", is_flag=True, help="Also check diffusers' deprecated pipelines with every rule.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the findings cache.")
@click.option("--fix", is_flag=True, help="Apply the fixes that are proven safe (P001, R001 for models, R002); report the rest.")
@click.option("--changed-only", is_flag=True, help="Only files changed against --base-ref (committed, staged, unstaged or untracked).")
@click.option("--base-ref", default="HEAD", show_default=True, help="Git ref that --changed-only compares against.")
@click.option("--list-rules", is_flag=True, help="List the rules and exit.")
@click.option("--explain", metavar="ID", help="Print a rule's documentation and exit.")
def check_cmd(paths, fmt, select, ignore, port, include_deprecated, no_cache, fix, changed_only, base_ref, list_rules, explain) -> None:
    """Run the diffusers convention checks on PATHS (files or folders).

    Exit 0 clean, 1 findings, 2 could not run. Suppress one line with
    `# integrate: ignore[ID]`, a whole file with `# integrate: ignore-file[ID]`.
    """
    from agent.checks import RULES
    from agent.checks.engine import RULE_CRASHED, check_paths
    from agent.checks.formats import FORMATS
    from agent.checks.registry import resolve_ids

    if list_rules or explain:
        resolve_ids([])  # registers the rules
        if list_rules:
            for r in RULES.values():
                flags = (" [blocks a pass]" if r.blocks_pass else "") + ("" if r.default else " [--port]")
                click.echo(f"{r.id}  {r.name:<34} {r.scope:<10} {r.summary}{flags}")
            return
        try:
            ids = resolve_ids([explain])
        except KeyError:
            raise IntegrateError(f"unknown rule: {explain}") from None
        for rule_id in sorted(ids):
            r = RULES[rule_id]
            click.echo(f"{r.id} {r.name} ({r.scope})\n\n{r.summary}\n\nWhat: {r.what}\nWhy: {r.why}\n\nBad:\n{r.bad}\n\nGood:\n{r.good}\n\nSkills: skills/{r.anchor}\n")
        return
    if not paths:
        raise IntegrateError("no paths given (try: integrate check src/diffusers/models)")
    if changed_only:
        from agent.checks.changed import changed_python_files

        paths = changed_python_files(paths, base_ref)
        if not paths:
            click.echo(FORMATS[fmt]([]))
            return
    chosen = select.split(",") if select else None
    if port and chosen is None:
        resolve_ids([])
        chosen = sorted(RULES)

    def run():
        return check_paths(
            paths, select=chosen, ignore=ignore.split(",") if ignore else None,
            use_cache=not no_cache, include_deprecated=include_deprecated,
        )

    try:
        findings = run()
        if fix:
            from agent.checks.fix import fix_findings

            for result in fix_findings([f for f in findings if RULES.get(f.rule) and RULES[f.rule].fixable], recheck=run):
                if result.applied:
                    _console().print(f"fixed {result.path} ({result.rule})")
                else:
                    _console().print(f"[yellow]fix not applied[/yellow] {result.path} ({result.rule}): {result.reason}")
            findings = run()
    except KeyError as exc:
        raise IntegrateError(f"unknown rule: {exc.args[0]}") from None
    except FileNotFoundError as exc:
        raise IntegrateError(f"path not found: {exc.args[0]}") from None
    click.echo(FORMATS[fmt](findings))
    crashed = [f for f in findings if f.rule == RULE_CRASHED]
    if crashed:
        raise IntegrateError(f"{len(crashed)} rule crash(es), first: {crashed[0].path}: {crashed[0].message}")
    sys.exit(1 if findings else 0)


def _size(text: str) -> int:
    units = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMG]i?B|B)?\s*", text, re.I)
    if not m:
        raise IntegrateError(f"--max-shard-size: not a size: {text!r} (like 5GB or 500MB)")
    return int(float(m.group(1)) * units[(m.group(2) or "B").upper()])


@cli.command("convert")
@click.argument("checkpoints", nargs=-1, required=True, type=click.Path())
@click.option("--mapping", type=click.Path(), help="A _weight_mapping.py (torch only); without it keys are kept as they are.")
@click.option("--out", required=True, type=click.Path(), help="New folder for the diffusers weights.")
@click.option("--max-shard-size", default="5GB", show_default=True, help="Above this, shards plus an index JSON.")
@click.option("--expect-keys", type=click.Path(), help="JSON list of the keys the model expects; anything missing or extra is an error.")
@click.option("--config", "config_file", type=click.Path(), help="config.json to place beside the weights.")
@click.option("--timeout", type=float, default=7200, show_default=True, help="Wall-time limit in seconds.")
def convert_cmd(checkpoints, mapping, out, max_shard_size, expect_keys, config_file, timeout) -> None:
    """Convert safetensors CHECKPOINT(s) to the diffusers folder format, tensor by tensor.

    The mapping is code, so it runs in the sandbox. Inputs are validated (headers, offsets, dtypes);
    duplicate or missing keys after mapping are errors; nothing is left behind on failure.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from agent.conversion import convert_checkpoints

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=_console()) as bar:
        task = bar.add_task("converting", total=None)
        result, res = convert_checkpoints(
            [Path(c) for c in checkpoints], Path(out), mapping=mapping and Path(mapping), expect_keys=expect_keys and Path(expect_keys),
            config=config_file and Path(config_file), max_shard_bytes=_size(max_shard_size), timeout=timeout,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    click.echo(f"{result['tensors_in']} tensors -> {result['tensors_out']} in {result['shards']} shard(s), "
               f"{result['bytes'] / 1e9:.2f} GB, peak memory {res.peak_rss_mb:.0f} MB, {res.wall_s:.1f} s: {out}")


@cli.command("sandbox", context_settings={"ignore_unknown_options": True})
@click.option("--workspace", type=click.Path(), default=".", show_default=True, help="The only writable folder inside.")
@click.option("--timeout", type=float, default=60, show_default=True, help="Wall-time limit in seconds.")
@click.option("--memory-mb", type=int, default=4096, show_default=True, help="Memory limit: address space plus the in-memory /tmp, HOME and /dev/shm.")
@click.option("--allow-read", multiple=True, type=click.Path(), help="Extra host path visible read-only (repeatable).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def sandbox_cmd(workspace, timeout, memory_mb, allow_read, command) -> None:
    """Run COMMAND the way untrusted code runs (for debugging): integrate sandbox -- CMD ARGS..."""
    import sandbox

    res = sandbox.run(list(command), workspace, limits=sandbox.Limits(wall_s=timeout, memory_mb=memory_mb), ro_paths=allow_read)
    sys.stdout.write(res.stdout)
    sys.stderr.write(res.stderr)
    _console().print(
        f"[dim]sandbox: {res.reason}, exit {res.returncode}, {res.wall_s}s, peak {res.peak_rss_mb} MB, isolation {res.isolation}[/dim]"
    )
    if res.isolation != "full":
        _console().print(f"[yellow]reduced isolation:[/yellow] {'; '.join(res.isolation_notes)}")
    sys.exit(res.returncode if res.reason == "exit" else 124 if res.reason == "timeout" else 137)


@cli.group("bot")
def bot_group() -> None:
    """The issue-triggered bot: a maintainer labels an issue `integrate` or comments
    `/integrate <org/model>`, a GPU worker runs integrate and answers with a draft PR (docs/bot.md).

    \b
    integrate bot workflow > .github/workflows/integrate.yml   the GitHub Actions deployment
    integrate bot serve                                         the GitHub App's webhook server
    integrate bot worker                                        runs the jobs the server queues
    """


def _pace(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        requests_s, writes_s = (float(v) for v in value.split(","))
    except ValueError:
        raise IntegrateError(f"--github-pace takes two numbers, seconds between requests and between writes (like 0.25,1), not {value!r}") from None
    return requests_s, writes_s


_QUEUE_HELP = "sqlite:///path.db (one machine, the default) or redis://host:6379/0 (many workers). Env: INTEGRATE_BOT_QUEUE."
_PACE_HELP = "Seconds between GitHub requests and between writes (default PyGithub's 0.25,1: GitHub's advice)."


@bot_group.command("workflow")
@click.option("--runs-on", default="self-hosted,gpu", show_default=True, help="Runner labels of the job that runs integrate, comma-separated.")
@click.option("--label", default="integrate", show_default=True, help="The issue label that starts a run.")
@click.option("--install", default=None, help="What the job pip-installs (default: integrate==<this version>).")
@click.option("--python", "python_version", default="3.11", show_default=True, help="Python for the job.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cuda", show_default=True)
@click.option("--timeout-minutes", type=int, default=360, show_default=True)
@click.option("--app", is_flag=True, help="Publish as a GitHub App (vars.INTEGRATE_APP_ID, secrets.INTEGRATE_APP_PRIVATE_KEY) instead of GITHUB_TOKEN, so the PR's CI runs.")
def bot_workflow_cmd(runs_on, label, install, python_version, device, timeout_minutes, app) -> None:
    """Print the GitHub Actions workflow: integrate bot workflow > .github/workflows/integrate.yml"""
    from agent.bot.workflow import render_workflow

    kwargs = {"install": install} if install else {}
    click.echo(render_workflow(runs_on=runs_on, label=label, python=python_version, device=device,
                               timeout_minutes=timeout_minutes, app=app, **kwargs), nl=False)


@bot_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--queue", "queue_url", envvar="INTEGRATE_BOT_QUEUE", default="sqlite://bot/queue.db", show_default=True, help=_QUEUE_HELP)
@click.option("--label", default="integrate", show_default=True, help="The issue label that starts a run.")
@click.option("--github-pace", metavar="S,W", help=_PACE_HELP)
def bot_serve_cmd(host, port, queue_url, label, github_pace) -> None:
    """Receive the GitHub App's webhooks (POST /webhook): verify, de-duplicate, queue; post status comments.

    Needs GITHUB_WEBHOOK_SECRET and the App's credentials (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY
    or GITHUB_APP_PRIVATE_KEY_FILE; GITHUB_API_URL for GitHub Enterprise).
    """
    import uvicorn

    from agent.bot.github_app import Clients
    from agent.bot.jobs import JobStore
    from agent.bot.queue import open_backend
    from agent.bot.webhook import Announcer, create_app

    secret = os.environ.get("GITHUB_WEBHOOK_SECRET", "")
    if not secret:
        raise IntegrateError("GITHUB_WEBHOOK_SECRET is not set (the App's webhook secret): unsigned deliveries are never accepted")
    clients = Clients(pace_s=_pace(github_pace))
    huey, kv = open_backend(queue_url)
    store = JobStore(kv)
    app = create_app(huey, store, secret.encode(), Announcer(huey, store, clients), label=label)
    _console().print(f"integrate bot: webhooks on http://{host}:{port}/webhook, queue {queue_url.split('@')[-1]}, as {clients.mode}")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=5)


@bot_group.command("worker")
@click.option("--queue", "queue_url", envvar="INTEGRATE_BOT_QUEUE", default="sqlite://bot/queue.db", show_default=True, help=_QUEUE_HELP)
@click.option("--workdir", type=click.Path(), default="bot/work", show_default=True, help="Where each job's checkout and run folder go.")
@click.option("--threads", type=int, default=1, show_default=True, help="Jobs this worker runs at once (one per GPU is the usual).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cuda", show_default=True, help="Where parity runs (a request's --device wins).")
@click.option("--fork", metavar="OWNER/NAME", help="Push branches to this fork (default: a branch of the issue's repository).")
@click.option("--pr-label", "pr_labels", multiple=True, help="Label for the PRs (repeatable; default integrate-generated).")
@click.option("--per-repo-limit", type=int, default=1, show_default=True, help="Jobs running at once per repository, over all workers.")
@click.option("--lease", type=float, default=120.0, show_default=True, help="Seconds without a heartbeat after which a job is re-queued.")
@click.option("--heartbeat", type=float, default=10.0, show_default=True, help="Seconds between heartbeats (and progress updates).")
@click.option("--reap-every", type=float, default=20.0, show_default=True, help="Seconds between looks for dead workers' jobs.")
@click.option("--integrate-command", help="The command that runs a job, instead of this integrate (a wrapper, or a stand-in in tests).")
@click.option("--github-pace", metavar="S,W", help=_PACE_HELP)
def bot_worker_cmd(queue_url, workdir, threads, device, fork, pr_labels, per_repo_limit, lease, heartbeat, reap_every,
                   integrate_command, github_pace) -> None:
    """Run queued jobs: each one is `integrate <org/model> --target <clone> --publish github`."""
    from agent.bot.execution import ExecutionSettings
    from agent.bot.github_app import Clients
    from agent.bot.jobs import JobStore
    from agent.bot.queue import open_backend
    from agent.bot.worker import Timing, Worker, run_worker
    from agent.publish.options import check_repo_name
    from sandbox import runner

    check_repo_name("--fork", fork)
    for name, value in (("--threads", threads), ("--per-repo-limit", per_repo_limit), ("--lease", lease), ("--heartbeat", heartbeat), ("--reap-every", reap_every)):
        if value <= 0:
            raise IntegrateError(f"{name} must be positive, not {value}")
    if heartbeat * 2 > lease:
        raise IntegrateError(f"--heartbeat ({heartbeat:g} s) must be at most half of --lease ({lease:g} s)")
    clients = Clients(pace_s=_pace(github_pace))
    huey, kv = open_backend(queue_url)
    command = tuple(shlex.split(integrate_command)) if integrate_command else (sys.executable, "-m", "agent.cli")
    flags = ("--allow-reduced-isolation",) if runner._reduced_isolation_allowed and not integrate_command else ()
    settings = ExecutionSettings(Path(workdir).resolve(), command, device, fork, tuple(pr_labels), flags)
    timing = Timing(lease_s=lease, heartbeat_s=heartbeat, reap_s=reap_every, wait_s=max(1.0, heartbeat), limit=per_repo_limit)
    worker = Worker(huey, JobStore(kv), clients, settings, timing)
    _console().print(f"integrate bot worker {worker.name}: {threads} thread(s), queue {queue_url.split('@')[-1]}, work in {settings.workdir}")
    run_worker(huey, worker, threads=threads)


@bot_group.command("run-event")
@click.option("--event-name", help="The event (default: $GITHUB_EVENT_NAME).")
@click.option("--event", "event_path", type=click.Path(), help="The event's JSON payload (default: $GITHUB_EVENT_PATH).")
@click.option("--target", type=click.Path(), required=True, help="The repository's checkout (a diffusers checkout).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cuda", show_default=True)
@click.option("--label-name", default="integrate", show_default=True, help="The issue label that starts a run.")
@click.option("--workdir", type=click.Path(), help="Where the run folder goes (default: $RUNNER_TEMP/integrate-bot).")
@click.option("--integrate-command", help="The command that runs the job, instead of this integrate.")
def bot_run_event_cmd(event_name, event_path, target, device, label_name, workdir, integrate_command) -> None:
    """Handle one GitHub event in GitHub Actions (the workflow's integrate job runs this)."""
    from agent.bot.actions import default_workdir, read_event, run_event
    from agent.bot.execution import ExecutionSettings
    from sandbox import runner

    name, payload = read_event(event_name, event_path)
    command = tuple(shlex.split(integrate_command)) if integrate_command else (sys.executable, "-m", "agent.cli")
    flags = ("--allow-reduced-isolation",) if runner._reduced_isolation_allowed and not integrate_command else ()
    repo = (payload.get("repository") or {}).get("full_name") if isinstance(payload, dict) else None
    settings = ExecutionSettings(Path(workdir).resolve() if workdir else default_workdir(), command, device, repo, (), flags)
    sys.exit(run_event(name, payload, Path(target).resolve(), settings, label=label_name,
                       say=lambda line: _console().print(line)))


def main() -> None:
    try:
        cli.main(prog_name="integrate", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except IntegrateError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # a bug in integrate itself: still one line, with where to look
        runner = sys.modules.get("sandbox.runner")  # not imported before: `integrate check` starts faster
        if runner is not None and isinstance(exc, runner.IsolationRefused):
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        if os.environ.get("INTEGRATE_DEBUG"):
            raise
        click.echo(f"internal error: {exc.__class__.__name__}: {exc} (set INTEGRATE_DEBUG=1 for the traceback)", err=True)
        sys.exit(3)


if __name__ == "__main__":
    main()
