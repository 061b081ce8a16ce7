"""The routing rule lives in the kernel (shared.routing): membership's where-to-join asks the same question."""

from __future__ import annotations

from shared.routing import Candidate, choose_target, region_levels

__all__ = ["Candidate", "choose_target", "region_levels"]
