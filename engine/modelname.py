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
>>> split_model("llama-3-8b-instruct.Q4_K_M.gguf"), split_model("Qwen/Qwen2-7B-Instruct-GPTQ-Int4")
(('llama-3-8b-instruct', 'q4_k_m'), ('Qwen/Qwen2-7B-Instruct', 'gptq-4bit'))

The quantization is a tag after ``:`` (Ollama, ``hf.co/...-GGUF:Q4_K_M``) or a suffix of up to six
``-``/``_``/``.``-separated words (``-GPTQ-4bit-128g-actorder_True``), read case-insensitively;
the base is the name without it (and without a GGUF file's ``.gguf``, ``-GGUF`` and
``-00001-of-00003``, or the ``-GPTQ``/``-GGUF`` of a repo whose tag names the quantization).

Labels (the ``quantization`` column), short and lower-case, from the spellings they stand for:

- ``q2_k``, ``q3_k_s/m/l``, ``q4_0``, ``q4_1``, ``q4_k_s/m``, ``q5_0``, ``q5_1``, ``q5_k_s/m``, ``q6_k``,
  ``q8_0``, ``iq1_s``, ``iq2_xxs``, ``iq2_xs``, ``iq3_xxs``, ``iq3_xs``, ``iq4_xs``, ``iq4_nl``: llama.cpp
  (GGUF) types in any case, with or without underscores (``Q4_K_M``, ``q4km``);
- ``fp16`` (``F16``, ``FP16``, ``float16``, ``16bit``, ``-16-bit-quantized``), ``bf16`` (``BF16``,
  ``bfloat16``), ``fp32`` (``F32``, ``FP32``, ``float32``, ``32bit``);
- ``fp8``, ``fp8-dynamic`` (``FP8-Dynamic``), ``fp8-kv``; ``fp4``, ``nvfp4``, ``mxfp4``;
- ``int8`` (``int8``, ``8bit``, ``8-bit``), ``int4`` (``int4``, ``4bit``), ``int3`` ... (1 to 8 bits);
- ``gptq`` (``-GPTQ``), ``gptq-4bit`` (``-GPTQ-Int4``, ``-gptq-4bit-128g``, ``-4bit-gptq``; the group
  size is dropped), ``gptq-8bit``; ``awq``, ``awq-4bit`` (``-AWQ-INT4``);
- ``bnb-4bit`` (``bnb-4bit``, ``unsloth-bnb-4bit``, ``load_in_4bit``), ``bnb-8bit``; ``nf4`` (``nf4``,
  ``bnb-nf4``);
- ``w4a16``, ``w8a8``, ``w8a16`` (``quantized.w4a16``: weight and activation bits);
- ``exl2``, ``exl2-4bpw``, ``exl2-4.65bpw`` (``-4.0bpw-h6-exl2``, ``-EXL2-4.65bpw``; also exl3);
- ``mlx``, ``mlx-4bit``;
- ``gguf``: a ``.gguf`` file or ``-GGUF`` repo that names no type.

A plain ``-4bit`` stays ``int4`` (mlx-community names use it as much as bitsandbytes), ``-GPTQ`` and
``-AWQ`` without bits stay ``gptq`` and ``awq``. ``quant_bits`` reads the bits a label stands for.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SEP = re.compile(r"([-_.])")


def _nbit(n: str, prefix: str = "int") -> str | None:
    bits = int(n)
    if bits == 16:
        return "fp16"
    if bits == 32:
        return "fp32"
    return f"{prefix}{bits}" if 1 <= bits <= 8 else None


def _bits_of(m: re.Match[str], fmt: str) -> str:
    """``fmt`` alone, or ``fmt-Nbit`` with the first bit count the match found."""
    n = next((g for g in m.groups() if g), None)
    return f"{fmt}-{int(n)}bit" if n else fmt


def _gguf(m: re.Match[str]) -> str:
    prefix, bits, k, rest = m.groups()
    return "_".join([f"{prefix}{bits}"] + [p for p in (k, rest) if p])


def _exl(m: re.Match[str]) -> str:
    version, bpw = m["v1"] or m["v2"], m["b1"] or m["b2"]
    return f"exl{version}-{float(bpw.replace('_', '.')):g}bpw" if bpw else f"exl{version}"


_BITS = r"(\d+)_?bits?"
# A quantization phrase: the suffix words joined with `_`, lower-case, matched whole; first match wins.
_PHRASES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str | None]]] = [
    (re.compile(r"(i?q)(\d)(?:_?(k))?(?:_?([0-9]|xxs|xs|s|m|l|nl))?"), _gguf),
    (re.compile(r"fp16|f16|float16"), lambda m: "fp16"),
    (re.compile(r"bf16|bfloat16"), lambda m: "bf16"),
    (re.compile(r"fp32|f32|float32"), lambda m: "fp32"),
    (re.compile(r"fp8(?:_(dynamic|kv))?"), lambda m: f"fp8-{m[1]}" if m[1] else "fp8"),
    (re.compile(r"fp4|nvfp4|mxfp4"), lambda m: m[0]),
    (re.compile(r"int([1-8])"), lambda m: f"int{m[1]}"),
    (re.compile(rf"{_BITS}(?:_quantized)?"), lambda m: _nbit(m[1])),
    (re.compile(rf"gptq(?:_int(\d+)|_{_BITS})?(?:_\d+g)?(?:_actorder(?:_true|_false)?)?|{_BITS}(?:_\d+g)?_gptq"),
     lambda m: _bits_of(m, "gptq")),
    (re.compile(rf"awq(?:_int(\d+)|_{_BITS})?|{_BITS}_awq"), lambda m: _bits_of(m, "awq")),
    (re.compile(rf"(?:unsloth_)?bnb_{_BITS}|load_in_{_BITS}"), lambda m: _bits_of(m, "bnb")),
    (re.compile(r"(?:bnb_)?nf4"), lambda m: "nf4"),
    (re.compile(r"(?:quantized_)?w(\d+)a(\d+)"), lambda m: f"w{m[1]}a{m[2]}"),
    (re.compile(r"exl(?P<v1>[23])(?:_(?P<b1>\d+(?:_\d+)?)_?bpw(?:_h\d+)?)?"
                r"|(?P<b2>\d+(?:_\d+)?)_?bpw(?:_h\d+)?_exl(?P<v2>[23])"), _exl),
    (re.compile(rf"mlx(?:_{_BITS})?|{_BITS}_mlx"), lambda m: _bits_of(m, "mlx")),
]  # fmt: skip
# Ollama-style tags that name no quantization.
_PLAIN_TAGS = {"latest", "instruct", "chat", "base"}
# Most words a quantization suffix spans (`gptq-4bit-128g-actorder_True` is five).
_MAX_WORDS = 6


def normalise_quantization(token: str) -> str | None:
    """The label of a quantization token or phrase, or None if it is not one.

    >>> normalise_quantization("Q4_K_M"), normalise_quantization("q5ks"), normalise_quantization("x")
    ('q4_k_m', 'q5_k_s', None)
    >>> normalise_quantization("FP8-Dynamic"), normalise_quantization("4.0bpw-h6-exl2")
    ('fp8-dynamic', 'exl2-4bpw')
    """
    phrase = "_".join(w for w in _SEP.split(token.lower())[0::2] if w)
    for pattern, label in _PHRASES:
        m = pattern.fullmatch(phrase)
        if m:
            return label(m)
    return None


# Labels that name a format but no bits: the repo part of `TheBloke/x-GPTQ:gptq-4bit-128g` or
# `hf.co/x-GGUF:Q4_K_M`, dropped from the base when the tag gives the quantization.
_FORMATS = frozenset({"gguf", "gptq", "awq", "exl2", "exl3", "mlx"})


def split_model(name: str) -> tuple[str, str | None]:
    """Return (model_base, quantization) for a model name as a source gives it (see the module docstring).

    >>> split_model("unsloth/llama-3-8b-bnb-4bit"), split_model("LoneStriker/dolphin-2.2.1-mistral-7b-4.0bpw-h6-exl2")
    (('unsloth/llama-3-8b', 'bnb-4bit'), ('LoneStriker/dolphin-2.2.1-mistral-7b', 'exl2-4bpw'))
    """
    if ":" in name:
        base, _, tag = name.rpartition(":")
        quant = normalise_quantization(tag)
        if quant:
            repo, fmt = split_model(base)
            return (repo if fmt in _FORMATS else base), quant
        if tag.lower() in _PLAIN_TAGS:
            return split_model(base) if base else (name, None)
    pieces = _SEP.split(name)  # words at even positions, separators between them
    words = pieces[0::2]
    n = len(words)
    gguf = n > 1 and words[-1].lower() == "gguf"
    if gguf:
        n -= 1
        # A split GGUF file: `...-Q4_K_M-00001-of-00003.gguf`.
        if n > 3 and words[n - 3].isdigit() and words[n - 2].lower() == "of" and words[n - 1].isdigit():
            n -= 3
    # The longest suffix that reads as a quantization (`q4_k_m` is three words), so that
    # `model-a_q8_0` keeps its `-a`; the base keeps at least one word.
    for take in range(min(_MAX_WORDS, n - 1), 0, -1):
        quant = normalise_quantization("_".join(words[n - take : n]))
        base = "".join(pieces[: 2 * (n - take) - 1])
        if quant and base:
            return base, quant
    base = "".join(pieces[: 2 * n - 1])
    return (base, "gguf") if gguf and base else (name, None)


def quant_bits(quantization: str | None) -> float | None:
    """Bits per weight a label stands for; None when the label does not say (``gptq``, ``gguf``, ``mlx``).

    Unlike the first number of the label, it reads ``exl2-4.65bpw`` as 4.65 and ``exl2`` as unknown.

    >>> [quant_bits(q) for q in ("fp16", "q4_k_m", "iq2_xs", "w4a16", "gptq-4bit", "exl2-4.65bpw", "exl2", "awq")]
    [16.0, 4.0, 2.0, 4.0, 4.0, 4.65, None, None]
    """
    if quantization is None:
        return None
    m = re.fullmatch(r"exl[23](?:-([\d.]+)bpw)?", quantization)
    if m:
        return float(m[1]) if m[1] else None
    m = re.search(r"\d+", quantization)
    return float(m[0]) if m else None
