"""The PR's usage example is code the generated test runs as shown; the paper link is taken
from the model card only in its exact arXiv form."""

from __future__ import annotations

import torch

from agent.publish.usage import paper_link, usage_example

INPUTS = [
    {"name": "hidden_states", "kind": "randn", "shape": [2, 3]},
    {"name": "timestep", "kind": "uniform", "shape": [2], "low": 0, "high": 1},
    {"name": "class_labels", "kind": "randint", "shape": [2], "low": 0, "high": 5},
]


def test_usage_example_runs_and_draws_what_it_shows(tmp_path, monkeypatch):
    code = usage_example("Toy", "toy_model", "standalone", INPUTS, "weights", seed=3)
    assert 'Toy.from_pretrained("weights")' in code and "torch.rand([2], generator=g)" in code
    (tmp_path / "toy_model.py").write_text(
        "import torch\n"
        "class Toy:\n"
        "    @classmethod\n"
        "    def from_pretrained(cls, path):\n"
        "        assert path == 'weights'\n"
        "        return cls()\n"
        "    def eval(self):\n"
        "        return self\n"
        "    def __call__(self, hidden_states, timestep, class_labels):\n"
        "        return hidden_states * timestep[:, None] + class_labels[:, None]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {}
    exec(compile(code, "usage", "exec"), namespace)
    g = torch.Generator().manual_seed(3)
    x, t, y = torch.randn([2, 3], generator=g), torch.rand([2], generator=g), torch.randint(0, 5, [2], generator=g)
    torch.testing.assert_close(namespace["output"], x * t[:, None] + y[:, None], atol=0, rtol=0)


def test_no_usage_example_for_an_authors_inputs_file_or_an_unknown_location():
    assert usage_example("Toy", "toy_model", "standalone", [{"kind": "file", "source": "...", "origin": "f"}], "weights", 0) is None
    assert "from diffusers import Toy" in usage_example("Toy", "toy_model", "diffusers-tree", INPUTS, "../converted", 0)
    try:
        usage_example("Toy", "toy_model", "standalone", INPUTS, '") or evil("', 0)
    except ValueError:
        pass
    else:
        raise AssertionError("a weights location outside the two known ones was rendered")


def test_paper_link_from_the_card(tmp_path):
    (tmp_path / "README.md").write_text("See [our paper](https://arxiv.org/pdf/2212.09748v2) and https://evil.example/arxiv.org/abs/1.\n")
    assert paper_link(tmp_path, "README.md") == "https://arxiv.org/abs/2212.09748"
    (tmp_path / "card.md").write_text("no paper here")
    assert paper_link(tmp_path, "card.md") is None and paper_link(tmp_path, None) is None
    (tmp_path / "link.md").symlink_to(tmp_path / "README.md")
    assert paper_link(tmp_path, "link.md") is None  # a link in the snapshot is not followed
