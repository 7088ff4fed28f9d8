"""SentenceTransformerTrainer / CrossEncoderTrainer / fit against sentence-transformers 6.2's: a few optimiser
steps from the same tiny model, data and seed (no dropout) give the same batches, logged losses and
weights; checkpoints resume exactly; torchrun matches one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import headway
from headway.sentence import losses as L
from headway.sentence import samplers as S
from headway.sentence.cross_encoder_training import BinaryCrossEntropyLoss, CrossEncoderTrainer, ListNetLoss
from headway.sentence.evaluation import EmbeddingSimilarityEvaluator
from headway.sentence.fit import InputExample
from headway.sentence.trainer import SentenceTransformerDataCollator, SentenceTransformerTrainer
from headway.sentence.training_args import CrossEncoderTrainingArguments, SentenceTransformerTrainingArguments

from .tiny_training import (
    ANCHORS,
    NEGATIVES,
    POSITIVES,
    SCORES,
    TORCHRUN_ARGS,
    build_bert,
    build_sentence_transformer,
    datasets,
    max_weight_difference,
    torchrun_train,
)

ATOL = 1e-5
COMMON = {
    "per_device_train_batch_size": 4,
    "max_steps": 3,
    "learning_rate": 1e-3,
    "warmup_steps": 1,
    "weight_decay": 0.01,
    "logging_steps": 1,
    "save_strategy": "no",
    "report_to": "none",
    "disable_tqdm": True,
    "use_cpu": True,
    "seed": 0,
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_sentence_transformer(tmp_path_factory.mktemp("trainer") / "st")


@pytest.fixture
def data():
    """Fresh data sets for each test: the reference trainer sets transforms on the data sets it is given."""
    return datasets()


@pytest.fixture(scope="module")
def ref_losses(st):
    from sentence_transformers.sentence_transformer import losses

    return losses


def _logs(trainer, key):
    return [h[key] for h in trainer.state.log_history if key in h]


def assert_same_run(ours, ref, trainer, ref_trainer, moved_from=None):
    worst = max_weight_difference(ours, ref)
    assert worst < ATOL, worst
    assert _logs(trainer, "loss") == pytest.approx(_logs(ref_trainer, "loss"), abs=ATOL)
    assert _logs(trainer, "grad_norm") == pytest.approx(_logs(ref_trainer, "grad_norm"), rel=1e-5)
    assert _logs(trainer, "learning_rate") == pytest.approx(_logs(ref_trainer, "learning_rate"))
    assert _logs(trainer, "epoch") == pytest.approx(_logs(ref_trainer, "epoch"))
    assert trainer.state.global_step == ref_trainer.state.global_step
    if moved_from is not None:
        assert max_weight_difference(moved_from, ref) > 1e-4  # the steps did change the weights
    return worst


def train_both(st, folder, tmp_path, train, make_losses, *, evaluators=None, eval_dataset=None, **options):
    """Train a reference and a headway copy of the model with the same data and settings. ``train`` and
    ``eval_dataset`` may be functions making the data: each library then gets its own copy (the reference
    sets transforms on the data sets of a dict)."""

    def fresh(make):
        return make() if callable(make) else make

    ref = st.SentenceTransformer(str(folder), device="cpu")
    ours = headway.SentenceTransformer(folder, device="cpu")
    ref_loss, our_loss = make_losses(ref, ours)
    settings = {**COMMON, **options}
    ref_eval, our_eval = evaluators if evaluators else (None, None)
    ref_trainer = st.SentenceTransformerTrainer(
        model=ref,
        args=st.SentenceTransformerTrainingArguments(str(tmp_path / "ref"), **settings),
        train_dataset=fresh(train),
        loss=ref_loss,
        evaluator=ref_eval,
        eval_dataset=fresh(eval_dataset),
    )
    trainer = SentenceTransformerTrainer(
        model=ours,
        args=SentenceTransformerTrainingArguments(str(tmp_path / "ours"), **settings),
        train_dataset=fresh(train),
        loss=our_loss,
        evaluator=our_eval,
        eval_dataset=fresh(eval_dataset),
    )
    ref_trainer.train()
    trainer.train()
    return ours, ref, trainer, ref_trainer


def _pair(name, **kwargs):
    return lambda ref_losses: (
        lambda ref, ours: (getattr(ref_losses, name)(ref, **kwargs), getattr(L, name)(ours, **kwargs))
    )


CASES = {
    "mnrl-prompts": (
        "pairs",
        _pair("MultipleNegativesRankingLoss"),
        {"batch_sampler": "no_duplicates", "prompts": {"anchor": "query: ", "positive": "document: "}},
    ),
    "cached-mnrl": (
        "triplets",
        _pair("CachedMultipleNegativesRankingLoss", mini_batch_size=3),
        {"batch_sampler": "no_duplicates"},
    ),
    "cosent-eval-loss": (
        "scored",
        _pair("CoSENTLoss"),
        {"eval_strategy": "steps", "eval_steps": 2, "per_device_eval_batch_size": 5},
    ),
    "cosine-2-epochs": ("scored", _pair("CosineSimilarityLoss"), {"max_steps": -1, "num_train_epochs": 2}),
    "triplet": ("triplets", _pair("TripletLoss"), {"gradient_accumulation_steps": 2, "max_steps": 2}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_weights_as_reference(case, st, folder, data, ref_losses, tmp_path):
    kind, make, options = CASES[case]
    evaluation = data[kind] if "eval_strategy" in options else None
    ours, ref, trainer, ref_trainer = train_both(
        st, folder, tmp_path, data[kind], make(ref_losses), eval_dataset=evaluation, **options
    )
    worst = assert_same_run(ours, ref, trainer, ref_trainer, moved_from=headway.SentenceTransformer(folder))
    if evaluation is not None:
        assert len(_logs(trainer, "eval_loss")) == 2
        assert _logs(trainer, "eval_loss") == pytest.approx(_logs(ref_trainer, "eval_loss"), abs=ATOL)
    print(f"\n{case}: max |headway - reference| weight = {worst:.3g}")


def test_matryoshka_and_evaluation(st, folder, data, ref_losses, tmp_path):
    """MatryoshkaLoss over MNRL, evaluated every 2 steps with an evaluator: the same weights, losses and metrics."""
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator as RefESE

    def make(ref, ours):
        return (
            ref_losses.MatryoshkaLoss(ref, ref_losses.MultipleNegativesRankingLoss(ref), [32, 16, 8]),
            L.MatryoshkaLoss(ours, L.MultipleNegativesRankingLoss(ours), [32, 16, 8]),
        )

    pairs = (ANCHORS[:8], NEGATIVES[:8], SCORES[:8])
    ours, ref, trainer, ref_trainer = train_both(
        st,
        folder,
        tmp_path,
        data["pairs"],
        make,
        evaluators=(RefESE(*pairs, name="sts"), EmbeddingSimilarityEvaluator(*pairs, name="sts")),
        eval_strategy="steps",
        eval_steps=2,
        max_steps=4,
        batch_sampler="no_duplicates",
    )
    assert_same_run(ours, ref, trainer, ref_trainer)
    for key in ("eval_sts_pearson_cosine", "eval_sts_spearman_cosine"):
        assert len(_logs(trainer, key)) == 2
        assert _logs(trainer, key) == pytest.approx(_logs(ref_trainer, key), abs=1e-6)
    assert (Path(trainer.args.output_dir) / "eval" / "similarity_evaluation_sts_results.csv").is_file()
    metrics, ref_metrics = trainer.evaluate(), ref_trainer.evaluate()  # outside training, evaluator only
    assert metrics["eval_sts_spearman_cosine"] == pytest.approx(
        ref_metrics["eval_sts_spearman_cosine"], abs=1e-6
    )


def test_softmax_loss_with_learning_rate_mapping(st, folder, data, ref_losses, tmp_path):
    """SoftmaxLoss trains its own classifier (not clipped with the model, as in the reference), here at
    a learning rate of its own."""
    state = {}

    def make(ref, ours):
        torch.manual_seed(1)
        ref_loss = ref_losses.SoftmaxLoss(ref, embedding_dimension=32, num_labels=3)
        our_loss = L.SoftmaxLoss(ours, embedding_dimension=32, num_labels=3)
        our_loss.classifier.load_state_dict(ref_loss.classifier.state_dict())
        state.update(ref=ref_loss, ours=our_loss)
        return ref_loss, our_loss

    ours, ref, trainer, ref_trainer = train_both(
        st,
        folder,
        tmp_path,
        data["nli"],
        make,
        max_grad_norm=0.5,
        learning_rate_mapping={r"classifier\.": 5e-3},
    )
    assert_same_run(ours, ref, trainer, ref_trainer)
    assert torch.allclose(state["ours"].classifier.weight, state["ref"].classifier.weight, atol=ATOL)


def test_multi_dataset_with_a_loss_each(st, folder, ref_losses, tmp_path):
    """A dict of data sets with a loss each, batched round-robin or proportionally; evaluated on a dict of
    data sets (no-duplicates batches), whose losses are logged per data set."""

    def make(ref, ours):
        return (
            {"pairs": ref_losses.MultipleNegativesRankingLoss(ref), "scored": ref_losses.CoSENTLoss(ref)},
            {"pairs": L.MultipleNegativesRankingLoss(ours), "scored": L.CoSENTLoss(ours)},
        )

    def two_sets():
        data = datasets()
        return {"pairs": data["pairs"], "scored": data["scored"]}

    for sampler in ("round_robin", "proportional"):
        options = {"max_steps": 4, "multi_dataset_batch_sampler": sampler}
        if sampler == "proportional":
            options.update(
                eval_dataset=two_sets, eval_strategy="steps", eval_steps=2, batch_sampler="no_duplicates"
            )
        ours, ref, trainer, ref_trainer = train_both(
            st, folder, tmp_path / sampler, two_sets, make, **options
        )
        assert_same_run(ours, ref, trainer, ref_trainer)
    for key in ("eval_pairs_loss", "eval_scored_loss"):
        assert len(_logs(trainer, key)) == 2
        assert _logs(trainer, key) == pytest.approx(_logs(ref_trainer, key), abs=ATOL)


@pytest.mark.parametrize("cached", [False, True], ids=["mnrl", "cached-mnrl"])
def test_trains_with_dropout_on(folder, data, tmp_path, cached):
    """With dropout on (keyed by the Trainer), three-column batches (candidate columns merged into one
    forward) and gradient-cached mini-batches train, and the same seed gives the same weights."""
    weights = []
    for run in range(2):
        model = headway.SentenceTransformer(folder, device="cpu")
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.2
        loss = (
            L.CachedMultipleNegativesRankingLoss(model, mini_batch_size=3)
            if cached
            else L.MultipleNegativesRankingLoss(model)
        )
        args = SentenceTransformerTrainingArguments(str(tmp_path / str(run)), **{**COMMON, "max_steps": 2})
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=data["triplets"], loss=loss
        )
        trainer.train()
        assert all(torch.isfinite(torch.tensor(_logs(trainer, "loss"))))
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_iterable_dataset(folder, data, tmp_path):
    """A streamed data set is read in order, batch_size rows at a time (no batch sampler), for max_steps."""
    model = headway.SentenceTransformer(folder, device="cpu")
    stream = data["pairs"].to_iterable_dataset()
    args = SentenceTransformerTrainingArguments(str(tmp_path), **{**COMMON, "max_steps": 2})
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=stream, loss=L.MultipleNegativesRankingLoss(model)
    )
    assert trainer.train().global_step == 2
    assert len(_logs(trainer, "loss")) == 2


def test_collator_prompts_and_labels():
    """Prompts per column or per data set; a tokenizer taking ``prompt=`` adds it itself, another gets the
    prompted texts and the prompt's length beside them; the label column becomes ``label``."""
    calls = []

    def preprocess(texts, prompt=None):
        calls.append((texts, prompt))
        return {"input_ids": torch.zeros(len(texts), 2, dtype=torch.long)}

    rows = [{"q": "x", "d": "y", "score": 0.5}, {"q": "z", "d": "w", "score": 1.0}]
    batch = SentenceTransformerDataCollator(preprocess, prompts={"q": "query: "})(rows)
    assert calls == [(["x", "z"], "query: "), (["y", "w"], None)]
    assert sorted(batch) == ["d_input_ids", "label", "q_input_ids"]
    assert batch["label"].tolist() == [0.5, 1.0]

    def tokenize(texts):
        calls.append((texts, None))
        return {"input_ids": torch.zeros(len(texts), 2, dtype=torch.long)}

    calls.clear()
    collator = SentenceTransformerDataCollator(
        tokenize, prompts={"news": {"d": "doc: "}}, prompt_length_fn=lambda prompt: len(prompt)
    )
    batch = collator([{**row, "dataset_name": "news"} for row in rows])
    assert calls == [(["x", "z"], None), (["doc: y", "doc: w"], None)]
    assert batch["d_prompt_length"] == 5 and batch["dataset_name"] == "news"
    with pytest.raises(ValueError, match="per-column prompts"):
        collator(rows)


# -- samplers -----------------------------------------------------------------------------------------------
def test_samplers_give_the_reference_batches(st, data):
    from datasets import Dataset
    from sentence_transformers.base import sampler as R
    from torch.utils.data import ConcatDataset

    dupes = Dataset.from_dict(
        {
            "anchor": ANCHORS[:6] * 2 + ["x", "y"],
            "positive": POSITIVES[:4] * 3 + ["z", "w"],
            "label": list(range(14)),
        }
    )
    for drop_last in (False, True):
        for size in (3, 4):
            ours = S.NoDuplicatesBatchSampler(dupes, size, drop_last, ["label"], torch.Generator(), seed=3)
            ref = R.NoDuplicatesBatchSampler(
                dupes,
                batch_size=size,
                drop_last=drop_last,
                valid_label_columns=["label"],
                generator=torch.Generator(),
                seed=3,
            )
            for epoch in range(3):
                ours.set_epoch(epoch)
                ref.set_epoch(epoch)
                batches = list(ours)
                assert batches == list(ref)
                assert all(len({dupes[i]["anchor"] for i in b}) == len(b) for b in batches)
            assert len(ours) == len(ref)
    hashed = S.NoDuplicatesBatchSampler(
        dupes, 4, False, ["label"], torch.Generator(), seed=3, precompute_hashes=True
    )
    plain = S.NoDuplicatesBatchSampler(dupes, 4, False, ["label"], torch.Generator(), seed=3)
    assert list(hashed) == list(plain)

    nli = data["nli"]
    ours = S.GroupByLabelBatchSampler(nli, 4, False, ["label"], torch.Generator(), seed=1)
    ref = R.GroupByLabelBatchSampler(
        nli, batch_size=4, drop_last=False, valid_label_columns=["label"], generator=torch.Generator(), seed=1
    )
    assert list(ours) == list(ref) and len(ours) == len(ref)

    parts = [data["pairs"], data["scored"].select(range(7))]
    concat = ConcatDataset(parts)
    for ours_cls, ref_cls in (
        (S.RoundRobinBatchSampler, R.RoundRobinBatchSampler),
        (S.ProportionalBatchSampler, R.ProportionalBatchSampler),
    ):
        g1, g2 = torch.Generator(), torch.Generator()
        ours = ours_cls(
            concat,
            [
                S.NoDuplicatesBatchSampler(parts[0], 3, False, [], g1, 0),
                S.DefaultBatchSampler(parts[1], 3, False, [], g1, 0),
            ],
            g1,
            seed=5,
        )
        ref = ref_cls(
            concat,
            batch_samplers=[
                R.NoDuplicatesBatchSampler(
                    parts[0], batch_size=3, drop_last=False, valid_label_columns=[], generator=g2, seed=0
                ),
                R.DefaultBatchSampler(
                    torch.utils.data.RandomSampler(parts[1], generator=g2), batch_size=3, drop_last=False
                ),
            ],
            generator=g2,
            seed=5,
        )
        for epoch in range(2):
            ours.set_epoch(epoch)
            ref.set_epoch(epoch)
            assert list(ours) == list(ref)


def test_default_sampler_epochs_match_the_reference_trainer(st, folder, data, tmp_path):
    """One data set, plain batches: each epoch's order equals the reference trainer's (its seedable sampler)."""
    ref = st.SentenceTransformerTrainer(
        model=st.SentenceTransformer(str(folder), device="cpu"),
        train_dataset=data["pairs"],
        args=st.SentenceTransformerTrainingArguments(str(tmp_path / "ref"), **{**COMMON, "seed": 11}),
    )
    ours = SentenceTransformerTrainer(
        model=headway.SentenceTransformer(folder, device="cpu"),
        train_dataset=data["pairs"],
        args=SentenceTransformerTrainingArguments(str(tmp_path / "ours"), **{**COMMON, "seed": 11}),
    )
    ref_loader, loader = ref.get_train_dataloader(), ours.get_train_dataloader()
    for epoch in range(3):
        ref_loader.set_epoch(epoch)
        loader.batch_sampler.set_epoch(epoch)
        assert list(loader.batch_sampler) == list(ref_loader.batch_sampler)


# -- checkpoints ----------------------------------------------------------------------------------------
def test_resume_from_checkpoint_is_exact(folder, data, tmp_path):
    """Stopped at step 2 and resumed, training ends on the uninterrupted run's weights, classifier included;
    a checkpoint is a whole SentenceTransformer folder."""

    def run(out, **kwargs):
        model = headway.SentenceTransformer(folder, device="cpu")
        torch.manual_seed(2)
        loss = L.SoftmaxLoss(model, embedding_dimension=32, num_labels=3)
        args = SentenceTransformerTrainingArguments(
            str(out),
            **{
                **COMMON,
                "max_steps": 4,
                "save_strategy": "steps",
                "save_steps": 2,
                "batch_sampler": "no_duplicates",
            },
        )
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data["nli"], loss=loss)
        trainer.train(**kwargs)
        return model, loss, trainer

    full, full_loss, _ = run(tmp_path / "full")
    checkpoint = tmp_path / "full" / "checkpoint-2"
    for name in (
        "modules.json",
        "config_sentence_transformers.json",
        "1_Pooling/config.json",
        "model.safetensors",
        "loss.safetensors",
        "optimizer.pt",
        "scheduler.pt",
        "trainer_state.json",
        "training_args.json",
    ):
        assert (checkpoint / name).is_file(), name
    resumed, resumed_loss, trainer = run(tmp_path / "full", resume_from_checkpoint=str(checkpoint))
    assert trainer.state.global_step == 4
    worst = max(
        (a - b).abs().max().item() for a, b in zip(full.state_dict().values(), resumed.state_dict().values())
    )
    assert worst < 1e-6, worst
    assert torch.allclose(full_loss.classifier.weight, resumed_loss.classifier.weight, atol=1e-6)
    assert headway.SentenceTransformer(checkpoint, device="cpu").encode("a man eats").shape == (32,)


def test_saved_model_loads_in_the_reference(st, folder, data, tmp_path):
    model = headway.SentenceTransformer(folder, device="cpu")
    trainer = SentenceTransformerTrainer(
        model=model,
        train_dataset=data["pairs"],
        args=SentenceTransformerTrainingArguments(str(tmp_path), **COMMON),
        loss=L.MultipleNegativesRankingLoss(model),
    )
    trainer.train()
    trainer.save_model(str(tmp_path / "final"))
    ref = st.SentenceTransformer(str(tmp_path / "final"), device="cpu")
    texts = ANCHORS[:4]
    assert torch.allclose(torch.as_tensor(ref.encode(texts)), torch.as_tensor(model.encode(texts)), atol=1e-6)


def test_trainer_checks_its_inputs(folder, data, tmp_path):
    model = headway.SentenceTransformer(folder, device="cpu")
    args = SentenceTransformerTrainingArguments(str(tmp_path), **COMMON)
    loss = L.MultipleNegativesRankingLoss(model)
    with pytest.raises(TypeError, match="dict of data sets"):
        SentenceTransformerTrainer(model=model, args=args, train_dataset=data["pairs"], loss={"a": loss})
    with pytest.raises(ValueError, match="no loss"):
        SentenceTransformerTrainer(
            model=model, args=args, train_dataset={"a": data["pairs"], "b": data["pairs"]}, loss={"a": loss}
        )
    with pytest.raises(ValueError, match="reserved"):
        SentenceTransformerTrainer(
            model=model,
            args=args,
            loss=loss,
            train_dataset=data["pairs"].rename_column("anchor", "dataset_name"),
        )
    with pytest.raises(ValueError, match="eval_dataset or an evaluator"):
        SentenceTransformerTrainer(
            model=model,
            loss=loss,
            train_dataset=data["pairs"],
            args=SentenceTransformerTrainingArguments(str(tmp_path), eval_strategy="steps", eval_steps=1),
        )
    with pytest.raises(TypeError, match="SentenceTransformerTrainingArguments"):
        SentenceTransformerTrainer(model=model, args=headway.TrainingArguments(str(tmp_path)), loss=loss)
    with pytest.raises(ValueError, match="batch_sampler='shuffled'"):
        SentenceTransformerTrainingArguments(str(tmp_path), batch_sampler="shuffled")
    with pytest.raises(ValueError, match="Router"):
        SentenceTransformerTrainingArguments(str(tmp_path), router_mapping={"anchor": "query"})


# -- cross-encoders -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ce_folder(tmp_path_factory):
    return build_bert(tmp_path_factory.mktemp("ce") / "ce", seed=4, head="cross-encoder")


@pytest.mark.parametrize("loss_name", ["bce", "listnet"])
def test_cross_encoder_trainer(loss_name, st, ce_folder, data, tmp_path):
    from sentence_transformers.cross_encoder import losses as ref_ce_losses

    ref = st.CrossEncoder(str(ce_folder), device="cpu")
    ours = headway.CrossEncoder(ce_folder, device="cpu")
    if loss_name == "bce":
        ref_loss, our_loss, train = (
            ref_ce_losses.BinaryCrossEntropyLoss(ref),
            BinaryCrossEntropyLoss(ours),
            "ce_pairs",
        )
        options = {"batch_sampler": "no_duplicates"}
    else:
        ref_loss, our_loss, train = ref_ce_losses.ListNetLoss(ref), ListNetLoss(ours), "ce_lists"
        options = {}
    settings = {**COMMON, **options}
    ref_trainer = st.CrossEncoderTrainer(
        model=ref,
        args=st.CrossEncoderTrainingArguments(str(tmp_path / "r"), **settings),
        train_dataset=data[train],
        loss=ref_loss,
    )
    trainer = CrossEncoderTrainer(
        model=ours,
        args=CrossEncoderTrainingArguments(str(tmp_path / "o"), **settings),
        train_dataset=data[train],
        loss=our_loss,
    )
    ref_trainer.train()
    trainer.train()
    ref_state = ref.model.state_dict()
    worst = max((v - ref_state[k]).abs().max().item() for k, v in ours.model.state_dict().items())
    assert worst < ATOL, worst
    assert _logs(trainer, "loss") == pytest.approx(_logs(ref_trainer, "loss"), abs=ATOL)
    trainer.save_model(str(tmp_path / "saved"))
    pairs = list(zip(ANCHORS[:3], POSITIVES[:3]))
    assert headway.CrossEncoder(tmp_path / "saved").predict(pairs) == pytest.approx(
        ours.predict(pairs), abs=1e-6
    )


# -- the legacy fit -------------------------------------------------------------------------------------------
def test_fit_matches_reference(st, folder, ref_losses, tmp_path, monkeypatch):
    from sentence_transformers.sentence_transformer.readers import InputExample as RefExample
    from torch.utils.data import DataLoader

    monkeypatch.chdir(tmp_path)
    ref = st.SentenceTransformer(str(folder), device="cpu")
    ours = headway.SentenceTransformer(folder, device="cpu")
    examples = [(a, p, s) for a, p, s in zip(ANCHORS, NEGATIVES, SCORES)]
    torch.manual_seed(0)
    ref.fit(
        train_objectives=[
            (
                DataLoader(
                    [RefExample(texts=[a, p], label=s) for a, p, s in examples], shuffle=True, batch_size=4
                ),
                ref_losses.CosineSimilarityLoss(ref),
            )
        ],
        epochs=2,
        warmup_steps=2,
        optimizer_params={"lr": 1e-3},
        show_progress_bar=False,
        output_path=str(tmp_path / "ref_out"),
    )
    torch.manual_seed(0)
    ours.fit(  # the method, as sentence-transformers users call it
        train_objectives=[
            (
                DataLoader(
                    [InputExample(texts=[a, p], label=s) for a, p, s in examples], shuffle=True, batch_size=4
                ),
                L.CosineSimilarityLoss(ours),
            )
        ],
        epochs=2,
        warmup_steps=2,
        optimizer_params={"lr": 1e-3},
        show_progress_bar=False,
        output_path=str(tmp_path / "our_out"),
    )
    worst = max_weight_difference(ours, ref)
    assert worst < ATOL, worst
    assert max_weight_difference(headway.SentenceTransformer(folder), ref) > 1e-4
    saved = headway.SentenceTransformer(tmp_path / "our_out", device="cpu")
    assert torch.allclose(
        torch.as_tensor(saved.encode(ANCHORS[:2])), torch.as_tensor(ours.encode(ANCHORS[:2]))
    )


# -- torchrun -------------------------------------------------------------------------------------------------


def test_torchrun_two_processes_match_one(folder, data, tmp_path):
    """Two processes (DDP, gloo) with a batch each equal one process accumulating the same two batches."""
    torchrun_train(folder, tmp_path / "two", tmp_path)

    one = headway.SentenceTransformer(folder, device="cpu")
    args = SentenceTransformerTrainingArguments(
        str(tmp_path / "one"), **TORCHRUN_ARGS, gradient_accumulation_steps=2
    )
    trainer = SentenceTransformerTrainer(
        model=one, args=args, train_dataset=data["pairs"], loss=L.MultipleNegativesRankingLoss(one)
    )
    trainer.train()
    two = headway.SentenceTransformer(tmp_path / "two" / "final", device="cpu")
    worst = max(
        (a - b).abs().max().item() for a, b in zip(one.state_dict().values(), two.state_dict().values())
    )
    assert worst < 1e-6, worst
    losses = json.loads((tmp_path / "two" / "losses.json").read_text())
    assert losses == pytest.approx(_logs(trainer, "loss"), abs=1e-6)
    start = headway.SentenceTransformer(folder, device="cpu")
    assert (
        max(
            (a - b).abs().max().item() for a, b in zip(start.state_dict().values(), two.state_dict().values())
        )
        > 1e-4
    )
