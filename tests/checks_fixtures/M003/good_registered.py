# ruff: noqa
from diffusers.configuration_utils import ConfigMixin
from diffusers.configuration_utils import register_to_config as rtc
from diffusers.models.modeling_utils import ModelMixin


class A(ModelMixin, ConfigMixin):
    @rtc
    def __init__(self, dim=4):
        super().__init__()


class Base(ModelMixin, ConfigMixin):
    def __init__(self, dim):
        super().__init__()


class Child(Base):
    @rtc
    def __init__(self, dim=4):
        super().__init__(dim)


class Auto(ConfigMixin):
    def __init__(self, *args, **kwargs):
        raise EnvironmentError("use Auto.from_pretrained")
