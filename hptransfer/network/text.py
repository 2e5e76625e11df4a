"""A byte-level language-modelling corpus read from local text: nothing is ever downloaded.

The default corpus is Python's own standard library source, which every machine that runs this
package has: the files named in :data:`STDLIB_SELECTION`, read from
``sysconfig.get_paths()["stdlib"]`` in that (sorted) order. Files of the selection that the
running Python lacks are skipped (fewer than half present is refused). These files change from
one Python release to the next, so the corpus's sha256, its size and the Python version are
recorded in the returned ``meta``: two runs saw the same text exactly when their sha256 agree.
A user's corpus is a file, or a folder read recursively (see :func:`corpus_files`).

Split, per file: the first ``int(len(b) * (1 - validation_fraction))`` bytes of each file ``b``
go to the training stream, the rest to the validation stream, so both streams see every file;
each stream is the concatenation of its parts in file order. Bytes are used as they are (no
decoding, no normalisation): the vocabulary is the 256 byte values.

Design: this module imports nothing of hptransfer, so that :mod:`hptransfer.network.data` can
import it at its top without an import cycle. It raises its own :class:`TextCorpusError` and
returns a plain :class:`TextSplit`; ``data.text`` wraps that into a ``Dataset`` and re-raises
the error as ``DataError``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import stat
import sysconfig
from pathlib import Path
from typing import Any

import numpy as np

STDLIB_SELECTION: tuple[str, ...] = (
    *("argparse.py", "ast.py", "bdb.py", "calendar.py", "cmd.py", "configparser.py"),
    *("contextlib.py", "copy.py", "csv.py", "dataclasses.py", "difflib.py", "dis.py"),
    *("enum.py", "fractions.py", "functools.py", "gettext.py", "heapq.py", "inspect.py"),
    *("ipaddress.py", "mailbox.py", "optparse.py", "pdb.py", "pickle.py", "pprint.py"),
    *("random.py", "shlex.py", "shutil.py", "smtplib.py", "statistics.py", "subprocess.py"),
    *("tarfile.py", "tempfile.py", "textwrap.py", "threading.py", "tokenize.py"),
    *("traceback.py", "typing.py", "uuid.py"),
)
"""The default corpus: 38 standard-library modules, relative to the stdlib folder, that are plain
``.py`` files in Python 3.10 to 3.14 (not those that became packages or shims: pathlib, zipfile,
sysconfig, string, datetime, warnings). About 2 MB of source."""


class TextCorpusError(ValueError):
    """A text corpus cannot be read or split; the message names the path or the argument."""


@dataclasses.dataclass(frozen=True)
class TextSplit:
    """Windows of the two streams: int32 arrays of shape (N, seq_len); y is x's next byte."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    meta: dict[str, Any]


def corpus_files(path: str | Path | None) -> tuple[str, list[Path]]:
    """(label for meta, the corpus's files in order), without reading them.

    ``None``: the present files of :data:`STDLIB_SELECTION` (label ``"stdlib"``). A file: itself.
    A folder: every regular file under it, recursively, sorted by relative POSIX path, skipping
    hidden names (starting with '.') of files and folders and symlinks. The label of a user's
    corpus is its resolved absolute path."""
    if path is None:
        root = Path(sysconfig.get_paths()["stdlib"])
        files = [root / rel for rel in sorted(STDLIB_SELECTION) if (root / rel).is_file()]
        if 2 * len(files) < len(STDLIB_SELECTION):
            raise TextCorpusError(
                f"stdlib corpus: only {len(files)} of the {len(STDLIB_SELECTION)} files of "
                f"STDLIB_SELECTION exist under {str(root)!r}; at least half are needed"
            )
        return "stdlib", files
    given = Path(path).expanduser()
    if not given.exists():
        raise TextCorpusError(f"text corpus {str(path)!r} does not exist: give a file or a folder")
    label = str(given.resolve())
    if not given.is_dir():
        return label, [given]
    found: list[tuple[str, Path]] = []
    for folder, dirs, names in os.walk(given):  # does not descend into symlinked folders
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            file = Path(folder, name)
            if not name.startswith(".") and stat.S_ISREG(file.lstat().st_mode):
                found.append((file.relative_to(given).as_posix(), file))
    if not found:
        raise TextCorpusError(
            f"text corpus folder {str(path)!r} has no regular file (hidden files and symlinks "
            "are skipped)"
        )
    return label, [file for _, file in sorted(found)]


def windows(stream: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """n = (len(stream) - 1) // seq_len windows at stride seq_len: x = stream[:n*T] as (n, T),
    y = stream[1:n*T+1] as (n, T), both int32."""
    n = (len(stream) - 1) // seq_len
    s = stream.astype(np.int32)
    return s[: n * seq_len].reshape(n, seq_len), s[1 : n * seq_len + 1].reshape(n, seq_len)


def read_corpus(
    path: str | Path | None = None,
    seq_len: int = 64,
    eval_sequences: int = 256,
    validation_fraction: float = 0.1,
) -> TextSplit:
    """The corpus at ``path`` (None: the stdlib selection), split per file and cut in windows.

    Training set: every training window. Test set: ``eval_sequences`` validation windows at
    the indices ``unique(round(linspace(0, n_val - 1, eval_sequences)))``, or all n_val windows
    when there are no more than that. ``meta``: corpus, sha256 (of all the files' bytes
    concatenated in order, before the split), files, bytes, train_bytes, validation_bytes,
    python (stdlib corpus only), seq_len, eval_sequences (the number used), validation_fraction.
    """
    for name, value, low in (("seq_len", seq_len, 2), ("eval_sequences", eval_sequences, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise TextCorpusError(f"text {name} = {value!r}; allowed: an integer >= {low}")
    if isinstance(validation_fraction, bool) or not (
        isinstance(validation_fraction, int | float) and 0 < validation_fraction < 1
    ):
        raise TextCorpusError(
            f"text validation_fraction = {validation_fraction!r}; allowed: a number in (0, 1)"
        )
    label, files = corpus_files(path)
    try:
        sizes = [file.stat().st_size for file in files]
    except OSError as err:
        raise TextCorpusError(f"text corpus {label!r}: a file cannot be read: {err}") from None
    if sum(sizes) == 0:
        raise TextCorpusError(f"text corpus {label!r} is empty (0 bytes); it needs text")
    cuts = [int(size * (1 - validation_fraction)) for size in sizes]
    train_bytes, val_bytes = sum(cuts), sum(sizes) - sum(cuts)
    if train_bytes < 2 * seq_len + 1 or val_bytes < seq_len + 1:
        raise TextCorpusError(
            f"text corpus {label!r} has {sum(sizes)} bytes ({train_bytes} training, {val_bytes} "
            f"validation); at seq_len = {seq_len} it needs >= {2 * seq_len + 1} training and "
            f">= {seq_len + 1} validation bytes (2 training windows, 1 validation window)"
        )
    digest, train, val = hashlib.sha256(), [], []
    for file in files:
        try:
            blob = file.read_bytes()
        except OSError as err:
            raise TextCorpusError(f"text corpus file {str(file)!r} cannot be read: {err}") from None
        cut = int(len(blob) * (1 - validation_fraction))  # the size may have changed: re-cut
        digest.update(blob)
        train.append(blob[:cut])
        val.append(blob[cut:])
    train_stream = np.frombuffer(b"".join(train), np.uint8)
    val_stream = np.frombuffer(b"".join(val), np.uint8)
    x_train, y_train = windows(train_stream, seq_len)
    x_val, y_val = windows(val_stream, seq_len)
    if len(x_train) < 2 or len(x_val) < 1:  # only when a file changed while being read
        raise TextCorpusError(f"text corpus {label!r} changed while it was read; try again")
    idx = np.arange(len(x_val))
    if len(x_val) > eval_sequences:
        idx = np.unique(np.linspace(0, len(x_val) - 1, eval_sequences).round().astype(np.int64))
    meta: dict[str, Any] = {
        "corpus": label,
        "sha256": digest.hexdigest(),
        "files": len(files),
        "bytes": len(train_stream) + len(val_stream),
        "train_bytes": len(train_stream),
        "validation_bytes": len(val_stream),
        **({"python": platform.python_version()} if path is None else {}),
        "seq_len": int(seq_len),
        "eval_sequences": len(idx),
        "validation_fraction": float(validation_fraction),
    }
    return TextSplit(x_train, y_train, x_val[idx], y_val[idx], meta)
