"""Test set-up: two host devices (as the CLI does on a 2-core machine) and shared fixtures."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import pytest  # noqa: E402

from hptransfer.data import teacher  # noqa: E402


@pytest.fixture(scope="session")
def teacher_data():
    """A small synthetic classification task (32 features, 10 classes)."""
    return teacher(num_samples=2048, in_shape=(32,), num_classes=10, seed=0)


@pytest.fixture(scope="session")
def image_data():
    return teacher(num_samples=256, in_shape=(8, 8, 3), num_classes=10, seed=1)
