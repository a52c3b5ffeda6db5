"""The jobs page's filters, read once from the address and written as the same filter for the
service, for the page's own links, and for its ``GET /jobs`` poll."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from qruntime.domain.job import JobStatus

PAGE_SIZE = 50
#: Status choices that stand for a group, as ``GET /jobs?pending=`` values.
GROUPS = {"pending": True, "finished": False}


@dataclass(frozen=True)
class JobFilter:
    #: "" (all), a group from ``GROUPS``, or a status value; anything else reads as "".
    status: str = ""
    program_id: str = ""
    page: int = 0

    @classmethod
    def parse(cls, status: str, program_id: str, page: int) -> JobFilter:
        known = status in GROUPS or status in JobStatus.__members__
        return cls(status if known else "", program_id.strip(), max(page, 0))

    @property
    def offset(self) -> int:
        return self.page * PAGE_SIZE

    def service_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``JobService.list``."""
        return {
            "limit": PAGE_SIZE,
            "offset": self.offset,
            "pending": GROUPS.get(self.status),
            "statuses": [JobStatus(self.status)] if self.status in JobStatus.__members__ else None,
            "program_id": self.program_id or None,
        }

    def api_query(self) -> str:
        """The same page of jobs from ``GET /jobs``, for the live status poll."""
        query: dict[str, Any] = {"limit": PAGE_SIZE, "offset": self.offset}
        if self.status in GROUPS:
            query["pending"] = str(GROUPS[self.status]).lower()
        elif self.status:
            query["status"] = self.status
        if self.program_id:
            query["program_id"] = self.program_id
        return urlencode(query)

    def page_query(self, page: int | None = None) -> str:
        """This filter's own address (another page of it when ``page`` is given)."""
        query: dict[str, Any] = {"status": self.status, "program_id": self.program_id}
        query = {key: value for key, value in query.items() if value}
        if page:
            query["page"] = page
        return urlencode(query)
