"""Handlers for numpy arrays and scalars: ``.npy`` bytes, never pickle, header checked first."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from qruntime.serialization.envelope import UnsupportedTypeError, b64decode, b64encode


def check_plain_dtype(dtype: np.dtype) -> None:
    """Object dtypes would need pickle to be stored, which this module never uses."""
    if dtype.hasobject:
        raise UnsupportedTypeError(
            "numpy object arrays are not supported (they need pickle); "
            "convert to a numeric, bool or string dtype first"
        )


def encode_ndarray(arr: np.ndarray) -> str:
    check_plain_dtype(arr.dtype)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return b64encode(buf.getvalue())


_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def decode_ndarray(value: Any) -> np.ndarray:
    return read_npy(b64decode(value))


def read_npy(raw: bytes) -> np.ndarray:
    """Read one .npy payload; the header is checked first so no size or dtype is taken on trust."""
    buf = io.BytesIO(raw)
    version = np.lib.format.read_magic(buf)
    if version not in _NPY_HEADER_READERS:
        raise ValueError(f"unsupported .npy format version {version}")
    shape, _, dtype = _NPY_HEADER_READERS[version](buf)
    if dtype.hasobject:
        raise ValueError("object arrays are refused: reading them would need pickle")
    if math.prod(shape) * dtype.itemsize != len(raw) - buf.tell():
        raise ValueError(f"array data does not match header shape {shape} and dtype {dtype}")
    buf.seek(0)
    return np.lib.format.read_array(buf, allow_pickle=False)


def encode_np_scalar(x: np.generic) -> str:
    return encode_ndarray(np.asarray(x))


def decode_np_scalar(value: Any) -> np.generic:
    arr = decode_ndarray(value)
    if arr.ndim != 0:
        raise ValueError(f"expected a 0-d array, got shape {arr.shape}")
    return arr[()]
