"""`text_python`: character windows of the Python reference documentation shipped with Python.

An embedded, offline text dataset for sequence ARMs (`tfps.models.arms`, event shape `(L,)`).
Nothing is downloaded: the text is the standard library's `pydoc_data.topics` module, the help
topics that `help()` shows (the language reference: statements, operators, data model, ...), part of
every CPython installation.

Source and licence: CPython's documentation, Copyright (c) 2001 Python Software Foundation,
distributed under the PSF License Agreement (https://docs.python.org/3/license.html; code
examples in it under the Zero-Clause BSD licence). The text depends on the Python version (3.11.7
here: 79 topics, 464970 characters); `description()` records its sha256 so that a run notices a
different text (`tfps.train.rundir` refuses to resume on changed data).

Preparation (deterministic, no random numbers): the topics are joined in sorted key order, each
followed by a newline; every character outside the vocabulary becomes "?" (575 characters in
3.11.7, mostly typographic quotes and dashes). The vocabulary is fixed, K = 96: index 0 is the
newline, 1..95 the printable ASCII characters " " to "~" in code order (`VOCABULARY`), so the
integer of character c is `VOCABULARY.index(c)`, and `decode` turns samples back into text.
The text is split into three contiguous parts: the first 80% train, the next 10% validation, the
last 10% test (so the splits share no text), and each part is cut into non-overlapping windows of
`LENGTH` = 64 characters (a partial last window is dropped): 5813 train, 726 validation, 726 test
windows for 3.11.7.
"""

import functools
import hashlib
import string

import numpy as np

NAME = "text_python"
LENGTH = 64
VOCABULARY = "\n" + "".join(chr(c) for c in range(32, 127))
UNKNOWN = "?"
SPLIT_FRACTIONS = {"train": (0.0, 0.8), "validation": (0.8, 0.9), "test": (0.9, 1.0)}
SOURCE = "the Python reference documentation (stdlib pydoc_data.topics)"
LICENCE = "PSF License Agreement (Python documentation)"
assert len(VOCABULARY) == 96 and set(string.printable) - set("\t\r\x0b\x0c") <= set(VOCABULARY)


@functools.lru_cache(maxsize=None)
def corpus():
    """The prepared text, every character in `VOCABULARY` (see the module docstring)."""
    from pydoc_data import topics  # the standard library's help topics

    text = "".join(topics.topics[key] + "\n" for key in sorted(topics.topics))
    known = set(VOCABULARY)
    return "".join(c if c in known else UNKNOWN for c in text)


def encode(text):
    """Text (characters of `VOCABULARY`) -> int32 `[len(text)]`; ValueError names a stranger."""
    index = {c: i for i, c in enumerate(VOCABULARY)}
    unknown = sorted(set(text) - set(index))
    if unknown:
        raise ValueError(f"characters outside the text vocabulary: {unknown[:5]}")
    return np.array([index[c] for c in text], np.int32)


def decode(values, vocabulary=VOCABULARY):
    """int `[..., L]` in [0, K) -> the text of the last axis (a str, or a list for a batch), with
    `vocabulary` (a run records it in config.json: `["dataset"]["vocabulary"]`)."""
    values = np.asarray(values)
    if values.ndim > 1:
        return [decode(row, vocabulary) for row in values]
    return "".join(vocabulary[int(v)] for v in values)


@functools.lru_cache(maxsize=None)
def windows(split):
    """int32 `[N, LENGTH]`: the windows of `split` ("train", "validation" or "test"), read-only."""
    if split not in SPLIT_FRACTIONS:
        raise ValueError(f"unknown split {split!r}; choose one of {list(SPLIT_FRACTIONS)}")
    text = corpus()
    start, stop = (int(f * len(text)) for f in SPLIT_FRACTIONS[split])
    values = encode(text[start:stop])
    count = len(values) // LENGTH
    array = values[: count * LENGTH].reshape(count, LENGTH)
    array.setflags(write=False)
    return array


def description():
    """What config.json and exports record about the data: source, licence, vocabulary, sizes."""
    return {
        "source": SOURCE,
        "licence": LICENCE,
        "sha256": hashlib.sha256(corpus().encode()).hexdigest(),
        "vocabulary": VOCABULARY,
        "sizes": {split: int(len(windows(split))) for split in SPLIT_FRACTIONS},
    }
