"""headway's training losses against sentence-transformers 6.2's: the same loss value and the same
gradient on every weight, for the same tiny model and batch."""

from __future__ import annotations

import random

import pytest
import torch

import headway
from headway.sentence import losses as ours_losses
from headway.sentence.trainer import SentenceTransformerDataCollator, collect_features

from .tiny_training import (
    ANCHORS,
    NEGATIVES,
    NLI_LABELS,
    POSITIVES,
    SCORES,
    as_reference_keys,
    build_sentence_transformer,
)

ATOL = 1e-6
B = 6  # rows per batch


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_sentence_transformer(tmp_path_factory.mktemp("losses") / "st")


@pytest.fixture(scope="module")
def models(folder, st):
    return headway.SentenceTransformer(folder, device="cpu"), st.SentenceTransformer(
        str(folder), device="cpu"
    )


@pytest.fixture(scope="module")
def ref_losses(st):
    from sentence_transformers.sentence_transformer import losses

    return losses


def batch(model, columns: dict[str, list], labels=None):
    """Collated features (one dict per column) and labels, as the trainer makes them."""
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    if labels is not None:
        for row, label in zip(rows, labels):
            row["label"] = label
    return collect_features(SentenceTransformerDataCollator(model.tokenize)(rows))


def copies(features):
    return [dict(f) for f in features]


def run(ours, ref, our_loss, ref_loss, columns, labels=None):
    """Loss and gradients of both libraries on the same batch; asserts they agree."""
    features, label_tensor = batch(ours, columns, labels)
    for model in (ours, ref):
        model.zero_grad(set_to_none=True)
        model.train()
    a = our_loss(copies(features), label_tensor)
    b = ref_loss(copies(features), label_tensor)
    a.backward()
    b.backward()
    assert abs(a.item() - b.item()) < ATOL, (a.item(), b.item())
    ref_grads = {k: p.grad for k, p in ref.named_parameters()}
    worst = 0.0
    for name, p in as_reference_keys(dict(ours.named_parameters())).items():
        g, h = p.grad, ref_grads[name]
        if g is None or h is None:
            assert g is None and h is None or (g if h is None else h).abs().max() == 0, name
            continue
        worst = max(worst, (g - h).abs().max().item())
    assert worst < ATOL, worst
    assert any(p.grad is not None and p.grad.abs().max() > 0 for p in ours.parameters())
    return a.item()


PAIRS = {"anchor": ANCHORS[:B], "positive": POSITIVES[:B]}
TRIPLETS = {"anchor": ANCHORS[:B], "positive": POSITIVES[:B], "negative": NEGATIVES[:B]}
SCORED = {"sentence1": ANCHORS[:B], "sentence2": NEGATIVES[B - 1 :: -1]}


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"scale": 1.0, "similarity_fct": "dot_score"},
        {"directions": ("query_to_doc", "doc_to_query"), "partition_mode": "per_direction"},
        {"directions": ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")},
        {"hardness_mode": "in_batch_negatives", "hardness_strength": 9.0},
        {"hardness_mode": "hard_negatives", "hardness_strength": 5.0},
        {"hardness_mode": "all_negatives", "hardness_strength": 2.0},
    ],
    ids=["default", "dot", "symmetric", "gte", "hard-in-batch", "hard-negatives", "hard-all"],
)
@pytest.mark.parametrize("data", ["pairs", "triplets"])
def test_multiple_negatives_ranking(models, ref_losses, options, data):
    ours, ref = models
    options = dict(options)
    if options.get("similarity_fct") == "dot_score":
        import sentence_transformers.util as st_util

        ours_opts = {**options, "similarity_fct": headway.util.dot_score}
        options["similarity_fct"] = st_util.dot_score
    else:
        ours_opts = options
    run(
        ours,
        ref,
        ours_losses.MultipleNegativesRankingLoss(ours, **ours_opts),
        ref_losses.MultipleNegativesRankingLoss(ref, **options),
        PAIRS if data == "pairs" else TRIPLETS,
    )


@pytest.mark.parametrize(
    "options",
    [
        {"mini_batch_size": 4},
        {"mini_batch_size": 1},
        {"mini_batch_size": 32, "mini_batch_num_tokens": 20},
        {
            "mini_batch_size": 2,
            "directions": ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"),
        },
    ],
    ids=["mb4", "mb1", "tokens", "gte"],
)
def test_cached_multiple_negatives_ranking(models, ref_losses, options):
    ours, ref = models
    value = run(
        ours,
        ref,
        ours_losses.CachedMultipleNegativesRankingLoss(ours, **options),
        ref_losses.CachedMultipleNegativesRankingLoss(ref, **options),
        TRIPLETS,
    )
    # gradient caching changes memory, not the loss: the plain loss on the whole batch agrees
    plain = {k: v for k, v in options.items() if k not in ("mini_batch_size", "mini_batch_num_tokens")}
    features, _ = batch(ours, TRIPLETS)
    with torch.no_grad():
        assert ours_losses.MultipleNegativesRankingLoss(ours, **plain)(
            features, None
        ).item() == pytest.approx(value, abs=1e-6)


@pytest.mark.parametrize("keyed", [False, True], ids=["torch-rng", "keyed"])
def test_cached_loss_replays_dropout(folder, keyed):
    """With dropout on, the second (gradient) forward of each mini-batch reuses the first one's masks, whether
    they come from torch's generator or from the Trainer's keyed dropout: the cached loss's gradients equal
    the plain loss's under the same random state."""
    import contextlib

    from headway.nn.dropout import DropoutKeys, keyed_dropout

    model = headway.SentenceTransformer(folder, device="cpu")
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.3
    features, _ = batch(model, PAIRS)
    model.train()
    grads = []
    for loss in (
        ours_losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=B),
        ours_losses.MultipleNegativesRankingLoss(model),
    ):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(7)
        keys = (
            keyed_dropout(DropoutKeys(seed=3, step=1, examples=list(range(B))))
            if keyed
            else contextlib.nullcontext()
        )
        with keys:
            loss(copies(features), None).backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    assert max((a - b).abs().max().item() for a, b in zip(*grads)) < ATOL


def test_cosent(models, ref_losses):
    ours, ref = models
    run(ours, ref, ours_losses.CoSENTLoss(ours), ref_losses.CoSENTLoss(ref), SCORED, SCORES[:B])
    # ties in the gold scores
    run(
        ours,
        ref,
        ours_losses.CoSENTLoss(ours, scale=10.0),
        ref_losses.CoSENTLoss(ref, scale=10.0),
        SCORED,
        [0.5, 0.5, 1.0, 0.0, 1.0, 0.5],
    )


def test_cosine_similarity(models, ref_losses):
    ours, ref = models
    run(
        ours,
        ref,
        ours_losses.CosineSimilarityLoss(ours),
        ref_losses.CosineSimilarityLoss(ref),
        SCORED,
        SCORES[:B],
    )
    run(
        ours,
        ref,
        ours_losses.CosineSimilarityLoss(ours, loss_fct=torch.nn.L1Loss()),
        ref_losses.CosineSimilarityLoss(ref, loss_fct=torch.nn.L1Loss()),
        SCORED,
        SCORES[:B],
    )


@pytest.mark.parametrize("metric", ["EUCLIDEAN", "COSINE", "MANHATTAN"])
def test_triplet(models, ref_losses, metric):
    ours, ref = models
    margin = 5 if metric != "COSINE" else 0.5
    run(
        ours,
        ref,
        ours_losses.TripletLoss(ours, getattr(ours_losses.TripletDistanceMetric, metric), margin),
        ref_losses.TripletLoss(ref, getattr(ref_losses.TripletDistanceMetric, metric), margin),
        TRIPLETS,
    )


def test_softmax(models, ref_losses):
    ours, ref = models
    torch.manual_seed(3)
    ref_loss = ref_losses.SoftmaxLoss(ref, embedding_dimension=32, num_labels=3)
    our_loss = ours_losses.SoftmaxLoss(ours, embedding_dimension=32, num_labels=3)
    our_loss.classifier.load_state_dict(ref_loss.classifier.state_dict())
    run(ours, ref, our_loss, ref_loss, PAIRS, NLI_LABELS[:B])
    assert torch.allclose(our_loss.classifier.weight.grad, ref_loss.classifier.weight.grad, atol=ATOL)
    features, _ = batch(ours, PAIRS)
    embeddings, logits = our_loss(features, None)  # without labels: the classifier's logits
    assert logits.shape == (B, 3) and len(embeddings) == 2


@pytest.mark.parametrize("inner", ["mnrl", "cosent", "cached"])
def test_matryoshka(models, ref_losses, inner):
    ours, ref = models
    dims, weights = [32, 16, 8], [1.0, 0.5, 2.0]
    if inner == "mnrl":
        pair = ours_losses.MultipleNegativesRankingLoss(ours), ref_losses.MultipleNegativesRankingLoss(ref)
        data, labels = TRIPLETS, None
    elif inner == "cosent":
        pair = ours_losses.CoSENTLoss(ours), ref_losses.CoSENTLoss(ref)
        data, labels = SCORED, SCORES[:B]
    else:
        pair = (
            ours_losses.CachedMultipleNegativesRankingLoss(ours, mini_batch_size=4),
            ref_losses.CachedMultipleNegativesRankingLoss(ref, mini_batch_size=4),
        )
        data, labels = PAIRS, None
    run(
        ours,
        ref,
        ours_losses.MatryoshkaLoss(ours, pair[0], dims, weights),
        ref_losses.MatryoshkaLoss(ref, pair[1], dims, weights),
        data,
        labels,
    )


def test_matryoshka_dims_per_step(models, ref_losses):
    ours, ref = models
    dims = [32, 24, 16, 8]
    our_loss = ours_losses.MatryoshkaLoss(
        ours, ours_losses.MultipleNegativesRankingLoss(ours), dims, n_dims_per_step=2
    )
    ref_loss = ref_losses.MatryoshkaLoss(
        ref, ref_losses.MultipleNegativesRankingLoss(ref), dims, n_dims_per_step=2
    )
    random.seed(5)
    features, _ = batch(ours, PAIRS)
    a = our_loss(copies(features), None)
    random.seed(5)
    b = ref_loss(copies(features), None)
    assert a.item() == pytest.approx(b.item(), abs=ATOL)


def test_bad_options(models):
    ours, _ = models
    with pytest.raises(ValueError, match="query_to_doc"):
        ours_losses.MultipleNegativesRankingLoss(ours, directions=("doc_to_query",))
    with pytest.raises(ValueError, match="per_direction"):
        ours_losses.MultipleNegativesRankingLoss(
            ours, directions=("query_to_doc", "doc_to_doc"), partition_mode="per_direction"
        )
    with pytest.raises(ValueError, match="hardness_mode"):
        ours_losses.MultipleNegativesRankingLoss(ours, hardness_mode="hardest")
    with pytest.raises(ValueError, match="scale"):
        ours_losses.MultipleNegativesRankingLoss(ours, scale=0)
    with pytest.raises(ValueError, match="exceed"):
        ours_losses.MatryoshkaLoss(ours, ours_losses.CoSENTLoss(ours), [64, 32])
    with pytest.raises(ValueError, match="mini_batch_size"):
        ours_losses.CachedMultipleNegativesRankingLoss(ours, mini_batch_size=0)
    features, labels = batch(ours, SCORED, SCORES[:B])
    with pytest.raises(ValueError, match="expects 6 labels"):
        ours_losses.CoSENTLoss(ours)(features, labels[:3])
    with pytest.raises(ValueError, match="at least 2 text columns"):
        ours_losses.MultipleNegativesRankingLoss(ours)(features[:1], None)
    with pytest.raises(ValueError, match="anchor, positive, negative"):
        ours_losses.TripletLoss(ours)(features, None)


def test_merged_columns_match_separate_forwards(models):
    """Candidate columns share one forward (padded to the widest): the same embeddings as one forward each."""
    ours, _ = models
    features, _ = batch(ours, TRIPLETS)
    merged = ours_losses.embed_columns(ours, copies(features))
    separate = [ours(f)["sentence_embedding"] for f in copies(features)]
    assert ours_losses.merge_columns(copies(features[1:])) is not None
    for a, b in zip(merged, separate):
        assert torch.allclose(a, b, atol=1e-6)
