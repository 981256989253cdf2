"""FITS tables and 1-D spectra as JSON-ready values, paged without touching every row in Python.

Paging, sorting and searching work on whole column arrays with numpy (``argsort`` on the sort
column, a vectorised case-insensitive substring test over string-converted columns, only when a
search term is given); only the rows of the requested page become Python objects. Every value
handed out is a finite number, a string, a bool or ``None`` (NaN, Inf and masked cells become
``None``; bytes become stripped UTF-8; array cells become ``str(value)`` cut to 100 characters).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from astropy.io import fits

from app.processing.errors import InvalidFits, InvalidInput, ProcessingError
from app.processing.fits_io import checked_header

logger = logging.getLogger("app.processing.tables")

TABLE_HDU_TYPES = (fits.BinTableHDU, fits.TableHDU)
MAX_ARRAY_CELL_CHARS = 100
MAX_SPECTRAL_POINTS = 500_000
WAVELENGTH_NAMES = ("WAVELENGTH", "WAVE", "LAMBDA")
SPECTRAL_COLUMNS = (
    "FLUX",
    "FLUX_ERROR",
    "ERROR",
    "SURF_BRIGHT",
    "SB_ERROR",
    "NET",
    "BACKGROUND",
    "BACKGROUND_ERROR",
    "DQ",
    "NPIXELS",
    "BERROR",
)
SPECTRAL_PREFIXES = ("FLUX_VAR_", "SB_VAR_")


def _hdu_list(hdul: fits.HDUList) -> list[Any]:
    try:
        hdus = list(hdul)
    except ProcessingError:
        raise
    except (OSError, ValueError, TypeError, IndexError, EOFError) as error:
        raise InvalidFits("FITS file is truncated or corrupt") from error
    for index, hdu in enumerate(hdus):
        checked_header(hdu, index)
    return hdus


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _is_variable_length(column: fits.Column) -> bool:
    return str(column.format).upper().lstrip("0123456789").startswith(("P", "Q"))


def _column_info(column: fits.Column, data: Any) -> dict[str, Any]:
    """``{name, dtype, unit, format, is_array, array_shape}`` of one column."""
    dtype = str(column.format)
    array_shape: list[int] | None = None
    is_array = False
    if _is_variable_length(column):
        is_array = True
    elif data is not None:
        try:
            cell_shape = data.dtype[column.name].shape if column.name in (data.dtype.names or ()) else ()
        except (KeyError, TypeError):
            cell_shape = ()
        if cell_shape:
            is_array = True
            array_shape = [int(n) for n in cell_shape]
    return {
        "name": column.name,
        "dtype": dtype,
        "unit": _text(column.unit),
        "format": _text(getattr(column, "disp", None)),
        "is_array": is_array,
        "array_shape": array_shape,
    }


def _table_data(hdu: Any) -> Any:
    try:
        return hdu.data
    except (OSError, ValueError, TypeError, IndexError, EOFError) as error:
        raise InvalidFits("FITS table data is truncated or unreadable") from error


def _describe(index: int, hdu: Any) -> dict[str, Any]:
    data = _table_data(hdu)
    columns = hdu.columns
    return {
        "index": index,
        "name": _text(hdu.name) if hdu.name else None,
        "hdu_type": type(hdu).__name__,
        "n_rows": int(hdu.header.get("NAXIS2", 0)),
        "n_columns": len(columns),
        "columns": [_column_info(col, data) for col in columns],
    }


def describe_tables(hdul: fits.HDUList) -> list[dict[str, Any]]:
    """Index, name, type, row count and columns of every table HDU of ``hdul``."""
    return [_describe(i, hdu) for i, hdu in enumerate(_hdu_list(hdul)) if isinstance(hdu, TABLE_HDU_TYPES)]


def _table_hdu(hdul: fits.HDUList, hdu_index: int) -> Any:
    hdus = _hdu_list(hdul)
    if hdu_index < 0 or hdu_index >= len(hdus):
        raise InvalidInput(f"HDU index {hdu_index} out of range (file has {len(hdus)} HDUs)")
    hdu = hdus[hdu_index]
    if not isinstance(hdu, TABLE_HDU_TYPES):
        raise InvalidInput(f"HDU {hdu_index} is not a table (type: {type(hdu).__name__})")
    return hdu


def _column(data: Any, name: str) -> np.ndarray:
    try:
        column: np.ndarray = data.field(name)
        return column
    except (OSError, ValueError, TypeError, IndexError, KeyError, EOFError) as error:
        raise InvalidFits("FITS table data is truncated or unreadable") from error


def _mask_of(values: Any) -> np.ndarray | None:
    mask = getattr(values, "mask", None)
    if mask is None or mask is np.ma.nomask:
        return None
    return np.asarray(mask)


def _sort_order(values: np.ndarray, descending: bool) -> np.ndarray:
    """Stable order by ``values``; NaN and masked values last in both directions."""
    mask = _mask_of(values)
    array = np.asarray(values)
    if array.ndim > 1:
        raise InvalidInput("Cannot sort by an array column")
    missing = np.zeros(array.shape[0], dtype=bool) if mask is None else mask.reshape(array.shape[0], -1).any(axis=1)
    if array.dtype.kind == "f":
        missing |= ~np.isfinite(array)
    elif array.dtype.kind == "O":
        array = np.array([str(v) for v in array])
    present = np.flatnonzero(~missing)
    keys = array[present]
    if array.dtype.kind == "S":
        keys = np.char.strip(keys)
    if descending:
        # Stable descending: sort the reversed keys ascending, then reverse (ties keep file order).
        order = present[::-1][np.argsort(keys[::-1], kind="stable")][::-1]
    else:
        order = present[np.argsort(keys, kind="stable")]
    return np.concatenate([order, np.flatnonzero(missing)]).astype(np.int64)


def _as_search_text(values: Any) -> np.ndarray:
    """Lower-case string form of every cell of one column (``str(value)`` semantics)."""
    array = np.asarray(values)
    if array.ndim > 1 or array.dtype.kind == "O":
        return np.array([_cell(v).lower() if _cell(v) is not None else "" for v in values], dtype=str)
    if array.dtype.kind == "S":
        text = np.char.decode(np.char.strip(array), "utf-8", errors="replace")
    else:
        text = array.astype(str)
    return np.char.lower(text)


def _search_rows(data: Any, names: list[str], term: str, rows: np.ndarray) -> np.ndarray:
    """Subset of ``rows`` where any cell contains ``term`` (case-insensitive)."""
    needle = term.lower()
    matched = np.zeros(rows.size, dtype=bool)
    for name in names:
        pending = np.flatnonzero(~matched)
        if pending.size == 0:
            break
        values = _column(data, name)
        text = _as_search_text(values[rows[pending]])
        hit = np.char.find(text, needle) >= 0
        mask = _mask_of(values)
        if mask is not None and mask.ndim == 1:
            hit &= ~mask[rows[pending]]
        matched[pending[hit]] = True
    return rows[matched]


def _cell(value: Any) -> Any:
    """One cell as a JSON-safe Python value."""
    if value is None or value is np.ma.masked:
        return None
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", errors="replace").strip()
    if isinstance(value, str | np.str_):
        return str(value).strip()
    if isinstance(value, np.ndarray) or hasattr(value, "__len__"):
        return str(value)[:MAX_ARRAY_CELL_CHARS]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer | int):
        return int(value)
    if isinstance(value, np.floating | float):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.complexfloating | complex):
        return str(value)
    return str(value)[:MAX_ARRAY_CELL_CHARS]


def _page_cells(values: Any, index: np.ndarray) -> list[Any]:
    """Cells of one column at ``index`` (only the page's rows)."""
    picked = values[index]
    mask = _mask_of(picked)
    array = np.asarray(picked)
    if array.ndim == 1 and array.dtype.kind == "f":
        out: list[Any] = [v if math.isfinite(v) else None for v in array.tolist()]
    elif array.ndim == 1 and array.dtype.kind in "iub":
        out = array.tolist()
    else:
        out = [_cell(v) for v in picked]
    if mask is not None:
        flat = np.any(np.asarray(mask, dtype=bool).reshape(len(out), -1), axis=1, keepdims=False)
        out = [None if flat[i] else v for i, v in enumerate(out)]
    return out


def table_page(
    hdul: fits.HDUList,
    *,
    hdu_index: int = 0,
    page: int = 0,
    page_size: int = 100,
    sort_column: str | None = None,
    sort_direction: str | None = None,
    search: str | None = None,
) -> dict[str, Any]:
    """One page of rows of a table HDU, after optional search and sort.

    Parameters
    ----------
    hdul
        The open FITS file.
    hdu_index
        The table HDU.
    page, page_size
        Page number (0-based; clamped to the last page) and rows per page.
    sort_column, sort_direction
        Sort by this column; ``"desc"`` reverses, anything else sorts ascending.
    search
        Case-insensitive substring that some cell of a row must contain.
    """
    hdu = _table_hdu(hdul, hdu_index)
    data = _table_data(hdu)
    columns = [_column_info(col, data) for col in hdu.columns]
    names = [c["name"] for c in columns]
    n_rows = 0 if data is None else len(data)
    rows = np.arange(n_rows, dtype=np.int64)
    if sort_column:
        if sort_column not in names:
            raise InvalidInput(f"Sort column '{sort_column}' not found")
        rows = _sort_order(_column(data, sort_column), descending=sort_direction == "desc")
    if search and n_rows:
        rows = _search_rows(data, names, search, rows)
    total = int(rows.size)
    last_page = max(0, math.ceil(total / page_size) - 1)
    page = min(page, last_page)
    index = rows[page * page_size : (page + 1) * page_size]
    cells = {name: _page_cells(_column(data, name), index) for name in names} if index.size else {}
    page_rows = [{name: cells[name][i] for name in names} for i in range(index.size)]
    return {
        "hdu_index": hdu_index,
        "hdu_name": _text(hdu.name) if hdu.name else None,
        "total_rows": total,
        "total_columns": len(names),
        "page": page,
        "page_size": page_size,
        "columns": columns,
        "rows": page_rows,
        "sort_column": sort_column,
        "sort_direction": sort_direction,
    }


def _is_spectral(name: str) -> bool:
    upper = name.upper()
    return upper in SPECTRAL_COLUMNS or upper.startswith(SPECTRAL_PREFIXES)


def _numbers(values: Any) -> list[float | None]:
    array = np.asarray(values, dtype=np.float64)
    out: list[float | None] = [v if math.isfinite(v) else None for v in array.tolist()]
    mask = _mask_of(values)
    if mask is not None:
        out = [None if m else v for v, m in zip(out, mask.tolist(), strict=True)]
    return out


def spectrum(hdul: fits.HDUList, *, hdu_index: int = 1) -> dict[str, Any]:
    """Extract the wavelength column and the 1-D spectral columns of a table HDU."""
    hdu = _table_hdu(hdul, hdu_index)
    data = _table_data(hdu)
    by_upper = {col.name.upper(): col for col in hdu.columns}
    wave = next((by_upper[n] for n in WAVELENGTH_NAMES if n in by_upper), None)
    if wave is None:
        raise InvalidInput(f"No WAVELENGTH column found in HDU {hdu_index} (looked for {', '.join(WAVELENGTH_NAMES)})")
    n_points = 0 if data is None else len(data)
    if n_points > MAX_SPECTRAL_POINTS:
        raise InvalidInput(f"Spectrum has {n_points} points, more than the limit of {MAX_SPECTRAL_POINTS}")
    chosen = [wave]
    for col in hdu.columns:
        if col is wave or not _is_spectral(col.name):
            continue
        if data is None or _is_variable_length(col):
            continue
        field_dtype = data.dtype[col.name]
        if field_dtype.shape or field_dtype.kind not in "fiub":
            continue  # only 1-D numeric members
        chosen.append(col)
    if data is not None and np.asarray(_column(data, wave.name)).ndim != 1:
        raise InvalidInput(f"WAVELENGTH column of HDU {hdu_index} is not one-dimensional")
    values = {col.name: ([] if data is None else _numbers(_column(data, col.name))) for col in chosen}
    wave_values = values[wave.name]
    return {
        "hdu_index": hdu_index,
        "hdu_name": _text(hdu.name) if hdu.name else None,
        "n_points": len(wave_values),
        "columns": [{"name": col.name, "unit": _text(col.unit), "n_points": n_points} for col in chosen],
        "data": values,
    }
