"""stats.frames.wide_mean gives what pandas' pivot_table gives (mean, dropna=True)."""

import numpy as np
import pandas as pd
import pytest

from hptransfer.stats.frames import wide_mean


def _frame(rng, n, duplicates, nans):
    f = pd.DataFrame({
        "scheme": rng.choice(["mup", "nfd"], n),
        "seed": rng.integers(0, 4, n),
        "depth": rng.choice([2, 8, 32], n),
        "log2_lr": rng.choice([-3.0, -2.25, -1.5, 0.0], n),
        "loss": rng.random(n),
    })  # fmt: skip
    if not duplicates:
        f = f.drop_duplicates(["scheme", "seed", "depth", "log2_lr"])
    if nans:
        f.loc[f.sample(frac=0.3, random_state=1).index, "loss"] = np.nan
        f.loc[f.sample(frac=0.1, random_state=2).index, "loss"] = np.inf
    return f


@pytest.mark.parametrize("duplicates", [False, True])
@pytest.mark.parametrize("nans", [False, True])
@pytest.mark.parametrize(
    ("index", "columns"),
    [("seed", "log2_lr"), ("seed", "depth"), (["scheme", "seed"], "depth"),
     ("seed", ["depth", "log2_lr"])],
)  # fmt: skip
def test_wide_mean_is_pivot_tables_mean(duplicates, nans, index, columns):
    rng = np.random.default_rng(0)
    for n in (1, 5, 40, 200):
        f = _frame(rng, n, duplicates, nans)
        want = f.pivot_table(index=index, columns=columns, values="loss", aggfunc="mean")
        pd.testing.assert_frame_equal(wide_mean(f, index, columns, "loss"), want)


def test_a_row_or_column_of_nan_only_is_left_out_as_pivot_table_does():
    f = pd.DataFrame({"seed": [0, 0, 1, 1], "lr": [1.0, 2.0, 1.0, 2.0],
                      "loss": [np.nan, 0.5, np.nan, np.nan]})  # fmt: skip
    got = wide_mean(f, "seed", "lr", "loss")
    pd.testing.assert_frame_equal(got, f.pivot_table(index="seed", columns="lr", values="loss"))
    assert list(got.index) == [0] and list(got.columns) == [2.0]
