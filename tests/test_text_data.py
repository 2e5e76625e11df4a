"""The byte-level text dataset: the stdlib corpus, a user's file or folder, the per-file split,
the evenly spaced test windows, every refusal, and a training batch of it."""

import hashlib
import platform
import re
import sysconfig
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from hptransfer.network import text as text_module
from hptransfer.network.data import DataError, Dataset, load_dataset, text
from hptransfer.network.text import STDLIB_SELECTION
from hptransfer.network.train import sample_batch


def stream_of(x: np.ndarray, y: np.ndarray) -> bytes:
    """The bytes the windows cover: the rows of x one after another, then y's last byte."""
    return bytes(np.concatenate([x.reshape(-1), y[-1, -1:]]).astype(np.uint8))


def random_bytes(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.fixture(scope="module")
def stdlib_text() -> Dataset:
    return text()


def test_the_default_corpus_is_the_stdlib_selection_in_next_byte_windows(stdlib_text):
    data = stdlib_text
    root = Path(sysconfig.get_paths()["stdlib"])
    blobs = [(root / rel).read_bytes() for rel in sorted(STDLIB_SELECTION)]
    assert data.name == "text" and data.num_classes == 256
    assert data.x_train.dtype == data.y_train.dtype == data.x_test.dtype == np.int32
    assert data.x_train.shape[1:] == data.x_test.shape[1:] == (64,) == data.in_shape
    assert data.x_train.shape == data.y_train.shape and len(data.x_train) > 20_000
    assert data.x_test.shape == data.y_test.shape == (256, 64)
    for i in (0, 1, 1000, len(data.x_train) - 2):
        assert np.array_equal(data.y_train[i, :-1], data.x_train[i, 1:])
        assert data.y_train[i, -1] == data.x_train[i + 1, 0]
    meta = data.meta
    assert meta["sha256"] == hashlib.sha256(b"".join(blobs)).hexdigest()
    assert (meta["corpus"], meta["files"], meta["python"]) == (
        "stdlib",
        len(STDLIB_SELECTION),
        platform.python_version(),
    )
    assert meta["bytes"] == sum(map(len, blobs)) == meta["train_bytes"] + meta["validation_bytes"]
    assert (meta["seq_len"], meta["eval_sequences"], meta["validation_fraction"]) == (64, 256, 0.1)
    cuts = [int(len(b) * 0.9) for b in blobs]
    train = b"".join(b[:c] for b, c in zip(blobs, cuts, strict=True))
    val = b"".join(b[c:] for b, c in zip(blobs, cuts, strict=True))
    assert stream_of(data.x_train, data.y_train) == train[: len(data.x_train) * 64 + 1]
    assert bytes(data.x_test[0].astype(np.uint8)) == val[:64]  # the first validation window
    n_val = (len(val) - 1) // 64
    assert bytes(data.y_test[-1].astype(np.uint8)) == val[(n_val - 1) * 64 + 1 : n_val * 64 + 1]


def test_two_loads_are_identical(stdlib_text):
    again = text()
    assert again.meta == stdlib_text.meta
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(again, field), getattr(stdlib_text, field))


def test_missing_stdlib_files_are_skipped_but_not_most_of_them(monkeypatch):
    monkeypatch.setattr(text_module, "STDLIB_SELECTION", ("ast.py", "shlex.py", "nope.py"))
    data = text(seq_len=16)
    root = Path(sysconfig.get_paths()["stdlib"])
    blob = (root / "ast.py").read_bytes() + (root / "shlex.py").read_bytes()
    assert data.meta["files"] == 2 and data.meta["sha256"] == hashlib.sha256(blob).hexdigest()
    monkeypatch.setattr(text_module, "STDLIB_SELECTION", ("ast.py", "nope.py", "nope2.py"))
    with pytest.raises(DataError, match=r"only 1 of the 3 files of STDLIB_SELECTION"):
        text()


def test_a_users_file_is_split_at_the_fraction_and_kept_as_bytes(tmp_path):
    blob = bytes(range(256)) * 2  # every byte value, none of them decoded
    file = tmp_path / "corpus.bin"
    file.write_bytes(blob)
    data = text(file, seq_len=8, eval_sequences=100, validation_fraction=0.25)
    assert bytes(data.x_train[0].astype(np.uint8)) == blob[0:8]
    assert bytes(data.y_train[0].astype(np.uint8)) == blob[1:9]
    assert bytes(data.x_test[0].astype(np.uint8)) == blob[384:392]  # 512 * 0.75 = 384
    assert bytes(data.y_test[0].astype(np.uint8)) == blob[385:393]
    assert data.x_train.shape == (47, 8) and data.x_test.shape == (15, 8)  # 383 // 8, 127 // 8
    assert data.meta == {
        "corpus": str(file.resolve()),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "files": 1,
        "bytes": 512,
        "train_bytes": 384,
        "validation_bytes": 128,
        "seq_len": 8,
        "eval_sequences": 15,
        "validation_fraction": 0.25,
    }


def test_a_folder_is_read_in_sorted_path_order_without_hidden_files_or_symlinks(tmp_path):
    a, b = random_bytes(300, 1), random_bytes(200, 2)
    (tmp_path / "c.txt").write_bytes(a)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.txt").write_bytes(b)  # "b/x.txt" sorts before "c.txt"
    (tmp_path / ".hidden").write_bytes(b"secret" * 50)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_bytes(b"[core]" * 50)
    (tmp_path / "link.txt").symlink_to(tmp_path / "c.txt")
    (tmp_path / "linked").symlink_to(tmp_path / "b", target_is_directory=True)
    data = text(tmp_path, seq_len=4, eval_sequences=10_000, validation_fraction=0.1)
    assert data.meta["files"] == 2
    assert data.meta["sha256"] == hashlib.sha256(b + a).hexdigest()
    train, val = b[:180] + a[:270], b[180:] + a[270:]
    assert (data.meta["train_bytes"], data.meta["validation_bytes"]) == (450, 50)
    assert stream_of(data.x_train, data.y_train) == train[: len(data.x_train) * 4 + 1]
    assert len(data.x_train) == 449 // 4 and len(data.x_test) == 49 // 4
    assert stream_of(data.x_test, data.y_test) == val[: len(data.x_test) * 4 + 1]


def test_eval_sequences_takes_evenly_spaced_validation_windows(tmp_path):
    blob = random_bytes(1000, 3)
    (tmp_path / "f").write_bytes(blob)
    val = np.frombuffer(blob[500:], np.uint8).astype(np.int32)  # fraction 0.5: 124 windows
    windows = val[: 124 * 4].reshape(124, 4)
    for k, expected in ((5, [0, 31, 62, 92, 123]), (1, [0]), (124, range(124)), (999, range(124))):
        data = text(tmp_path / "f", seq_len=4, eval_sequences=k, validation_fraction=0.5)
        assert np.array_equal(data.x_test, windows[list(expected)])
        assert np.array_equal(data.y_test, val[1 : 124 * 4 + 1].reshape(124, 4)[list(expected)])
        assert data.meta["eval_sequences"] == len(expected)


def refuse(tmp_path: Path, case: str) -> dict:
    """The arguments of one refused case, its files made under tmp_path."""
    (tmp_path / "ok").write_bytes(random_bytes(400, 4))
    if case == "empty folder":
        (tmp_path / "empty").mkdir()
        return {"path": tmp_path / "empty"}
    if case == "only hidden and symlinks":
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / ".hidden").write_bytes(b"x" * 400)
        (tmp_path / "d" / "link").symlink_to(tmp_path / "ok")
        return {"path": tmp_path / "d"}
    if case == "empty files":
        (tmp_path / "e").mkdir()
        (tmp_path / "e" / "one").write_bytes(b"")
        (tmp_path / "e" / "two").write_bytes(b"")
        return {"path": tmp_path / "e"}
    if case == "empty file":
        (tmp_path / "zero").write_bytes(b"")
        return {"path": tmp_path / "zero"}
    if case == "too small":
        (tmp_path / "small").write_bytes(b"0123456789" * 2)  # 18 training, 2 validation bytes
        return {"path": tmp_path / "small", "seq_len": 8}
    return {"path": tmp_path / ("missing" if case == "missing" else "ok")}


@pytest.mark.parametrize(
    ("case", "kwargs", "match"),
    [
        ("missing", {}, r"'.*missing' does not exist"),
        ("empty folder", {}, r"folder '.*empty' has no regular file"),
        ("only hidden and symlinks", {}, r"folder '.*d' has no regular file"),
        ("empty files", {}, r"'.*e' is empty \(0 bytes\)"),
        ("empty file", {}, r"'.*zero' is empty \(0 bytes\)"),
        ("too small", {}, r"'.*small' has 20 bytes .*seq_len = 8 it needs >= 17 training"),
        ("ok", {"seq_len": 1}, r"seq_len = 1; allowed: an integer >= 2"),
        ("ok", {"seq_len": 4.0}, r"seq_len = 4.0; allowed: an integer >= 2"),
        ("ok", {"eval_sequences": 0}, r"eval_sequences = 0; allowed: an integer >= 1"),
        ("ok", {"validation_fraction": 0}, r"validation_fraction = 0; allowed: .*\(0, 1\)"),
        ("ok", {"validation_fraction": 1.0}, r"validation_fraction = 1.0; allowed"),
        ("ok", {"validation_fraction": -0.5}, r"validation_fraction = -0.5; allowed"),
    ],
)
def test_refusals_name_the_path_or_the_argument(tmp_path, monkeypatch, case, kwargs, match):
    def no_reading(self):  # every refusal comes before any file is read
        raise AssertionError(f"read {self}")

    monkeypatch.setattr(Path, "read_bytes", no_reading)
    with pytest.raises(DataError, match=match) as err:
        text(**{**refuse(tmp_path, case), **kwargs})
    assert "\n" not in str(err.value)


def test_an_unreadable_file_is_named(tmp_path, monkeypatch):
    (tmp_path / "a").write_bytes(random_bytes(400, 5))
    (tmp_path / "b").write_bytes(random_bytes(400, 6))
    read_bytes = Path.read_bytes

    def denied(self):
        if self.name == "b":
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(DataError, match=r"file '.*b' cannot be read: .*Permission denied") as err:
        text(tmp_path, seq_len=8)
    assert "\n" not in str(err.value)


def test_load_dataset_dispatches_text(tmp_path):
    (tmp_path / "f").write_bytes(random_bytes(2000, 7))
    data = load_dataset("text", path=tmp_path / "f", seq_len=16, eval_sequences=4)
    assert isinstance(data, Dataset) and data.name == "text" and data.num_classes == 256
    assert data.x_train.shape == (1799 // 16, 16) and data.x_test.shape == (4, 16)
    assert re.fullmatch(r"[0-9a-f]{64}", data.meta["sha256"])


def test_a_dataset_takes_next_token_targets_but_not_other_shapes():
    x = np.zeros((4, 3), np.int32)
    Dataset("t", x, np.zeros(4, np.int32), x, np.zeros((4, 3), np.int32), 2)
    with pytest.raises(DataError, match=r"x_train \(4, 3\) and y_train \(4, 2\) disagree"):
        Dataset("t", x, np.zeros((4, 2), np.int32), x, x, 2)
    with pytest.raises(DataError, match=r"x_test \(4, 3\) and y_test \(3,\) disagree"):
        Dataset("t", x, x, x, np.zeros(3, np.int32), 2)
    assert Dataset("t", x, x, x, x, 2).meta == {}


def test_a_training_batch_pairs_each_window_with_its_next_bytes(tmp_path):
    (tmp_path / "f").write_bytes(random_bytes(4000, 8))
    data = text(tmp_path / "f", seq_len=16)
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    xb, yb = sample_batch(jnp.int32(0), jnp.int32(3), x, y, 8)
    xb, yb = np.asarray(xb), np.asarray(yb)
    assert xb.shape == yb.shape == (8, 16) and xb.dtype == np.int32
    assert np.array_equal(yb[:, :-1], xb[:, 1:])
    for row_x, row_y in zip(xb, yb, strict=True):
        (i,) = np.flatnonzero((data.x_train == row_x).all(axis=1))  # random bytes: unique rows
        assert np.array_equal(data.y_train[i], row_y)
        if i + 1 < len(data.x_train):
            assert row_y[-1] == data.x_train[i + 1, 0]
