"""Every user's service instance, named as IBM Cloud names instances: a CRN.

Today's qiskit-ibm-runtime sends the instance with every request (``Service-CRN``); qruntime
gives each user exactly one, derived from the user's id, so it needs no storage and never
changes while the user exists.
"""

from __future__ import annotations

import re

#: ``crn:v1:<cname>:<ctype>:<service>:<location>:<scope>:<instance>::``; the client reads the
#: cname (``staging`` would send it to IBM's staging IAM) and the location.
CRN_PREFIX = "crn:v1:qruntime:public:quantum-computing:local:a/qruntime:"
_CRN = re.compile(re.escape(CRN_PREFIX) + r"user-([1-9][0-9]{0,18})::")


def instance_crn(user_id: int) -> str:
    """The CRN of the instance of user ``user_id``."""
    return f"{CRN_PREFIX}user-{user_id}::"


def user_id_of_crn(crn: str) -> int | None:
    """The user whose instance ``crn`` names; None for any other text."""
    found = _CRN.fullmatch(crn)
    return int(found.group(1)) if found else None


def instance_name(user_name: str) -> str:
    """The instance's display name, as ``service.instances()`` lists it."""
    return f"qruntime-{user_name}"
