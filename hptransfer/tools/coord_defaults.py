"""The coordinate check's settings and their defaults, as data: :mod:`hptransfer.tools.coordcheck`
and the command line's ``hptransfer coordcheck`` both read them from here (the parser without
importing the check's pandas and matplotlib)."""

from hptransfer.network.scaling import AXES, OPTIMIZER_FAMILIES

__all__ = [
    "AXES", "DATASETS", "DEFAULT_BATCH_SIZE", "FAMILIES", "TRANSFORMER", "DEFAULT_DEPTHS", "DEFAULT_LOG2_LR", "DEFAULT_SEEDS",
    "DEFAULT_STEPS", "DEFAULT_TOLERANCE", "DEFAULT_WIDTHS", "OPTIMIZER_FAMILIES",
]  # fmt: skip

DEFAULT_WIDTHS: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
DEFAULT_DEPTHS: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
DEFAULT_TOLERANCE = 0.4
# The check compares optimizer families (OPTIMIZER_FAMILIES, re-exported above): AdamW's weight
# decay plays no part in a few steps.
DEFAULT_LOG2_LR: dict[str, float] = {"sgd": -3.0, "adam": -8.0}
DATASETS = ("mnist1d", "teacher")  # vector inputs: the MLP families the check draws
DEFAULT_STEPS = 5
DEFAULT_SEEDS = 3
DEFAULT_BATCH_SIZE = 128

FAMILIES = ("mlp", "transformer")  # the families the check draws
TRANSFORMER: dict[str, object] = {
    "widths": (64, 128, 256, 512),
    "depths": (2, 4, 8, 16, 32),
    "batch_size": 16,
    "seq_len": 32,
    "head_dim": 16,
    "mlp_ratio": 4,
}
"""The transformer's defaults (on byte-level text, ``data.text``): smaller than the MLP's, since
every example is a sequence of ``seq_len`` tokens; heads of fixed dimension."""
