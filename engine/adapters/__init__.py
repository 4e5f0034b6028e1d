"""Format adapters, tried in order; the first whose ``detect`` accepts a file reads it."""

from __future__ import annotations

from types import ModuleType

from engine.adapters import no_scores, so8t_ab, so8t_results, so8t_tasks

# Specific shapes first; ``no_scores`` last because it accepts any flat object.
ADAPTERS: list[ModuleType] = [so8t_results, so8t_tasks, so8t_ab, no_scores]

BY_NAME: dict[str, ModuleType] = {a.NAME: a for a in ADAPTERS}
