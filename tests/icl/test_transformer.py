import pytest
import torch

from autofm.core.checkpoint import save_model
from autofm.core.errors import ValidationError
from autofm.icl.pretrained import load_pfn, pfn_loss
from autofm.icl.priors import CountingPrior, GPPrior
from autofm.icl.transformer import PFN, PFNConfig
from autofm.pfn.train import PriorTrainConfig, train

TINY = dict(d_model=32, n_layers=2, n_heads=2, d_hidden=64)


def _model(**kw):
    torch.manual_seed(0)
    return PFN(PFNConfig(**{**TINY, "n_outputs": 20, "max_context": 30, **kw}))


def _inputs(batch=2, n_context=5, n_query=4, n_features=1, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.rand(batch, n_context, n_features, generator=generator),
        torch.randn(batch, n_context, generator=generator),
        torch.rand(batch, n_query, n_features, generator=generator),
    )


def test_queries_see_only_the_context_and_not_each_other():
    model = _model().eval()
    x_context, y_context, x_query = _inputs()
    full = model(x_context, y_context, x_query)
    # each query alone gives the same output as in the group
    for index in range(x_query.shape[1]):
        alone = model(x_context, y_context, x_query[:, index : index + 1])
        assert torch.allclose(alone[:, 0], full[:, index], atol=1e-5)
    # the context is a set: permuting it changes nothing
    order = torch.randperm(5, generator=torch.Generator().manual_seed(1))
    permuted = model(x_context[:, order], y_context[:, order], x_query)
    assert torch.allclose(permuted, full, atol=1e-5)
    # the context's y values do matter
    changed = model(x_context, y_context + 1.0, x_query)
    assert not torch.allclose(changed, full, atol=1e-3)


def test_empty_context_returns_a_finite_predictive():
    model = _model()
    _, _, x_query = _inputs()
    prediction = model.predict(torch.zeros(2, 0, 1), torch.zeros(2, 0), x_query)
    assert prediction.logits.shape == (2, 4, 20)
    assert torch.isfinite(prediction.mean).all() and torch.isfinite(prediction.variance).all()


def test_unbatched_inputs_are_accepted():
    model = _model()
    x_context, y_context, x_query = _inputs(batch=1)
    batched = model.predict_mean(x_context, y_context, x_query)
    single = model.predict_mean(x_context[0], y_context[0], x_query[0])
    assert single.shape == (4,) and torch.allclose(single, batched[0])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda xc, yc, xq: (xc, yc, xq.expand(-1, -1, 2).contiguous()), "same features"),
        (lambda xc, yc, xq: (xc.expand(-1, -1, 2), yc, xq.expand(-1, -1, 2)), "trained on 1"),
        (lambda xc, yc, xq: (xc, yc.index_fill(1, torch.tensor([0]), float("nan")), xq), "NaN"),
        (lambda xc, yc, xq: (xc, yc[:, :3], xq), "must match"),
        (lambda xc, yc, xq: (xc.repeat(1, 7, 1), yc.repeat(1, 7), xq), "at most 30"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(change, message):
    model = _model()
    with pytest.raises(ValidationError, match=message):
        model.predict(*change(*_inputs()))


def test_classification_labels_are_checked():
    model = _model(task="classification", n_outputs=2)
    x_context, _, x_query = _inputs()
    with pytest.raises(ValidationError, match="class labels"):
        model.predict(x_context, torch.full((2, 5), 2.0), x_query)


def test_a_tiny_counting_pfn_learns_to_count(tmp_path):
    config = PFNConfig(task="classification", n_outputs=2, max_context=20, **TINY)
    torch.manual_seed(0)
    model = PFN(config)
    train_config = PriorTrainConfig(
        steps=150,
        batch_size=32,
        n_context=(0, 20),
        n_query=8,
        lr=3e-3,
        warmup_steps=10,
        threads=1,
    )
    result = train(model, CountingPrior(), train_config, loss_fn=pfn_loss)
    probabilities = [
        model.predict_mean(torch.zeros(1, k, 1), torch.ones(1, k), torch.zeros(1, 1, 1)).item()
        for k in (0, 2, 8, 20)
    ]
    assert probabilities[0] == pytest.approx(0.5, abs=0.1)
    assert probabilities[1] < probabilities[2] < probabilities[3]
    assert probabilities[3] > 0.8
    # a saved model reloads to identical predictions
    save_model(tmp_path / "pfn", result.model, training={"prior": "counting"})
    reloaded, meta = load_pfn(tmp_path / "pfn")
    assert meta["training"]["prior"] == "counting"
    x_context, y_context = torch.zeros(1, 3, 1), torch.tensor([[1.0, 0.0, 1.0]])
    assert torch.equal(
        reloaded.predict_logits(x_context, y_context, torch.zeros(1, 1, 1)),
        model.predict_logits(x_context, y_context, torch.zeros(1, 1, 1)),
    )


def test_regression_pfn_prediction_interface():
    model = _model()
    model.distribution.borders.copy_(torch.linspace(-3, 3, 21))
    x_context, y_context, x_query = _inputs()
    prediction = model.predict(x_context, y_context, x_query)
    low, high = prediction.quantile(0.05), prediction.quantile(0.95)
    assert (low < prediction.mean).all() and (prediction.mean < high).all()
    draws = prediction.sample(7, torch.Generator().manual_seed(0))
    assert draws.shape == (7, 2, 4)
    y = torch.zeros(2, 4)
    assert torch.allclose(
        prediction.log_density(y), model.distribution.log_density(prediction.logits, y)
    )
    loss = model.loss(model(x_context, y_context, x_query), GPPrior().sample(2, 5, 4, 1, None))
    assert torch.isfinite(loss)
