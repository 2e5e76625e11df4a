"""Kill and resume with stateful optimizers: the momentum buffer and Adam's moments (and its
step count) come back from the checkpoint, so the resumed run equals the uninterrupted one
bit for bit."""

import pandas as pd
import pytest

from hptransfer.stats.results import read_meta
from hptransfer.sweeps.config import config_from_dict
from hptransfer.sweeps.engine import Faults, SimulatedKill, run_sweep


def _config(optimizer: dict):
    return config_from_dict(
        {
            "name": "resume",
            "steps": 40,
            "eval_every": 10,
            "batch_size": 16,
            "seeds": [0, 1],
            "schemes": ["mup", "depth_mup"],
            "data": {"name": "teacher", "num_samples": 256},
            "model": {
                "widths": [16],
                "depths": [4],
                "block_depths": [2],
                "base_width": 16,
            },  # mup != depth_mup
            "optimizer": optimizer,
            "lr": {"start": -6, "stop": -4, "step": 2},
            "probe_size": 32,
            "max_replicas_per_chunk": 4,  # two chunks: the kill lands in the second
        }
    )


def _sorted(frame):
    return frame.sort_values(["scheme", "log2_lr", "seed", "step"]).reset_index(drop=True)


@pytest.mark.parametrize(
    "optimizer",
    [{"name": "sgd", "momentum": 0.9}, {"name": "adam"}],
    ids=["sgd-momentum", "adam"],
)
def test_kill_and_resume_is_bit_for_bit(tmp_path, teacher_data, optimizer):
    config = _config(optimizer)
    whole = _sorted(run_sweep(config, tmp_path / "whole", data=teacher_data, progress=False))
    out = tmp_path / "killed"
    with pytest.raises(SimulatedKill):  # chunk 1 done, chunk 2 killed after 2 of 4 segments
        run_sweep(config, out, data=teacher_data, progress=False, checkpoint_seconds=0,
                  faults=Faults(kill_after_segments=6))  # fmt: skip
    resumed = _sorted(run_sweep(config, out, data=teacher_data, progress=False))
    assert read_meta(out)["replica_steps"] == 4 * 20  # only the 2 lost segments were recomputed
    assert not whole.train_loss.isna().all()
    pd.testing.assert_frame_equal(resumed, whole, check_exact=True)
