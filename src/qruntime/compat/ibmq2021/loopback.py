"""The ``where`` filters of the 2021 job listing (LoopBack's query language, the subset the
2021 client writes): equality, ``inq``/``nin``, ``neq``, ``gt``/``gte``/``lt``/``lte``/
``between`` on dates, ``regexp`` on ``name``, and ``and``/``or``. Anything else is refused by
name, whether or not there is a job to match it against (:func:`check`).

``regexp`` is the client's job-name filter only: the name is not kept, so it matches nothing,
and a pattern never runs against a stored value (Python's ``re`` has no time limit, and a
pattern such as ``(.*)*x`` takes hours on a 32-character date).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from qruntime.domain.errors import Problem, ValidationFailed

_MAX_PATTERN = 200
_COMPARISONS = ("gt", "gte", "lt", "lte", "between")
#: The one field the 2021 client filters with ``regexp`` (``jobs(job_name=...)``).
_REGEXP_FIELDS = ("name",)
#: A date that makes every comparison parse its operand (for :func:`check`).
_SOME_DATE = "2021-01-01T00:00:00+00:00"


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
        elif not _holds(key, _field(document, key), condition, f"{path}.{key}"):
            return False
    return True


def check(where: Any, path: str = "where") -> None:
    """Refuse a filter that :func:`matches` would refuse, before any job is looked at."""
    if not isinstance(where, dict):
        raise InvalidFilterError(Problem(path, "must be an object"))
    for key, condition in where.items():
        if key in ("and", "or"):
            if not isinstance(condition, list):
                raise InvalidFilterError(Problem(f"{path}.{key}", "must be a list"))
            for i, part in enumerate(condition):
                check(part, f"{path}.{key}[{i}]")
        elif isinstance(condition, dict):
            for operator, operand in condition.items():
                sample = _SOME_DATE if operator in _COMPARISONS else None
                _operator(operator, key, sample, operand, f"{path}.{key}.{operator}")


def _field(document: dict[str, Any], key: str) -> Any:
    value: Any = document
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _holds(key: str, value: Any, condition: Any, path: str) -> bool:
    if not isinstance(condition, dict):
        return _equal(value, condition)
    for operator, operand in condition.items():
        if not _operator(operator, key, value, operand, f"{path}.{operator}"):
            return False
    return True


def _equal(value: Any, wanted: Any) -> bool:
    if isinstance(value, list):  # an array field (tags) matches when it holds the value
        return wanted in value
    return value == wanted


def _operator(operator: str, key: str, value: Any, operand: Any, path: str) -> bool:
    if operator in ("inq", "nin"):
        if not isinstance(operand, list):
            raise InvalidFilterError(Problem(path, "must be a list"))
        found = any(_equal(value, item) for item in operand)
        return found if operator == "inq" else not found
    if operator == "neq":
        return not _equal(value, operand)
    if operator == "regexp":
        if key not in _REGEXP_FIELDS:
            raise InvalidFilterError(Problem(path, f"regexp is supported on {_REGEXP_FIELDS}"))
        return _regexp(value, operand, path)
    if operator in _COMPARISONS:
        return _compare(operator, value, operand, path)
    raise InvalidFilterError(Problem(path, f"operator {operator!r} is not supported"))


def _regexp(value: Any, pattern: Any, path: str) -> bool:
    if not isinstance(pattern, str) or len(pattern) > _MAX_PATTERN:
        raise InvalidFilterError(Problem(path, f"must be a pattern of at most {_MAX_PATTERN}"))
    flags = 0
    if pattern.startswith("/") and pattern.count("/") >= 2:  # LoopBack's /pattern/flags form
        pattern, _, letters = pattern[1:].rpartition("/")
        flags = re.IGNORECASE if "i" in letters else 0
    try:
        compiled = re.compile(pattern, flags)
    except re.error as exc:
        raise InvalidFilterError(Problem(path, f"not a valid pattern: {exc}")) from None
    if value is None:  # job names are not kept: no job has one
        return False
    return compiled.search(str(value)) is not None


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
