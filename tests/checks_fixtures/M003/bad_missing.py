# ruff: noqa
from diffusers.configuration_utils import ConfigMixin as Configurable
from diffusers.configuration_utils import ConfigMixin
from diffusers.models.modeling_utils import ModelMixin


class A(ModelMixin, ConfigMixin):
    def __init__(self, dim=4):  # <- M003
        super().__init__()


class B(ModelMixin, Configurable):
    def __init__(self, dim=4):  # <- M003
        super().__init__()


class _Base(ModelMixin, ConfigMixin):
    pass


class C(_Base):
    def __init__(self, *dims):  # <- M003
        super().__init__()
