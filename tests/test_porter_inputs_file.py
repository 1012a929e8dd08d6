"""An inputs file shipped with the model ends up in the analysis, the parity spec and the
generated test; a run stopped at the analysis says to run again, not to resume."""

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import integrate

INPUTS = '''
    from __future__ import annotations

    import torch

    BATCH = 3  # the author's own name, distinct from anything in the spec


    def inputs(seed):
        g = torch.Generator().manual_seed(seed)
        return {
            "x": torch.randn(BATCH, 4, 16, 16, generator=g),
            "t": torch.randint(0, 1000, (BATCH,), generator=g).float(),
            "y": torch.randint(0, 10, (BATCH,), generator=g),
        }
'''


@pytest.mark.slow
def test_shipped_inputs_file_is_used_by_analysis_spec_and_generated_test(tmp_path, example):
    (example / "integrate_inputs.py").write_text(textwrap.dedent(INPUTS))
    proc = integrate(str(example), "--out", "out", "--llm", "none", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["parity"]["passed"]
    run = json.loads((tmp_path / "runs" / summary["run_id"] / "run.json").read_text())
    analysis = run["stages"]["analyze"]["result"]
    assert analysis["inputs_source"] == "integrate_inputs.py in the source folder"
    assert analysis["inputs"][0]["arguments"]["x"]["shape"] == [3, 4, 16, 16]
    out = tmp_path / "out"
    spec = (out / "parity_spec.py").read_text()
    generated = (out / "test_transformer_tiny_dit.py").read_text()
    for text in (spec, generated):
        assert "def _author_inputs():" in text and "BATCH = 3" in text and "from __future__" not in text
    assert "[3, 4, 16, 16]" in generated.split("REFERENCE_OUTPUTS = ")[1].splitlines()[0]  # the reference's output on them
    test = subprocess.run([sys.executable, "-m", "pytest", "-q", str(out / "test_transformer_tiny_dit.py")], capture_output=True, text=True, cwd=out)
    assert test.returncode == 0, test.stdout[-2000:]


def test_config_error_at_analysis_names_the_key_and_says_run_again(tmp_path, example):
    code = example / "tiny_dit.py"
    text = code.read_text().replace("        hidden_size=64,\n", "", 1)  # hidden_size loses its default
    code.write_text(text.replace("        input_size=16,\n", "        hidden_size,\n        input_size=16,\n", 1))
    config = json.loads((example / "config.json").read_text())
    del config["hidden_size"]
    (example / "config.json").write_text(json.dumps(config))
    proc = integrate(str(example), "--out", "out", "--llm", "none", cwd=tmp_path)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "'hidden_size'" in errors[0] and "add it to config.json" in errors[0], proc.stderr
    assert "integrate resume" not in proc.stderr and "run the same command again" in proc.stderr
    assert "Traceback" not in proc.stderr
