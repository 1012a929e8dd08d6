"""Stand-in for diffusers' tests/models/testing_utils: the tester config and mixins a model test
combines. Each mixin checks, in fewer tests, what diffusers' own checks; like diffusers' own, the
training and memory mixins need an accelerator and are skipped without one."""

import pytest
import torch

from ...testing_utils import torch_device

requires_accelerator = pytest.mark.skipif(torch_device == "cpu", reason="needs an accelerator")


class BaseModelTesterConfig:
    @property
    def model_class(self):
        raise NotImplementedError

    @property
    def output_shape(self):
        return None

    @property
    def pretrained_model_name_or_path(self):
        return None

    @property
    def pretrained_model_kwargs(self):
        return {}

    def get_init_dict(self):
        raise NotImplementedError

    def get_dummy_inputs(self):
        raise NotImplementedError

    def build(self):
        torch.manual_seed(0)
        return self.model_class(**self.get_init_dict()).to(torch_device).eval()


class ModelTesterMixin:
    @torch.no_grad()
    def test_determinism(self):
        model = self.build()
        first = model(**self.get_dummy_inputs(), return_dict=False)[0]
        second = model(**self.get_dummy_inputs(), return_dict=False)[0]
        torch.testing.assert_close(first, second, atol=1e-5, rtol=0)

    @torch.no_grad()
    def test_output(self):
        inputs = self.get_dummy_inputs()
        output = self.build()(**inputs, return_dict=False)[0]
        batch = inputs[self.main_input_name].shape[0]
        assert tuple(output.shape) == (batch, *self.output_shape)

    @torch.no_grad()
    def test_from_save_pretrained(self, tmp_path):
        model = self.build()
        model.save_pretrained(tmp_path)
        reloaded = self.model_class.from_pretrained(tmp_path).to(torch_device).eval()
        expected = model(**self.get_dummy_inputs(), return_dict=False)[0]
        torch.testing.assert_close(reloaded(**self.get_dummy_inputs(), return_dict=False)[0], expected, atol=5e-5, rtol=5e-5)

    @torch.no_grad()
    def test_outputs_equivalence(self):
        model = self.build()
        as_tuple = model(**self.get_dummy_inputs(), return_dict=False)
        as_output = model(**self.get_dummy_inputs(), return_dict=True)
        for a, b in zip(as_tuple, as_output.to_tuple(), strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@requires_accelerator
class TrainingTesterMixin:
    def test_training(self):
        model = self.build().train()
        model(**self.get_dummy_inputs(), return_dict=False)[0].mean().backward()

    def test_gradient_checkpointing_is_applied(self, expected_set=None):
        if not getattr(self.model_class, "_supports_gradient_checkpointing", False):
            pytest.skip("Gradient checkpointing is not supported.")
        model = self.build()
        model.enable_gradient_checkpointing()
        applied = {type(m).__name__ for m in model.modules() if getattr(m, "gradient_checkpointing", False)}
        assert applied == set(expected_set)


class AttentionTesterMixin:
    def test_get_set_processor(self):
        model = self.build()
        if not hasattr(model, "attn_processors") or not model.attn_processors:
            pytest.skip("Model does not have attention processors.")
        processors = model.attn_processors
        model.set_attn_processor(dict(processors))
        assert set(model.attn_processors) == set(processors)


@requires_accelerator
class MemoryTesterMixin:
    def test_layerwise_casting_inference(self):
        model = self.build()
        model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.float32)
        with torch.no_grad():
            model(**self.get_dummy_inputs(), return_dict=False)
