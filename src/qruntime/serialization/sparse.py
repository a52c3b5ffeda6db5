"""The handler for scipy.sparse matrices and arrays: sent as coordinates, rebuilt in their own
format only when that format's index space stays in proportion to the entries."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from qruntime.serialization.arrays import check_plain_dtype
from qruntime.serialization.envelope import expect

_SPARSE_CLASSES: dict[tuple[str, str], type] = {
    (fmt, kind): getattr(sp, f"{fmt}_{kind}")
    for fmt in ("bsr", "coo", "csc", "csr", "dia", "dok", "lil")
    for kind in ("array", "matrix")
}


def encode_sparse(m: Any) -> dict:
    coo = m.tocoo()
    check_plain_dtype(coo.dtype)
    return {
        "format": m.format,
        "kind": "array" if isinstance(m, sp.sparray) else "matrix",
        "shape": list(m.shape),
        "dtype": coo.dtype.str,
        "data": coo.data,
        "coords": list(coo.coords),
    }


def decode_sparse(value: Any) -> Any:
    value = expect(value, dict, "a sparse matrix dict")
    key = (value["format"], value["kind"])
    if key not in _SPARSE_CLASSES:
        raise ValueError(f"unsupported sparse format/kind {key}")
    dtype = np.dtype(expect(value["dtype"], str, "a dtype string"))
    if dtype.kind not in "biufc":
        raise ValueError(f"sparse dtype must be numeric or bool, got {dtype}")
    coords = tuple(expect(value["coords"], list, "a list of index arrays"))
    shape = tuple(expect(value["shape"], list, "a shape list"))
    coo = sp.coo_array((value["data"], coords), shape=shape, dtype=dtype)
    overhead = _sparse_overhead(key[0], coo)
    limit = _SPARSE_OVERHEAD_FREE + _SPARSE_OVERHEAD_PER_ENTRY * coo.nnz
    if overhead > limit:
        raise ValueError(
            f"a {key[0]} matrix of shape {coo.shape} with {coo.nnz} entries needs {overhead} "
            f"index slots besides its values, over the limit of {limit}; send it as coo or dok"
        )
    return _SPARSE_CLASSES[key](coo)


#: Index slots (row or column pointers, per-row lists, diagonal cells) a decoded sparse matrix
#: may need besides its values: this many, plus a few per stored entry. Shape and coordinates
#: are a few bytes of payload and must not become gigabytes and minutes of work in the decoder.
_SPARSE_OVERHEAD_FREE = 2**22
_SPARSE_OVERHEAD_PER_ENTRY = 16
#: A ``lil`` row is a pair of Python lists, far heavier than one index.
_LIL_ROW_COST = 64


def _sparse_overhead(fmt: str, coo: Any) -> int:
    """What converting ``coo`` to ``fmt`` allocates beyond its entries (coo and dok: nothing)."""
    rows = coo.shape[0] if coo.ndim == 2 else 1
    cols = coo.shape[-1]
    if fmt in ("csr", "bsr"):
        return rows + 1
    if fmt == "csc":
        return cols + 1
    if fmt == "lil":
        return _LIL_ROW_COST * rows
    if fmt == "dia" and coo.ndim == 2 and coo.nnz:
        row, col = coo.coords
        return len(np.unique(col - row)) * (int(col.max()) + 1)
    return 0
