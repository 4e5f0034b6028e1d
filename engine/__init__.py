"""evalhouse: a columnar analytics warehouse for LLM benchmark results.

For notebooks and scripts, ``evalhouse.api`` (see README, "Python API")::

    import evalhouse.api as eh
    wh = eh.open_warehouse("warehouse")
    eh.summary(wh, by=["model"])                                # Polars DataFrame
"""

__version__ = "0.1.0"
