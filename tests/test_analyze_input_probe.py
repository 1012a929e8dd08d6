"""The input search itself (sandbox/input_probe.py), on models this test defines: the meta-device
copy large models are probed on gives the inputs the real model gets, and a forward the meta
device cannot run (a data-dependent `.item()`) falls back to the real model."""

import torch
from torch import nn

from sandbox.forward_trace import Prober
from sandbox.input_probe import InputSearch, signature_params


class Net(nn.Module):
    def __init__(self, channels=3, dim=8, data_dependent=False):
        super().__init__()
        self.data_dependent = data_dependent
        self.conv = nn.Conv3d(channels, dim, 1)
        self.time = nn.Linear(4, dim)

    def forward(self, video, t):
        h = self.conv(video) + self.time(t)[:, :, None, None, None]
        if self.data_dependent and h.abs().max().item() > 1e9:
            h = h * 0
        return h


def search(model, fallback=None, config=None):
    prober = Prober(model, fallback=fallback)
    return InputSearch(prober, signature_params(model), config or {}).decide()[0], prober


def test_meta_copy_gives_the_real_models_inputs():
    real = Net()
    with torch.device("meta"):
        meta = Net().to("meta")
    on_meta, prober = search(meta, fallback=real)
    assert prober.model is meta  # nothing needed the real model
    assert on_meta == search(real)[0]
    shapes = {e["name"]: e["shape"] for e in on_meta}
    assert len(shapes["video"]) == 5 and shapes["video"][1] == 3 and shapes["t"] == [2, 4]


def test_what_the_meta_device_cannot_run_falls_back_to_the_real_model():
    real = Net(data_dependent=True)
    with torch.device("meta"):
        meta = Net(data_dependent=True).to("meta")
    recipe, prober = search(meta, fallback=real)
    assert prober.model is real
    assert {e["name"]: e["shape"] for e in recipe}["t"] == [2, 4]
