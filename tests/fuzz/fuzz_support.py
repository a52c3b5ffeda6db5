"""Knobs shared by the fuzz tests: which hypothesis profile, how many API examples."""

from __future__ import annotations

import os

from hypothesis import settings

#: ``HYPOTHESIS_PROFILE=long`` for the long run; anything else is the CI-sized ``fuzz``.
PROFILE = "long" if os.environ.get("HYPOTHESIS_PROFILE") == "long" else "fuzz"


def fuzz_settings(**overrides: object) -> settings:
    """The selected profile (registered in ``conftest.py``) as a decorator, plus overrides."""
    return settings(settings.get_profile(PROFILE), **overrides)


#: A long API run was asked for (``QRUNTIME_FUZZ_EXAMPLES`` set): every phase for every role.
LONG_API_RUN = "QRUNTIME_FUZZ_EXAMPLES" in os.environ


def api_examples(default: int) -> int:
    """Examples per API operation: ``QRUNTIME_FUZZ_EXAMPLES`` or ``default``."""
    return int(os.environ.get("QRUNTIME_FUZZ_EXAMPLES", default))
