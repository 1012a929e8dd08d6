"""Two fused-projection layouts the walk in run order cannot pair on its own: a second fused qkv
whose split parts run right after the first one's (before the norms the reference runs in
between), and one input projection feeding q, k, v and an MLP, split unevenly between modules
that run in another order. Inference pairs the first by aligning what both sides left over; the
second's row order is decided by running, with offsets that follow the parts' sizes."""

import torch
import torch.nn.functional as F
from torch import nn

from sandbox.mapping import match_by_name
from sandbox.mapping_infer import infer_mapping
from sandbox.parity.runside.infer import infer_for_spec

D, HIDDEN = 8, 12


class Scale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.weight


class TwoFused(nn.Module):
    """Each stream: fused qkv, then its q scale; the second stream after the first."""

    def __init__(self):
        super().__init__()
        self.a_qkv, self.a_scale = nn.Linear(D, 3 * D), Scale(D)
        self.b_qkv, self.b_scale = nn.Linear(D, 3 * D), Scale(D)

    def forward(self, x, y):
        qa, ka, va = self.a_qkv(x).chunk(3, dim=-1)
        qa = self.a_scale(qa)
        qb, kb, vb = self.b_qkv(y).chunk(3, dim=-1)
        qb = self.b_scale(qb)
        return qa * ka.sigmoid() + va, qb * kb.sigmoid() + vb


class AllProjectionsFirst(nn.Module):
    """Both streams' q, k, v projections first, then the scales (diffusers' joint attention order)."""

    def __init__(self):
        super().__init__()
        self.to_q, self.to_k, self.to_v = nn.Linear(D, D), nn.Linear(D, D), nn.Linear(D, D)
        self.add_q, self.add_k, self.add_v = nn.Linear(D, D), nn.Linear(D, D), nn.Linear(D, D)
        self.norm_a, self.norm_b = Scale(D), Scale(D)

    def forward(self, x, y):
        qa, ka, va = self.to_q(x), self.to_k(x), self.to_v(x)
        qb, kb, vb = self.add_q(y), self.add_k(y), self.add_v(y)
        qa, qb = self.norm_a(qa), self.norm_b(qb)
        return qa * ka.sigmoid() + va, qb * kb.sigmoid() + vb


class FusedIn(nn.Module):
    def __init__(self):
        super().__init__()
        self.fused_in = nn.Linear(D, 3 * D + HIDDEN)
        self.fused_out = nn.Linear(D + HIDDEN, D)

    def forward(self, x):
        q, k, v, m = self.fused_in(x).split([D, D, D, HIDDEN], dim=-1)
        return self.fused_out(torch.cat([q * k.sigmoid() + v, F.gelu(m)], dim=-1))


class MlpFirst(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj_mlp = nn.Linear(D, HIDDEN)
        self.to_q, self.to_k, self.to_v = nn.Linear(D, D), nn.Linear(D, D), nn.Linear(D, D)
        self.proj_out = nn.Linear(D + HIDDEN, D)

    def forward(self, x):
        m = F.gelu(self.proj_mlp(x))
        q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
        return self.proj_out(torch.cat([q * k.sigmoid() + v, m], dim=-1))


def _seeded(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return model.eval()


def test_a_fused_qkv_whose_parts_ran_after_other_modules_is_split_among_the_leftovers():
    reference, candidate = _seeded(TwoFused()), AllProjectionsFirst().eval()
    g = torch.Generator().manual_seed(0)
    kwargs = {"x": torch.randn(2, 3, D, generator=g), "y": torch.randn(2, 4, D, generator=g)}
    mapping = infer_mapping(reference, candidate, kwargs, kwargs)
    assert mapping.unmatched_candidate == [] and mapping.unmatched_reference == []
    assert mapping.pairs["add_k.weight"] == "b_qkv.weight" and mapping.rows["add_k.weight"] == (D, 2 * D)
    assert mapping.pairs["norm_b.weight"] == "b_scale.weight"
    candidate.load_state_dict(mapping.apply(reference.state_dict()))
    with torch.no_grad():
        for a, b in zip(reference(**kwargs), candidate(**kwargs), strict=True):
            assert (a - b).abs().max() <= 1e-5


def test_an_uneven_split_is_ordered_by_running():
    reference, candidate = _seeded(FusedIn()), MlpFirst().eval()
    kwargs = {"x": torch.randn(2, 5, D, generator=torch.Generator().manual_seed(1))}
    mapping = infer_for_spec(reference, candidate, {"reference": kwargs, "candidate": kwargs},
                             match_by_name(reference.state_dict(), candidate.state_dict()))
    assert not mapping.unresolved, mapping.unresolved
    assert mapping.rows["to_q.weight"] == (0, D) and mapping.rows["proj_mlp.weight"] == (3 * D, 3 * D + HIDDEN)
    assert any("rows of fused_in in the order to_q, to_k, to_v, proj_mlp" in d for d in mapping.decisions)
    candidate.load_state_dict(mapping.apply(reference.state_dict()))
    with torch.no_grad():
        assert (reference(**kwargs) - candidate(**kwargs)).abs().max() <= 1e-5
