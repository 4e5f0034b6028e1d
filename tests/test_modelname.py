"""Quantization parsing: Hub-style names, GGUF file names, the SO8T spellings, names with none."""

from __future__ import annotations

import pytest

from evalhouse.modelname import normalise_quantization, quant_bits, split_model
from evalhouse.pairs import precision_rank

# Real names (Hugging Face Hub repos and files, Ollama tags) -> (model_base, quantization).
HUB = [
    # llama.cpp / GGUF: files, repos, Ollama and hf.co tags
    ("llama-3-8b-instruct.Q4_K_M.gguf", "llama-3-8b-instruct", "q4_k_m"),  # TheBloke file naming
    ("llama-2-7b-chat.Q5_K_S.gguf", "llama-2-7b-chat", "q5_k_s"),
    ("model-q4_k_m.gguf", "model", "q4_k_m"),
    ("Meta-Llama-3.1-8B-Instruct-Q6_K.gguf", "Meta-Llama-3.1-8B-Instruct", "q6_k"),  # bartowski file naming
    ("Meta-Llama-3-70B-Instruct-IQ2_XS.gguf", "Meta-Llama-3-70B-Instruct", "iq2_xs"),
    ("Meta-Llama-3-70B-Instruct-Q4_K_M-00001-of-00002.gguf", "Meta-Llama-3-70B-Instruct", "q4_k_m"),  # split file
    ("ggml-model-f16.gguf", "ggml-model", "fp16"),
    ("bartowski/Meta-Llama-3.1-8B-Instruct-GGUF", "bartowski/Meta-Llama-3.1-8B-Instruct", "gguf"),
    ("ggml-org/gemma-1.1-7b-it-Q8_0-GGUF", "ggml-org/gemma-1.1-7b-it", "q8_0"),  # gguf-my-repo naming
    ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "hf.co/bartowski/Llama-3.2-1B-Instruct", "q4_k_m"),
    ("llama3:8b-instruct-q4_K_M", "llama3:8b-instruct", "q4_k_m"),  # Ollama
    ("qwen2.5:7b-instruct-fp16", "qwen2.5:7b-instruct", "fp16"),
    ("Qwen3.5-4B-Q6_K", "Qwen3.5-4B", "q6_k"),
    # GPTQ (TheBloke, Qwen), AWQ
    ("TheBloke/Llama-2-7B-GPTQ", "TheBloke/Llama-2-7B", "gptq"),
    ("anon8231489123/vicuna-13b-GPTQ-4bit-128g", "anon8231489123/vicuna-13b", "gptq-4bit"),
    ("TheBloke/Llama-2-13B-GPTQ:gptq-4bit-128g-actorder_True", "TheBloke/Llama-2-13B", "gptq-4bit"),
    ("Qwen/Qwen2-7B-Instruct-GPTQ-Int4", "Qwen/Qwen2-7B-Instruct", "gptq-4bit"),
    ("Qwen/Qwen2.5-7B-Instruct-GPTQ-Int8", "Qwen/Qwen2.5-7B-Instruct", "gptq-8bit"),
    ("Qwen/Qwen2.5-7B-Instruct-AWQ", "Qwen/Qwen2.5-7B-Instruct", "awq"),
    ("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4", "hugging-quants/Meta-Llama-3.1-8B-Instruct", "awq-4bit"),
    # bitsandbytes, nf4, mlx
    ("unsloth/llama-3-8b-bnb-4bit", "unsloth/llama-3-8b", "bnb-4bit"),
    ("unsloth/Llama-3.2-1B-Instruct-unsloth-bnb-4bit", "unsloth/Llama-3.2-1B-Instruct", "bnb-4bit"),
    ("my-model-bnb-8bit", "my-model", "bnb-8bit"),
    ("llama-7b-load_in_4bit", "llama-7b", "bnb-4bit"),
    ("lllyasviel/flux1-dev-bnb-nf4", "lllyasviel/flux1-dev", "nf4"),
    ("mlx-community/Meta-Llama-3-8B-Instruct-4bit", "mlx-community/Meta-Llama-3-8B-Instruct", "int4"),
    ("mlx-community/Qwen2.5-7B-Instruct-3bit", "mlx-community/Qwen2.5-7B-Instruct", "int3"),
    ("Qwen3-4B-MLX-4bit", "Qwen3-4B", "mlx-4bit"),
    # integer and float precisions, compressed-tensors (Neural Magic / Red Hat)
    ("THUDM/chatglm2-6b-int4", "THUDM/chatglm2-6b", "int4"),
    ("meta-llama-3-8b-16-bit-quantized", "meta-llama-3-8b", "fp16"),
    ("my-model-8-bit", "my-model", "int8"),
    ("RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8-dynamic", "RedHatAI/Meta-Llama-3.1-8B-Instruct", "fp8-dynamic"),
    ("cortecs/phi-4-FP8-Dynamic", "cortecs/phi-4", "fp8-dynamic"),
    ("neuralmagic/Meta-Llama-3-8B-Instruct-FP8", "neuralmagic/Meta-Llama-3-8B-Instruct", "fp8"),
    ("RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w4a16", "RedHatAI/Meta-Llama-3.1-8B-Instruct", "w4a16"),
    ("neuralmagic/Meta-Llama-3.1-8B-Instruct-quantized.w8a8", "neuralmagic/Meta-Llama-3.1-8B-Instruct", "w8a8"),
    ("some-model-BF16", "some-model", "bf16"),
    # ExLlamaV2
    ("LoneStriker/dolphin-2.2.1-mistral-7b-4.0bpw-h6-exl2", "LoneStriker/dolphin-2.2.1-mistral-7b", "exl2-4bpw"),
    ("Gemma-3-27B-IT-EXL2-4.65bpw", "Gemma-3-27B-IT", "exl2-4.65bpw"),
    ("turboderp/Llama-3-8B-Instruct-exl2", "turboderp/Llama-3-8B-Instruct", "exl2"),
]


@pytest.mark.parametrize(("name", "base", "quant"), HUB, ids=[h[0] for h in HUB])
def test_hub_names(name: str, base: str, quant: str) -> None:
    assert split_model(name) == (base, quant)


GGUF_TYPES = (
    "Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_0 Q4_1 Q4_K_S Q4_K_M Q5_0 Q5_1 Q5_K_S Q5_K_M Q6_K Q8_0 "
    "IQ1_S IQ2_XXS IQ2_XS IQ3_XS IQ3_XXS IQ4_XS IQ4_NL"
).split()
GGUF_FLOATS = {"F16": "fp16", "BF16": "bf16", "F32": "fp32"}


@pytest.mark.parametrize("gguf_type", GGUF_TYPES + list(GGUF_FLOATS))
def test_every_gguf_type_as_suffix_tag_and_file_name(gguf_type: str) -> None:
    label = GGUF_FLOATS.get(gguf_type, gguf_type.lower())
    for name in (f"m-7b-{gguf_type}", f"m-7b_{gguf_type.lower()}", f"m-7b:{gguf_type}", f"m-7b.{gguf_type}.gguf",
                 f"m-7b-{gguf_type.lower()}.gguf", f"m-7b-{gguf_type}-GGUF"):  # fmt: skip
        assert split_model(name) == ("m-7b", label), name


# The SO8T corpus's spellings parse as they always have (tests/test_so8t_*.py rely on it).
SO8T = [
    ("model-a", "model-a", None),
    ("model-a:q8_0", "model-a", "q8_0"),
    ("model-a_q8_0", "model-a", "q8_0"),
    ("model_a", "model_a", None),
    ("modela", "modela", None),
    ("modela-q4km", "modela", "q4_k_m"),
    ("aegis-q4km", "aegis", "q4_k_m"),
    ("aegis", "aegis", None),
    ("agiasi", "agiasi", None),
    ("aegis_alpha_0_6", "aegis_alpha_0_6", None),
    ("aegis-alpha-0.6-q4km", "aegis-alpha-0.6", "q4_k_m"),
    ("AEGIS-phi35-golden-sigmoid", "AEGIS-phi35-golden-sigmoid", None),
    ("agiasi-phi35-golden-sigmoid:q8_0", "agiasi-phi35-golden-sigmoid", "q8_0"),
    ("aegis-0.8:latest", "aegis-0.8", None),
    ("aegis-borea-phi35-instinct-jp:q8_0", "aegis-borea-phi35-instinct-jp", "q8_0"),
]


@pytest.mark.parametrize(("name", "base", "quant"), SO8T, ids=[s[0] for s in SO8T])
def test_so8t_spellings_keep_their_parse(name: str, base: str, quant: str | None) -> None:
    assert split_model(name) == (base, quant)


@pytest.mark.parametrize(
    ("token", "label"),
    [("fp16", "fp16"), ("f16", "fp16"), ("bf16", "bf16"), ("fp32", "fp32"), ("f32", "fp32"), ("fp8", "fp8"),
     ("int8", "int8"), ("int4", "int4"), ("8bit", "int8"), ("4bit", "int4"), ("gptq", "gptq"), ("awq", "awq"),
     ("exl2", "exl2"), ("mlx", "mlx"), ("q4km", "q4_k_m"), ("Q5_K_S", "q5_k_s")],
)  # fmt: skip
def test_existing_labels_are_unchanged(token: str, label: str) -> None:
    assert normalise_quantization(token) == label
    assert split_model(f"some-model-{token}") == ("some-model", label)


NO_QUANTIZATION = [
    "gpt-4", "gpt-4o-2024-08-06", "gpt-3.5-turbo-16k", "claude-3-5-sonnet-20241022", "Mixtral-8x7B-Instruct-v0.1",
    "microsoft/phi-3-mini-4k-instruct", "t5-3b", "Qwen/Qwen2-0.5B", "Qwen/Qwen3-30B-A3B", "tiiuae/falcon-40b",
    "google/gemma-2-9b-it", "mistralai/Mistral-7B-v0.1", "facebook/opt-1.3b", "deepseek-ai/deepseek-v2.5",
    "EleutherAI/pythia-160m", "openai_gpt2", "openai/gpt-oss-20b", "llama3.1:8b", "Q8_0", "m-q", "日本語モデル",
    "-q4km", ".gguf", "",
]  # fmt: skip


@pytest.mark.parametrize("name", NO_QUANTIZATION)
def test_names_without_quantization_are_untouched(name: str) -> None:
    assert split_model(name) == (name, None)


def test_precision_rank_orders_the_labels() -> None:
    # evalhouse.pairs.precision_rank reads the label's first number: wider first, bit-less formats last.
    ranked = ["fp32", "fp16", "bf16", "fp8-dynamic", "int8", "q8_0", "w8a8", "bnb-8bit", "gptq-8bit", "q6_k",
              "q5_k_m", "q4_k_m", "iq4_xs", "int4", "gptq-4bit", "awq-4bit", "bnb-4bit", "nf4", "w4a16", "mlx-4bit",
              "int3", "iq2_xs", "iq1_s", "gptq", "awq", "gguf", "mlx"]  # fmt: skip
    ranks = [precision_rank(q) for q in ranked]
    assert ranks == sorted(ranks, reverse=True)
    assert precision_rank(None) > precision_rank("fp32")
    assert [precision_rank(q) for q in ("gptq", "awq", "gguf", "mlx")] == [0.0] * 4


BITS = {
    "fp16": 16.0, "bf16": 16.0, "fp8-dynamic": 8.0, "q4_k_m": 4.0, "iq3_xxs": 3.0, "w4a16": 4.0, "w8a16": 8.0,
    "gptq-4bit": 4.0, "bnb-8bit": 8.0, "nf4": 4.0, "exl2-4.65bpw": 4.65, "exl2-6bpw": 6.0, "exl2": None,
    "gptq": None, "gguf": None, None: None,
}  # fmt: skip


def test_quant_bits_reads_every_label() -> None:
    # Unlike precision_rank's first number, exl2-4.65bpw is 4.65 bits (precision_rank: 2).
    assert {q: quant_bits(q) for q in BITS} == BITS
