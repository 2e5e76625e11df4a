"""Datasets (docs/design.md, modules): MNIST-1D generated offline, a synthetic teacher, CIFAR-10,
and byte-level text.

Every classification loader returns a :class:`Dataset` of float32 inputs and int32 labels,
standardised with training-set statistics. Nothing is ever downloaded: MNIST-1D comes from the
``mnist1d`` package's procedural generator (cached as .npz under the user cache folder),
CIFAR-10 from a local folder or the canonical ``cifar-10-python.tar.gz`` archive, checked
against its MD5, and text (:mod:`hptransfer.network.text`) from local files, by default the
Python standard library's own source: int32 byte windows with next-byte targets.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import importlib
import io
import os
import pickle
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from hptransfer.network.text import TextCorpusError, read_corpus

CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # cifar-10-python.tar.gz, as published
CIFAR10_FOLDER = "cifar-10-batches-py"
DATASET_SHAPES: dict[str, tuple[int, ...]] = {
    "mnist1d": (40,),
    "teacher": (32,),
    "teacher_images": (8, 8, 3),
    "cifar10": (32, 32, 3),
    "text": (64,),  # one sequence of the default seq_len; a config's seq_len replaces it
}
"""The registry of datasets: one example's input shape, by name, as its loader makes it (10
classes each, except text: 256 byte values, one target per position)."""
DATASETS = tuple(DATASET_SHAPES)


class DataError(ValueError):
    """A dataset cannot be read or built; the message names the path or the argument."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Provenance a run records in its meta.json (text: corpus, sha256, sizes); else empty."""

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            labels = y.ndim == 1 and x.shape[0] == y.shape[0]  # classification
            if not (labels or y.shape == x.shape):  # or next-token targets, one per position
                raise DataError(
                    f"{self.name}: x_{split} {x.shape} and y_{split} {y.shape} disagree"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(f"{self.name}: train and test inputs have different shapes")


def cache_dir() -> Path:
    """$HPTRANSFER_CACHE, else $XDG_CACHE_HOME/hptransfer, else ~/.cache/hptransfer."""
    if os.environ.get("HPTRANSFER_CACHE"):
        return Path(os.environ["HPTRANSFER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hptransfer"


def _standardise(name: str, x_tr, y_tr, x_te, y_te, num_classes: int, axes) -> Dataset:
    x_tr, x_te = np.asarray(x_tr, np.float32), np.asarray(x_te, np.float32)
    mean = x_tr.mean(axis=axes, keepdims=True)
    std = x_tr.std(axis=axes, keepdims=True) + 1e-8
    return Dataset(
        name,
        (x_tr - mean) / std,
        np.asarray(y_tr, np.int32),
        (x_te - mean) / std,
        np.asarray(y_te, np.int32),
        num_classes,
    )


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def mnist1d(num_samples: int = 20_000, seed: int = 42, cache: Path | None = None) -> Dataset:
    """MNIST-1D (Greydanus 2020), made by the package's generator; 80/20 train/test split.

    Generation is deterministic in (num_samples, seed) and cached; the download path of the
    package is never used.
    """
    if not isinstance(num_samples, int) or num_samples < 10:
        raise DataError(f"mnist1d num_samples = {num_samples!r}; allowed: an integer >= 10")
    path = (cache or cache_dir()) / f"mnist1d_n{num_samples}_seed{seed}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:  # arrays only, never objects
                arrays = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
        except Exception:  # a corrupt cache entry is rebuilt, never trusted
            path.unlink(missing_ok=True)
            return mnist1d(num_samples, seed, cache)
    else:
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples, args.seed = num_samples, seed
        made = make_dataset(args)
        arrays = {k: np.asarray(made[k]) for k in ("x", "y", "x_test", "y_test")}
        _atomic_savez(path, **arrays)
    return _standardise(
        "mnist1d", arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"], 10, axes=None
    )


def teacher(
    num_samples: int = 4096,
    in_shape: tuple[int, ...] = (32,),
    num_classes: int = 10,
    teacher_width: int = 256,
    seed: int = 0,
    test_fraction: float = 0.25,
) -> Dataset:
    """Synthetic teacher task: x ~ N(0, I), y = argmax of a random two-layer ReLU network of x.

    ``in_shape`` may be (d,) or an image shape (H, W, C); the teacher sees the flattened input.
    """
    if num_samples < 8:
        raise DataError(f"teacher num_samples = {num_samples!r}; allowed: an integer >= 8")
    rng = np.random.default_rng(seed)
    d = int(np.prod(in_shape))
    x = rng.standard_normal((num_samples, d)).astype(np.float32)
    w1 = rng.standard_normal((d, teacher_width)) / np.sqrt(d)
    w2 = rng.standard_normal((teacher_width, num_classes)) / np.sqrt(teacher_width)
    y = np.argmax(np.maximum(x @ w1, 0) @ w2, axis=1)
    n_test = max(1, int(num_samples * test_fraction))
    x = x.reshape((num_samples, *in_shape))
    return Dataset(
        "teacher",
        x[n_test:],
        y[n_test:].astype(np.int32),
        x[:n_test],
        y[:n_test].astype(np.int32),
        num_classes,
    )


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _numpy_core(submodule: str) -> Any:
    """numpy's ``_core.<submodule>`` (numpy 2), else ``core.<submodule>`` (numpy 1)."""
    try:
        return importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:
        return importlib.import_module(f"numpy.core.{submodule}")


CIFAR10_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{
        (f"{core}.{sub}", name): getattr(_numpy_core(sub), name)
        for core in ("numpy.core", "numpy._core")
        for sub, name in (("multiarray", "_reconstruct"), ("numeric", "_frombuffer"))
    },
    ("_codecs", "encode"): codecs.encode,
}
"""The only globals a CIFAR-10 batch may name: numpy's array rebuilders (pickle protocols 2-4:
``_reconstruct``, ``ndarray``, ``dtype``; protocol 5: ``_frombuffer``), under numpy 1 and 2
module names, and ``_codecs.encode`` (bytes in a protocol-2 pickle written by Python 3). The
rest of the format (dicts, lists, bytes, str, ints) needs no global at all."""


class UnsafePickleError(DataError):
    """A pickled dataset file names a global outside :data:`CIFAR10_GLOBALS`."""


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`CIFAR10_GLOBALS`: any other global (a function a
    crafted file would call, such as ``os.system``) is refused before it is even imported."""

    def find_class(self, module: str, name: str) -> Any:
        found = CIFAR10_GLOBALS.get((module, name))
        if found is None:
            raise UnsafePickleError(
                f"it names the global {module}.{name}, which the CIFAR-10 format never does "
                "(allowed: dicts, lists, bytes, str, numbers and numpy arrays); not loaded"
            )
        return found


def load_cifar_pickle(blob: bytes) -> Any:
    """Unpickle one CIFAR-10 batch with :class:`_CifarUnpickler` (never ``pickle.loads``)."""
    return _CifarUnpickler(io.BytesIO(blob), encoding="bytes").load()


def _read_batch(blob: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = load_cifar_pickle(blob)
    except UnsafePickleError as err:
        raise UnsafePickleError(f"CIFAR-10 batch {where}: {err}") from None
    except Exception as err:
        raise DataError(
            f"CIFAR-10 batch {where} is corrupt or not in the CIFAR-10 format: {err}"
        ) from err
    try:
        data = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], np.int32)
    except Exception as err:
        raise DataError(
            f"CIFAR-10 batch {where} is corrupt or not in the CIFAR-10 format: {err}"
        ) from err
    if data.shape[0] != labels.shape[0]:
        raise DataError(f"CIFAR-10 batch {where}: {data.shape[0]} images, {labels.shape[0]} labels")
    return data.transpose(0, 2, 3, 1), labels


def cifar10(path: str | Path, md5: str | None = CIFAR10_MD5) -> Dataset:
    """CIFAR-10 from the python-format archive (``.tar.gz``, MD5-checked) or its extracted folder.

    ``md5=None`` skips the checksum (for archives one made oneself). Train: data_batch_1..5;
    test: test_batch. Images are NHWC float32, standardised per channel.
    """
    path = Path(path)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if not path.exists():
        raise DataError(f"CIFAR-10 not found at {str(path)!r}: give the archive or its folder")
    blobs: dict[str, bytes] = {}
    if path.is_dir():
        folder = path / CIFAR10_FOLDER if (path / CIFAR10_FOLDER).is_dir() else path
        for name in names:
            file = folder / name
            if not file.exists():
                raise DataError(f"CIFAR-10 folder {str(folder)!r} has no file {name!r}")
            blobs[name] = file.read_bytes()
    else:
        if md5 is not None:
            got = _md5(path)
            if got != md5:
                raise DataError(
                    f"CIFAR-10 archive {str(path)!r} has MD5 {got}, expected {md5}: "
                    "the file is corrupt or not the canonical cifar-10-python.tar.gz"
                )
        try:
            with tarfile.open(path, "r:gz") as tar:
                for member in tar.getmembers():
                    base = os.path.basename(member.name)
                    if base in names and member.isfile():
                        blobs[base] = tar.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError) as err:
            raise DataError(f"CIFAR-10 archive {str(path)!r} cannot be read: {err}") from err
        missing = [n for n in names if n not in blobs]
        if missing:
            raise DataError(f"CIFAR-10 archive {str(path)!r} lacks {missing}")
    parts = [_read_batch(blobs[n], f"{path}/{n}") for n in names]
    x_tr = np.concatenate([p[0] for p in parts[:5]])
    y_tr = np.concatenate([p[1] for p in parts[:5]])
    x_te, y_te = parts[5]
    return _standardise("cifar10", x_tr / 255.0, y_tr, x_te / 255.0, y_te, 10, axes=(0, 1, 2))


def write_cifar10_archive(path: str | Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write a (small) archive in the exact CIFAR-10 python format: for tests and fixtures.

    ``images`` is (N, 32, 32, 3) uint8; the N images are dealt over the six batch files.
    """
    path = Path(path)
    chunks = np.array_split(np.arange(len(images)), 6)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    with tarfile.open(path, "w:gz") as tar:
        for name, idx in zip(names, chunks, strict=True):
            batch = {
                b"batch_label": name.encode(),
                b"labels": [int(v) for v in labels[idx]],
                b"data": images[idx].transpose(0, 3, 1, 2).reshape(len(idx), -1),
                b"filenames": [f"{i}.png".encode() for i in idx],
            }
            blob = pickle.dumps(batch)
            info = tarfile.TarInfo(f"{CIFAR10_FOLDER}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


def text(
    path: str | Path | None = None,
    seq_len: int = 64,
    eval_sequences: int = 256,
    validation_fraction: float = 0.1,
) -> Dataset:
    """Byte-level language modelling: :func:`hptransfer.network.text.read_corpus` as a Dataset
    named "text" (int32 windows of shape (N, seq_len), y the next byte of x, 256 classes, the
    corpus's provenance in ``meta``); its errors are raised as :class:`DataError`."""
    try:
        split = read_corpus(path, seq_len, eval_sequences, validation_fraction)
    except TextCorpusError as err:
        raise DataError(str(err)) from None
    return Dataset(
        "text", split.x_train, split.y_train, split.x_test, split.y_test, 256, split.meta
    )


def load_dataset(name: str, **kwargs) -> Dataset:
    """Dispatch by name: mnist1d(num_samples, seed), teacher(...), cifar10(path, md5),
    text(path, seq_len, eval_sequences, validation_fraction)."""
    if name == "mnist1d":
        return mnist1d(**kwargs)
    if name == "teacher":
        return teacher(**kwargs)
    if name == "teacher_images":
        kwargs.setdefault("in_shape", (8, 8, 3))
        return teacher(**kwargs)
    if name == "cifar10":
        return cifar10(**kwargs)
    if name == "text":
        return text(**kwargs)
    raise DataError(f"unknown dataset {name!r}; allowed: {list(DATASETS)}")
