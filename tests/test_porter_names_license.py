"""Names follow diffusers' spellings and the data's dimensionality; the license header keeps the
original notice and adds diffusers' only where the license allows."""

import textwrap

import pytest

from agent.porting.license import reference_license, strip_license_header
from agent.porting.naming import data_dims, diffusers_spelling, snake_case
from agent.render import render
from agent.stages.plan import diffusers_class_name, module_name_for


@pytest.mark.parametrize("name, spelled", [
    ("Unet", "UNet"), ("KarrasUnet3D", "KarrasUNet3D"), ("Dit", "DiT"), ("SpaceTimeUnet", "SpaceTimeUNet"),
    ("TinyDiT", "TinyDiT"), ("HourglassDiffusionTransformer", "HourglassDiffusionTransformer"), ("Vae", "VAE"),
])
def test_words_take_diffusers_spelling(name, spelled):
    assert diffusers_spelling(name) == spelled


def analysis(inputs, decisions=(), submodules=("Conv2d",)):
    return {"inputs": inputs, "input_decisions": list(decisions), "submodule_types": list(submodules)}


def test_dimensionality_comes_from_what_reads_the_data():
    audio = analysis([{"name": "x", "kind": "randn", "shape": [2, 8, 32]}], [{"name": "x", "read_by": "Conv1d", "conv_dims": 1}])
    video = analysis([{"name": "x", "kind": "randn", "shape": [2, 3, 4, 16, 16]}])
    tokens = analysis([{"name": "x", "kind": "randn", "shape": [2, 16, 32]}], [{"name": "x", "read_by": "Linear"}], ["Attention"])
    image = analysis([{"kind": "file", "arguments": {"x": {"shape": [2, 4, 8, 8]}, "t": {"shape": [2]}}}])
    assert [data_dims(a) for a in (audio, video, tokens, image)] == [1, 3, None, 2]
    assert diffusers_class_name("Unet1D", audio, "audio-unet") == ("AudioUNet1DModel", "unets")  # a bare "UNet" says nothing
    assert diffusers_class_name("KarrasUnet3D", video, "karras") == ("KarrasUNet3DModel", "unets")
    assert diffusers_class_name("KarrasUnet", audio, "karras") == ("KarrasUNet1DModel", "unets")  # 1-D data: not 2D
    assert diffusers_class_name("DiffusionTransformer", tokens, "stable-audio") == ("StableAudioTransformerModel", "transformers")  # tokens: no 1D/2D
    assert diffusers_class_name("UNetModel", image, "ldm-unet") == ("LdmUNet2DModel", "unets")  # UNet2DModel exists
    assert module_name_for("KarrasUNet3DModel", "unets", 3) == "unet_karras_3d"
    assert module_name_for("TinyDiTTransformer2DModel", "transformers", 2) == "transformer_tiny_dit"
    assert snake_case("DiTBlock") == "dit_block" and snake_case("SrcUVit") == "src_uvit"


MIT = """\
MIT License

Copyright (c) 2020 Phil Wang

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction.
"""


def header(lic):
    return render("model/transformer_flat.py.j2", year="2026", class_name="XModel", reference_class="X", origin="x",
                  body="import torch\n", license=lic, diffusers_imports="", init_args=[], forward_args=[]).split('"""')[0]


def test_permissive_license_keeps_the_notice_under_diffusers_header(tmp_path):
    (tmp_path / "model.py").write_text("import torch\n")
    (tmp_path / "LICENSE").write_text(MIT)
    lic = reference_license(tmp_path, None, "model.py", "lucidrains/x")
    assert lic["spdx"] == "mit" and lic["diffusers_header"] and lic["copyright"] == ["Copyright (c) 2020 Phil Wang"]
    text = header(lic)
    assert text.index("The HuggingFace Team") < text.index("Copyright (c) 2020 Phil Wang") < text.index("Apache License")
    assert "Permission is hereby granted" in text  # the MIT notice travels with the code


def test_apache_from_the_card_and_spdx_in_the_file_header(tmp_path):
    (tmp_path / "model.py").write_text("# Copyright 2023 Some Lab\n# SPDX-License-Identifier: Apache-2.0\nimport torch\n")
    (tmp_path / "README.md").write_text("---\nlicense: apache-2.0\n---\n# model\n")
    lic = reference_license(tmp_path, None, "model.py", "lab/x")
    assert lic["spdx"] == "apache-2.0" and lic["source"] == "the model card" and lic["copyright"] == ["Copyright 2023 Some Lab"]
    assert "Copyright 2023 Some Lab" in header(lic) and "The HuggingFace Team" in header(lic)


def test_non_permissive_or_missing_license_keeps_the_original_notice_alone(tmp_path):
    (tmp_path / "model.py").write_text("# Copyright (c) 2024 Someone\nimport torch\n")
    (tmp_path / "LICENSE").write_text("Attribution-NonCommercial 4.0 International\nCreative Commons Corporation\n")
    lic = reference_license(tmp_path, None, "model.py", "someone/x")
    assert lic["spdx"] == "cc-by-nc-4.0" and not lic["diffusers_header"] and "does not permit" in lic["why"]
    text = header(lic)
    assert "HuggingFace" not in text and "Copyright (c) 2024 Someone" in text and "Apache" not in text
    (tmp_path / "LICENSE").unlink()
    lic = reference_license(tmp_path, None, "model.py", "someone/x")
    assert lic["spdx"] is None and not lic["diffusers_header"] and "No license was found" in header(lic)


def test_the_bodys_own_license_comment_moves_to_the_header():
    body = textwrap.dedent("""\
        # Copyright (c) 2024 Someone
        # SPDX-License-Identifier: MIT
        import torch
    """)
    assert strip_license_header(body) == "import torch\n"
    plain = "# A tiny model, research style.\nimport torch\n"
    assert strip_license_header(plain) == plain
