"""torchrun with two or four processes (gloo) reaches the single-process weights with the same global batch, with
dropout on (keyed dropout: masks follow the example, not the process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

SCRIPT = textwrap.dedent("""
    import os, sys, torch
    from headway import AutoTokenizer, BertConfig, BertForTokenClassification, DataCollatorForTokenClassification
    from headway import Trainer, TrainingArguments

    torch.set_num_threads(1)
    out, batch, fsdp = sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else ""
    hidden_dropout, attention_dropout = (float(x) for x in os.environ.get("DROPOUT", "0 0").split())
    tok = AutoTokenizer.from_pretrained(os.environ["MINILM_PATH"])
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=128, hidden_dropout_prob=hidden_dropout,
                        attention_probs_dropout_prob=attention_dropout, num_labels=3)
    model = BertForTokenClassification(config)
    words = "the quick brown fox jumps over a lazy dog while headway trains tiny models".split()
    rows = []
    for i in range(16):
        text = words[i % 5 : i % 5 + 3 + i % 7]
        enc = tok(text, is_split_into_words=True)
        labels = [-100 if w is None else (w + i) % 3 for w in enc.word_ids()]
        rows.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels})
    args = TrainingArguments(out, per_device_train_batch_size=batch, max_steps=4, learning_rate=1e-2,
                             weight_decay=0.01, logging_steps=1, save_steps=2, eval_strategy="steps", eval_steps=2,
                             report_to="none", disable_tqdm=True, seed=0, fsdp=fsdp or None,
                             per_device_eval_batch_size=1)
    trainer = Trainer(model, args, train_dataset=rows, eval_dataset=rows[:8], processing_class=tok,
                      data_collator=DataCollatorForTokenClassification(tok))
    trainer.train()
    preds = trainer.predict(rows[:7])
    trainer.save_model(os.path.join(out, "final"))
    if trainer.is_world_process_zero():
        import json
        json.dump({"eval_loss": preds.metrics["test_loss"], "shape": list(preds.predictions.shape),
                   "labels": preds.label_ids.tolist()}, open(os.path.join(out, "predict.json"), "w"))
""")


def _run(cmd, tmp_path, minilm_path, dropout=(0.0, 0.0)):
    env = {
        **os.environ,
        "MINILM_PATH": str(minilm_path),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "DROPOUT": " ".join(map(str, dropout)),
    }
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    result = subprocess.run(
        cmd, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=170
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]


# Dropout on in both: hidden (embeddings, attention output, feed-forward, classifier) and attention
# probabilities. The 1-process run splits its batches by length (CPU); FSDP does not: masks must not care.
@pytest.mark.parametrize(
    "processes,fsdp,dropout", [(2, "", (0.2, 0.3)), (2, "full_shard", (0.1, 0.1)), (4, "", (0.2, 0.3))]
)
def test_processes_match_one(tmp_path, minilm_path, processes, fsdp, dropout):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    _run([sys.executable, str(script), str(tmp_path / "one"), "8"], tmp_path, minilm_path, dropout)
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            str(script),
            str(tmp_path / "two"),
            str(8 // processes),
            fsdp,
        ],
        tmp_path,
        minilm_path,
        dropout,
    )

    one = load_file(tmp_path / "one" / "final" / "model.safetensors")
    two = load_file(tmp_path / "two" / "final" / "model.safetensors")
    assert one.keys() == two.keys()
    worst = max((one[k] - two[k]).abs().max().item() for k in one)
    print(
        f"\n{processes} processes ({fsdp or 'ddp'}, dropout {dropout}) vs 1: max weight difference {worst:.3g}"
    )
    assert worst < 1e-5, worst
    moved = (
        (
            one["classifier.weight"]
            - load_file(tmp_path / "one" / "checkpoint-2" / "model.safetensors")["classifier.weight"]
        )
        .abs()
        .max()
        .item()
    )
    assert moved > 1e-4

    # One set of checkpoint files, written by rank 0; one log line per entry.
    names = sorted(p.name for p in (tmp_path / "two").iterdir() if p.name != "training_curves.png")
    assert names == ["checkpoint-2", "checkpoint-4", "final", "predict.json", "trainer_log.jsonl"]
    ckpt = sorted(p.name for p in (tmp_path / "two" / "checkpoint-4").iterdir())
    assert "rng_state_0.pth" in ckpt and "rng_state_1.pth" in ckpt and "rng_state.pth" not in ckpt
    log_one = (tmp_path / "one" / "trainer_log.jsonl").read_text().splitlines()
    log_two = (tmp_path / "two" / "trainer_log.jsonl").read_text().splitlines()
    assert len(log_one) == len(log_two)
    losses_one = [json.loads(x)["loss"] for x in log_one if '"loss"' in x]
    losses_two = [json.loads(x)["loss"] for x in log_two if '"loss"' in x]
    assert losses_two == pytest.approx(losses_one, abs=1e-5)
    eval_one = [json.loads(x)["eval_loss"] for x in log_one if "eval_loss" in x]
    eval_two = [json.loads(x)["eval_loss"] for x in log_two if "eval_loss" in x]
    assert eval_two == pytest.approx(eval_one, abs=1e-5)

    # Predictions gathered from both processes come back whole and in dataset order.
    p1 = json.loads((tmp_path / "one" / "predict.json").read_text())
    p2 = json.loads((tmp_path / "two" / "predict.json").read_text())
    assert p1["shape"] == p2["shape"] and p1["shape"][0] == 7
    assert p1["labels"] == p2["labels"]
    torch.testing.assert_close(p2["eval_loss"], p1["eval_loss"], atol=1e-5, rtol=0)
