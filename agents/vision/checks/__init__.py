"""The deterministic rule kinds: one module per family, one function per kind.

Each check takes its rule and the `Scope` of the review and yields findings. They
are pure: no network, no clock, no randomness.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from agents.vision.checks.base import Scope
from agents.vision.checks.companion import check_companion
from agents.vision.checks.layering import check_layering
from agents.vision.checks.pattern import check_pattern
from agents.vision.checks.secret import check_secret
from agents.vision.checks.size import check_size
from agents.vision.checks.structure import check_naming, check_placement
from agents.vision.findings import Finding

Check = Callable[[Any, Scope], Iterator[Finding]]

CHECKS: dict[str, Check] = {
    "pattern": check_pattern,
    "secret": check_secret,
    "placement": check_placement,
    "naming": check_naming,
    "layering": check_layering,
    "companion": check_companion,
    "size": check_size,
}

__all__ = ["CHECKS", "Check", "Scope"]
