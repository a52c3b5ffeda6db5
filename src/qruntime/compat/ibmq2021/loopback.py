"""The ``where`` filters of the 2021 job listing (LoopBack's query language, the subset the
2021 client writes): equality, ``inq``/``nin``, ``neq``, ``gt``/``gte``/``lt``/``lte``/
``between`` on dates, ``regexp``, and ``and``/``or``. Anything else is refused by name."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from qruntime.domain.errors import Problem, ValidationFailed

_MAX_PATTERN = 200
_COMPARISONS = ("gt", "gte", "lt", "lte", "between")


class InvalidFilterError(ValidationFailed):
    what = "job filter"


def matches(where: Any, document: dict[str, Any], path: str = "where") -> bool:
    """Whether one job's 2021 JSON ``document`` satisfies ``where``."""
    if not isinstance(where, dict):
        raise InvalidFilterError(Problem(path, "must be an object"))
    for key, condition in where.items():
        if key in ("and", "or"):
            if not isinstance(condition, list):
                raise InvalidFilterError(Problem(f"{path}.{key}", "must be a list"))
            results = [matches(c, document, f"{path}.{key}[{i}]") for i, c in enumerate(condition)]
            if not (all(results) if key == "and" else any(results)):
                return False
        elif not _holds(_field(document, key), condition, f"{path}.{key}"):
            return False
    return True


def _field(document: dict[str, Any], key: str) -> Any:
    value: Any = document
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _holds(value: Any, condition: Any, path: str) -> bool:
    if not isinstance(condition, dict):
        return _equal(value, condition)
    for operator, operand in condition.items():
        if not _operator(operator, value, operand, f"{path}.{operator}"):
            return False
    return True


def _equal(value: Any, wanted: Any) -> bool:
    if isinstance(value, list):  # an array field (tags) matches when it holds the value
        return wanted in value
    return value == wanted


def _operator(operator: str, value: Any, operand: Any, path: str) -> bool:
    if operator in ("inq", "nin"):
        if not isinstance(operand, list):
            raise InvalidFilterError(Problem(path, "must be a list"))
        found = any(_equal(value, item) for item in operand)
        return found if operator == "inq" else not found
    if operator == "neq":
        return not _equal(value, operand)
    if operator == "regexp":
        return _regexp(value, operand, path)
    if operator in _COMPARISONS:
        return _compare(operator, value, operand, path)
    raise InvalidFilterError(Problem(path, f"operator {operator!r} is not supported"))


def _regexp(value: Any, pattern: Any, path: str) -> bool:
    if not isinstance(pattern, str) or len(pattern) > _MAX_PATTERN:
        raise InvalidFilterError(Problem(path, f"must be a pattern of at most {_MAX_PATTERN}"))
    if not isinstance(value, str):
        return False
    flags = 0
    if pattern.startswith("/") and pattern.count("/") >= 2:  # LoopBack's /pattern/flags form
        pattern, _, letters = pattern[1:].rpartition("/")
        flags = re.IGNORECASE if "i" in letters else 0
    try:
        return re.search(pattern, value, flags) is not None
    except re.error as exc:
        raise InvalidFilterError(Problem(path, f"not a valid pattern: {exc}")) from None


def _moment(value: Any, path: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidFilterError(Problem(path, f"{value!r} is not an ISO 8601 date")) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _compare(operator: str, value: Any, operand: Any, path: str) -> bool:
    if value is None:
        return False
    moment = _moment(value, path)
    if operator == "between":
        if not isinstance(operand, list) or len(operand) != 2:
            raise InvalidFilterError(Problem(path, "must be [from, to]"))
        return _moment(operand[0], path) <= moment <= _moment(operand[1], path)
    other = _moment(operand, path)
    return {
        "gt": moment > other,
        "gte": moment >= other,
        "lt": moment < other,
        "lte": moment <= other,
    }[operator]
