import torch

from autofm.gam.model import GAMformer, GAMformerConfig

CONFIG = GAMformerConfig(n_bins=8, d_model=16, n_layers=2, n_heads=2, d_hidden=32, head_hidden=32)


def _inputs(seed=0, batch=2, rows=12, features=3, classes=3):
    generator = torch.Generator().manual_seed(seed)
    bins = torch.randint(0, CONFIG.n_bins + 1, (batch, rows, features), generator=generator)
    labels = torch.randint(0, classes, (batch, rows), generator=generator)
    query = torch.randint(0, CONFIG.n_bins + 1, (batch, 5, features), generator=generator)
    return bins, labels, query


def _model():
    torch.manual_seed(0)
    model = GAMformer(CONFIG).eval()
    # larger weights than the init so that the invariances are not trivially met
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return model


def test_shapes_of_tables_and_predictions():
    model = _model()
    bins, labels, query = _inputs()
    tables = model.shape_functions(bins, labels)
    assert tables.shape == (2, 3, CONFIG.n_bins + 1, CONFIG.max_classes)
    assert model(bins, labels, query).shape == (2, 5, CONFIG.max_classes)
    regression = model.shape_functions(bins, labels.float(), regression=True)
    assert regression.shape == (2, 3, CONFIG.n_bins + 1, 1)


def test_prediction_is_the_sum_of_looked_up_shape_values():
    model = _model()
    bins, labels, query = _inputs()
    tables = model.shape_functions(bins, labels)
    logits = model(bins, labels, query)
    b, m = 1, 3
    expected = sum(tables[b, j, query[b, m, j]] for j in range(3))
    torch.testing.assert_close(logits[b, m], expected)


def test_feature_order_equivariance_and_row_order_invariance():
    model = _model()
    bins, labels, _ = _inputs(features=4)
    tables = model.shape_functions(bins, labels)
    feature_order = torch.tensor([2, 0, 3, 1])
    permuted = model.shape_functions(bins[:, :, feature_order], labels)
    torch.testing.assert_close(permuted, tables[:, feature_order], atol=1e-5, rtol=1e-4)
    row_order = torch.randperm(bins.shape[1], generator=torch.Generator().manual_seed(1))
    shuffled = model.shape_functions(bins[:, row_order], labels[:, row_order])
    torch.testing.assert_close(shuffled, tables, atol=1e-5, rtol=1e-4)


def test_tasks_in_a_batch_do_not_interact():
    model = _model()
    bins, labels, _ = _inputs()
    together = model.shape_functions(bins, labels)
    alone = model.shape_functions(bins[1:], labels[1:])
    torch.testing.assert_close(together[1:], alone, atol=1e-5, rtol=1e-4)
