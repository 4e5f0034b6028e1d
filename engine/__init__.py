"""evalhouse: a columnar analytics warehouse for LLM benchmark results."""

__version__ = "0.1.0"
