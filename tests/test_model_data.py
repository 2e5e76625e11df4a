"""Architectures, bad input, the conv family, and the datasets (CIFAR-10 from a written archive)."""

import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hptransfer.network.data import (
    DataError,
    cifar10,
    load_dataset,
    mnist1d,
    teacher,
    write_cifar10_archive,
)
from hptransfer.network.model import Architecture, ArchitectureError, apply, raw_init, scale_init
from hptransfer.network.optim import OptimizerConfig, OptimizerError
from hptransfer.network.scaling import multipliers
from hptransfer.network.schemes import get_scheme
from hptransfer.network.train import train_run


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"width": -4}, "width"),
        ({"block_depth": 0}, "block_depth"),
        ({"depth": 0}, "depth"),
        ({"family": "rnn"}, "family"),
        ({"family": "conv"}, "in_shape"),
    ],
)
def test_bad_architecture_names_the_field(kwargs, field):
    base = {"width": 64, "depth": 2, "block_depth": 1, "in_shape": (40,)}
    with pytest.raises(ArchitectureError, match=field):
        Architecture(**{**base, **kwargs})


def test_wrong_data_shape_is_refused_before_compute(teacher_data):
    arch = Architecture(64, 2, 1, (40,), 10)  # teacher data has 32 features
    with pytest.raises(ArchitectureError, match=r"expects \(batch, 40\)"):
        train_run("mup", arch, OptimizerConfig(), 0.1, 0, teacher_data, 5)


def test_bad_optimizer_settings():
    with pytest.raises(OptimizerError, match="allowed"):
        OptimizerConfig("lion")
    with pytest.raises(OptimizerError, match="momentum"):
        OptimizerConfig("sgd", momentum=1.5)


def test_raw_draws_are_shared_and_scaled_per_scheme():
    arch = Architecture(128, 4, 2, (40,), 10)
    raw = raw_init(jax.random.key(3), arch)
    assert raw["blocks"]["hidden_1"]["kernel"].shape == (4, 128, 128)
    sp = scale_init(raw, multipliers(get_scheme("sp"), arch).init_std)
    mup = scale_init(raw, multipliers(get_scheme("mup"), arch).init_std)
    np.testing.assert_allclose(
        sp["blocks"]["hidden_1"]["kernel"], mup["blocks"]["hidden_1"]["kernel"]
    )
    ratio = mup["readout"]["kernel"] / sp["readout"]["kernel"]
    np.testing.assert_allclose(ratio, 1 / np.sqrt(2), rtol=1e-6)  # m = 2: readout std / sqrt(m)


def test_conv_resnet_trains_and_is_scheme_invariant_at_base(image_data):
    arch = Architecture(16, 2, 2, (8, 8, 3), 10, family="conv", base_width=16, base_depth=2)
    x = jnp.asarray(image_data.x_train[:8])
    raw = raw_init(jax.random.key(0), arch)
    outs = []
    for name in ("sp", "mup", "nfd"):
        mult = multipliers(get_scheme(name), arch)
        outs.append(apply(scale_init(raw, mult.init_std), x, mult.forward, mult.branch, arch))
    np.testing.assert_allclose(outs[0], outs[2], rtol=1e-5)
    result = train_run("depth_mup", arch, OptimizerConfig(), 0.5, 0, image_data, 30, 32)
    assert np.isfinite(result.losses).all()
    assert result.losses[-10:].mean() < result.losses[:3].mean()
    assert result.movement["own_movement/hidden_1"] > 0


def test_bias_uses_the_vector_role(teacher_data):
    arch = Architecture(64, 2, 1, (32,), 10, bias=True)
    result = train_run("mup", arch, OptimizerConfig(), 0.3, 0, teacher_data, 20)
    assert np.isfinite(result.losses).all()


def test_mnist1d_is_generated_offline_and_cached(tmp_path, monkeypatch):
    import mnist1d.data as source

    monkeypatch.setattr(source.requests, "get", lambda *a, **k: pytest.fail("download attempted"))
    data = mnist1d(200, seed=1, cache=tmp_path)
    assert data.x_train.shape == (160, 40) and data.x_test.shape == (40, 40)
    assert set(np.unique(data.y_train)) <= set(range(10))
    assert len(list(tmp_path.glob("*.npz"))) == 1
    again = mnist1d(200, seed=1, cache=tmp_path)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    (next(tmp_path.glob("*.npz"))).write_bytes(b"garbage")  # a corrupt cache is rebuilt
    np.testing.assert_array_equal(mnist1d(200, seed=1, cache=tmp_path).x_train, data.x_train)


def test_teacher_task_is_learnable_and_deterministic():
    a, b = teacher(512, seed=4), teacher(512, seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert len(np.unique(a.y_train)) > 3


def _tiny_cifar(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 24)
    path = write_cifar10_archive(tmp_path / "cifar-10-python.tar.gz", images, labels)
    return path, images, labels


def test_cifar10_parser_reads_the_archive_format(tmp_path):
    path, images, labels = _tiny_cifar(tmp_path)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    data = cifar10(path, md5=md5)
    assert data.x_train.shape == (20, 32, 32, 3) and data.x_test.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(data.y_test, labels[20:])
    # standardised per channel, and the pixel order is HWC: undo the standardisation and compare
    raw = np.concatenate([images[:20]]) / 255.0
    corr = np.corrcoef(raw[..., 0].ravel(), data.x_train[..., 0].ravel())[0, 1]
    assert corr > 0.999


def test_cifar10_errors_name_the_path(tmp_path):
    path, _, _ = _tiny_cifar(tmp_path)
    with pytest.raises(DataError, match="MD5"):
        cifar10(path)  # not the canonical archive
    with pytest.raises(DataError, match="not found"):
        cifar10(tmp_path / "nowhere.tar.gz")
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match="broken.tar.gz"):
        cifar10(broken, md5=None)
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("imagenet")
