"""Split a model name into its base and its quantization.

>>> split_model("aegis-alpha-0.6-q4km")
('aegis-alpha-0.6', 'q4_k_m')
>>> split_model("model-a:q8_0")
('model-a', 'q8_0')
>>> split_model("model-a_q8_0")
('model-a', 'q8_0')
>>> split_model("aegis-0.8:latest")
('aegis-0.8', None)
>>> split_model("modela")
('modela', None)
"""

from __future__ import annotations

import re

# llama.cpp / GGUF quantization names and the common precision tags, written with or without
# underscores (`q4km` and `q4_k_m` are the same thing); the group captures the bits and the rest.
_GGUF = re.compile(r"^(i?q)(\d)(?:_?(k))?(?:_?([0-9]|xxs|xs|s|m|l|nl))?$", re.IGNORECASE)
_PRECISION = {
    "fp16": "fp16", "f16": "fp16", "bf16": "bf16", "fp32": "fp32", "f32": "fp32",
    "fp8": "fp8", "int8": "int8", "int4": "int4", "8bit": "int8", "4bit": "int4",
    "gptq": "gptq", "awq": "awq", "exl2": "exl2", "mlx": "mlx",
}  # fmt: skip
# Ollama-style tags that name no quantization.
_PLAIN_TAGS = {"latest", "instruct", "chat", "base"}


def normalise_quantization(token: str) -> str | None:
    """The canonical spelling of a quantization token, or None if it is not one.

    >>> normalise_quantization("Q4_K_M"), normalise_quantization("q5ks"), normalise_quantization("x")
    ('q4_k_m', 'q5_k_s', None)
    """
    low = token.lower()
    if low in _PRECISION:
        return _PRECISION[low]
    m = _GGUF.match(low)
    if not m:
        return None
    prefix, bits, k, rest = m.groups()
    parts = [f"{prefix}{bits}"] + [p for p in (k, rest) if p]
    return "_".join(parts)


def split_model(name: str) -> tuple[str, str | None]:
    """Return (model_base, quantization) for a model name as a source gives it."""
    if ":" in name:
        base, _, tag = name.rpartition(":")
        quant = normalise_quantization(tag)
        if quant or tag.lower() in _PLAIN_TAGS:
            return base, quant
    # Try the longest trailing run of `-`/`_`-separated tokens that reads as a quantization
    # (`q4_k_m` is three tokens), so that `model-a_q8_0` keeps its `-a`.
    pieces = re.split(r"([-_])", name)
    tokens = pieces[0::2]
    for take in range(min(4, len(tokens) - 1), 0, -1):
        tail = "_".join(tokens[-take:])
        quant = normalise_quantization(tail)
        if quant:
            base = "".join(pieces[: len(pieces) - 2 * take])
            if base:
                return base, quant
    return name, None
