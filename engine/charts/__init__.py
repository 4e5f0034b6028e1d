"""Charts: one builder per figure, each a Polars frame in and an Altair chart out; one renderer.

Modules by concern: ``render`` (fonts, PNG/SVG through vl-convert, the Vega-Lite spec for an
interactive page), ``common`` (sizes, titles, styles, capping, label truncation, comparison classes),
``models`` (models side by side: means, distributions, model x category, quantization) and
``comparison`` (comparison rows: differences, baseline vs candidate, relative change). The public
names of all four are importable from here.
"""

from evalhouse.charts.common import (
    CLASS_COLOURS,
    CLASSES,
    LABEL_LIMIT,
    NAME_WIDTH,
    STEP,
    WIDTH,
    cap,
    classify,
    gap_order,
    pair_label,
    short_labels,
    split_comparable,
    with_labels,
)
from evalhouse.charts.comparison import (
    baseline_vs_candidate,
    colour_limit,
    degradation,
    difference,
    relative_change_heatmap,
)
from evalhouse.charts.models import category_heatmap, distribution, mean_by_model, quantization
from evalhouse.charts.render import register_fonts, render, to_png, to_spec, to_svg

__all__ = [
    "CLASSES",
    "CLASS_COLOURS",
    "LABEL_LIMIT",
    "NAME_WIDTH",
    "STEP",
    "WIDTH",
    "baseline_vs_candidate",
    "cap",
    "category_heatmap",
    "classify",
    "colour_limit",
    "degradation",
    "difference",
    "distribution",
    "gap_order",
    "mean_by_model",
    "pair_label",
    "quantization",
    "register_fonts",
    "relative_change_heatmap",
    "render",
    "short_labels",
    "split_comparable",
    "to_png",
    "to_spec",
    "to_svg",
    "with_labels",
]
