# ruff: noqa
from diffusers import DiffusionPipeline, ModularPipeline, OnnxStableDiffusionPipeline
from diffusers.utils import deprecate


class MyImg2ImgPipeline(DiffusionPipeline):
    pass


class MyModularPipeline(ModularPipeline):
    pass


class StableDiffusionOnnxPipeline(OnnxStableDiffusionPipeline):
    def __init__(self, *args, **kwargs):
        deprecate("StableDiffusionOnnxPipeline", "1.0.0", "use OnnxStableDiffusionPipeline")
        super().__init__(*args, **kwargs)
