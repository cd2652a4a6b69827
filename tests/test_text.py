"""The embedded text corpus `text_python` (`tfps.data.text`): sequences of event shape (64,), K =
96, splits from disjoint parts of the text, decodable back to the text."""

import numpy as np
import pytest
import tensorflow as tf

from tfps.data import builtin, text


def test_text_python_loads_as_sequences_of_64_characters():
    info = builtin.dataset_info("text_python")
    assert (info.event_shape, info.num_categories, info.bits) == ((64,), 96, None)
    sizes = {}
    for split in builtin.SPLITS:
        dataset, _ = builtin.load("text_python", split)
        assert dataset.element_spec == tf.TensorSpec((64,), tf.int32)
        windows, _ = builtin.load_numpy("text_python", split)
        assert windows.dtype == np.int32 and windows.min() >= 0 and windows.max() < 96
        sizes[split] = len(windows)
    assert sizes == text.description()["sizes"]
    assert sizes["validation"] > 500 and sizes["train"] > 8 * sizes["test"] - 100
    with pytest.raises(ValueError, match="96 levels .* only valid choice is bits=None"):
        builtin.dataset_info("text_python", bits=4)


def test_the_splits_are_disjoint_parts_of_the_text_and_decode_back():
    corpus = text.corpus()
    parts = [text.decode(text.windows(split).reshape(-1)) for split in builtin.SPLITS]
    train, validation, test = parts
    # Each split is a contiguous stretch of the text, in the order train, validation, test.
    starts = [corpus.index(part) for part in parts]
    assert starts[0] == 0 and starts[0] + len(train) <= starts[1]
    assert starts[1] + len(validation) <= starts[2] and starts[2] + len(test) <= len(corpus)
    assert text.decode(text.encode("x = [1, 2]\n")) == "x = [1, 2]\n"
    with pytest.raises(ValueError, match="outside the text vocabulary"):
        text.encode("caf\u00e9")


def test_the_description_names_source_licence_and_vocabulary():
    described = text.description()
    assert "pydoc_data" in described["source"] and described["licence"].startswith("PSF")
    assert described["vocabulary"] == text.VOCABULARY and len(text.VOCABULARY) == 96
    assert len(described["sha256"]) == 64
