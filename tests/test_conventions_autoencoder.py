"""An autoencoder (a model with encode and decode) is named and shaped the way diffusers names
its own: `AutoencoderKL<Name>` when it samples a diagonal Gaussian (else `Autoencoder<Name>`)
under models/autoencoders, forward argument `sample`, `DecoderOutput` returned, and only the
config renames whose meaning holds for an autoencoder."""

import torch
from conventions_sources import load, parse

from agent.porting.conventions.forward import forward_conventions
from agent.porting.conventions.target import Target
from agent.porting.conventions.vocabulary import config_names_for
from agent.porting.naming import autoencoder_kind
from agent.stages.plan import diffusers_class_name, module_name_for

KL = '''
import torch
import torch.nn as nn


class DiagonalGaussian(nn.Module):
    def forward(self, z):
        mean, logvar = torch.chunk(z, 2, dim=1)
        return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)


class AutoEncoder(nn.Module):
    def __init__(self, in_channels=3, z_channels=2):
        super().__init__()
        self.encoder = nn.Conv2d(in_channels, 2 * z_channels, 1)
        self.decoder = nn.Conv2d(z_channels, in_channels, 1)
        self.reg = DiagonalGaussian()

    def encode(self, x):
        return torch.chunk(self.encoder(x), 2, dim=1)[0]

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))
'''

IMAGE = [{"name": "x", "kind": "randn", "shape": [2, 3, 8, 8]}]


def analysis() -> dict:
    return {"inputs": IMAGE, "input_decisions": [{"name": "x", "read_by": "Conv2d", "conv_dims": 2}], "submodule_types": ["Conv2d"]}


def test_encode_and_decode_make_an_autoencoder_and_a_gaussian_makes_it_kl():
    assert autoencoder_kind([KL], "AutoEncoder") == "kl"
    plain = KL.replace("logvar", "scale")
    assert autoencoder_kind([plain], "AutoEncoder") == "plain"
    assert autoencoder_kind([KL.replace("def encode", "def embed")], "AutoEncoder") is None  # no encode: not an autoencoder
    # the distribution may live in another file of the reference
    head, tail = KL.split("class AutoEncoder")
    assert autoencoder_kind([head, "import torch\nimport torch.nn as nn\n\nclass AutoEncoder" + tail], "AutoEncoder") == "kl"


def test_autoencoders_are_named_as_diffusers_names_its_own():
    # a reference name that only says "autoencoder" takes the source's name, less the words that say it again
    assert diffusers_class_name("AutoEncoder", analysis(), "flux-vae", "kl") == ("AutoencoderKLFlux", "autoencoders")
    assert diffusers_class_name("SoundVAE", analysis(), "whatever", "plain") == ("AutoencoderSound", "autoencoders")
    assert module_name_for("AutoencoderKLFlux", "autoencoders", 2) == "autoencoder_kl_flux"
    # without encode/decode nothing changes
    name, family = diffusers_class_name("AutoEncoder", analysis(), "flux-vae")
    assert family == "transformers" and name.endswith("2DModel")


def test_forward_takes_sample_and_returns_decoder_output():
    target = Target(class_name="AutoEncoder", reference_class="AutoEncoder", family="autoencoders", config={}, inputs=IMAGE,
                    output_paths=["output"])
    module, report = forward_conventions(parse(KL), target)
    code = module.code
    assert report.data["forward_renames"] == {"x": "sample"}
    assert "from diffusers.models.autoencoders.vae import DecoderOutput" in code
    before, after = load(KL).AutoEncoder(), load(code).AutoEncoder()
    after.load_state_dict(before.state_dict())
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        out = after(sample=x)
        assert type(out).__name__ == "DecoderOutput" and torch.equal(out.sample, before(x))
        assert torch.equal(after(x, return_dict=False)[0], before(x))


def test_only_renames_that_mean_the_same_for_an_autoencoder():
    names = config_names_for("autoencoders")
    assert names["z_channels"].name == "latent_channels" and names["num_res_blocks"].name == "layers_per_block"
    assert names["out_ch"].name == "out_channels"
    assert "latent_size" not in names and "num_heads" not in names  # an autoencoder's latent size is not its sample size
