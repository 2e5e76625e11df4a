"""The static shape of a network, for every model family: what decides the compiled program.

Families (docs/parameterizations.md, notation):

- ``mlp`` and ``conv``: pre-activation ResNets (:mod:`hptransfer.network.model`), width n =
  features or channels, depth L residual blocks of k (``block_depth``) layers.
- ``transformer``: a pre-LayerNorm causal decoder (:mod:`hptransfer.network.transformer`), width
  n = model dimension, depth L transformer blocks, each an attention branch and an MLP branch.
  The MLP branch W_2 phi(W_1 .) is a two-layer residual block, so ``block_depth`` is 2. The head
  layout holds either the head dimension (heads = n / head_dim grow with width) or the number
  of heads (head_dim = n / heads grows with width); ``mlp_ratio`` is the MLP's expansion factor.
  ``in_shape`` is (sequence length,) and ``num_classes`` the vocabulary (256 bytes).

At the base shape (n0, L0) = (``base_width``, ``base_depth``) every scheme is the same network.
"""

from __future__ import annotations

import dataclasses

FAMILIES = ("mlp", "conv", "transformer")
HEAD_LAYOUTS = ("fixed_head_dim", "fixed_heads")
"""fixed_head_dim: the head dimension is held and heads = n / head_dim grow with width;
fixed_heads: the number of heads is held and head_dim = n / heads grows with width."""
ATTENTION_ROLES = ("attn_q", "attn_k", "attn_v", "attn_out")
"""The transformer's attention matrices, in forward order."""
ZERO_INIT_ROLES = ("vector", "norm")
"""Roles whose parameters start at zero: biases, and the norms' gain offsets and biases."""


class ArchitectureError(ValueError):
    """An architecture argument is out of range; the message names it and what is allowed."""


def _positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ArchitectureError(f"{name} = {value!r}; allowed: an integer >= 1")


@dataclasses.dataclass(frozen=True)
class Architecture:
    """The static shape of a network: everything that decides the compiled program.

    ``in_shape`` is one example's shape: (d,) for ``mlp``, (H, W, C) for ``conv``, (T,) tokens
    for ``transformer``. ``base_width`` and ``base_depth`` are (n0, L0): where every scheme is
    the same network. ``head_layout``, ``head_dim``, ``heads`` and ``mlp_ratio`` are read by the
    transformer family only (module docstring).
    """

    width: int
    depth: int
    block_depth: int = 1
    in_shape: tuple[int, ...] = (40,)
    num_classes: int = 10
    family: str = "mlp"
    base_width: int = 64
    base_depth: int = 2
    bias: bool = False
    head_layout: str = "fixed_head_dim"
    head_dim: int = 16
    heads: int = 4
    mlp_ratio: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "in_shape", tuple(int(s) for s in self.in_shape))
        for name in ("width", "depth", "block_depth", "num_classes", "base_width", "base_depth"):
            _positive_int(name, getattr(self, name))
        if self.family not in FAMILIES:
            raise ArchitectureError(f"family = {self.family!r}; allowed: {list(FAMILIES)}")
        want = 3 if self.family == "conv" else 1
        if len(self.in_shape) != want or min(self.in_shape) < 1:
            form = {"mlp": "(features,)", "conv": "(height, width, channels)"}
            raise ArchitectureError(
                f"in_shape = {self.in_shape} for family {self.family!r}; allowed: "
                + form.get(self.family, "(sequence length,)")
            )
        if self.family == "transformer":
            self._check_transformer()

    def _check_transformer(self) -> None:
        for name in ("head_dim", "heads", "mlp_ratio"):
            _positive_int(name, getattr(self, name))
        if self.block_depth != 2:
            raise ArchitectureError(
                f"block_depth = {self.block_depth} for the transformer; allowed: 2 (its MLP "
                "branch W_2 phi(W_1 .) is a two-layer block)"
            )
        if self.bias:
            raise ArchitectureError("bias = True for the transformer; allowed: False")
        if self.head_layout not in HEAD_LAYOUTS:
            raise ArchitectureError(
                f"head_layout = {self.head_layout!r}; allowed: {list(HEAD_LAYOUTS)}"
            )
        held = "head_dim" if self.head_layout == "fixed_head_dim" else "heads"
        for name, n in (("width", self.width), ("base_width", self.base_width)):
            if n % getattr(self, held):
                raise ArchitectureError(
                    f"{name} = {n} is not a multiple of {held} = {getattr(self, held)}; allowed: "
                    f"widths divisible by {held} (head_layout {self.head_layout!r})"
                )
        for name, d in (("head dimension", self.d_head), ("base head dimension", self.d_head0)):
            if d % 2:
                raise ArchitectureError(
                    f"{name} = {d}; allowed: an even number (rotary position embedding)"
                )

    @property
    def width_ratio(self) -> float:
        """m = n / n0."""
        return self.width / self.base_width

    @property
    def depth_ratio(self) -> float:
        """r = L / L0."""
        return self.depth / self.base_depth

    @property
    def hidden_roles(self) -> tuple[str, ...]:
        """The layers of one residual block (the transformer's MLP branch: hidden_1, hidden_2)."""
        return tuple(f"hidden_{j}" for j in range(1, self.block_depth + 1))

    @property
    def block_roles(self) -> tuple[str, ...]:
        """The weight roles of one block in forward order (attention, then the MLP)."""
        if self.family == "transformer":
            return (*ATTENTION_ROLES, *self.hidden_roles)
        return self.hidden_roles

    @property
    def roles(self) -> tuple[str, ...]:
        """Weight roles in forward order."""
        return ("input", *self.block_roles, "readout")

    @property
    def n_heads(self) -> int:
        """Attention heads at this width (transformer)."""
        return self.width // self.head_dim if self.head_layout == "fixed_head_dim" else self.heads

    @property
    def d_head(self) -> int:
        """The head dimension at this width (transformer)."""
        return self.head_dim if self.head_layout == "fixed_head_dim" else self.width // self.heads

    @property
    def d_head0(self) -> int:
        """The head dimension at the base width (transformer)."""
        return (
            self.head_dim if self.head_layout == "fixed_head_dim" else self.base_width // self.heads
        )

    @property
    def mlp_width(self) -> int:
        """The MLP's inner width r * n (transformer)."""
        return self.mlp_ratio * self.width
