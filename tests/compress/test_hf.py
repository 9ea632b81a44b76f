"""Hugging Face Llama parents: sub-networks as slices checked against transformers' own forward
(masked and truncated copies of the model), GQA-consistent importance sorting that keeps the
function, exact parameter counts, and extraction to a directory transformers loads unchanged."""

import copy
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from autofm.compress import SearchSpace, SubNetwork, count_flops, count_parameters
from autofm.compress.hf_baselines import llama_magnitude_scores, prune_llama
from autofm.compress.hf_extract import (
    COMPRESS_FILE,
    extract_llama,
    llama_sub_config,
    load_hf_parent,
    save_hf_supernet,
)
from autofm.compress.hf_supernet import (
    LlamaShape,
    LlamaSuperNetwork,
    LlamaTrainee,
    llama_importance,
    permute_llama,
    sort_llama,
)
from autofm.core.errors import CheckpointError, DataNotFoundError, ValidationError

TINY = dict(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=32,
    initializer_range=0.2,  # logits far from uniform, so a wrong slice shows
)
VARIANTS = {
    "gqa": {},
    "bias-tied": dict(attention_bias=True, mlp_bias=True, tie_word_embeddings=True),
    # head_dim · heads (64) ≠ hidden_size, one key/value head for four query heads
    "wide-heads-mqa": dict(head_dim=16, num_key_value_heads=1),
}


def _llama(variant="gqa", seed=0):
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**{**TINY, **VARIANTS[variant]}))
    with torch.no_grad():  # non-trivial gains and biases, so slicing them is tested too
        for parameter in model.parameters():
            if parameter.ndim == 1:
                parameter.add_(0.3 * torch.randn_like(parameter))
    return model.eval()


def _tokens(n=2, time=12, seed=1):
    return torch.randint(0, 64, (n, time), generator=torch.Generator().manual_seed(seed))


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits


def _close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)


def test_the_shape_keeps_whole_query_groups():
    shape = LlamaShape.from_config(_llama().config)
    assert (shape.width, shape.depth, shape.head_size, shape.head_group) == (32, 3, 8, 2)
    space = SearchSpace(shape, min_embed=8, embed_step=8, mlp_step=16)
    assert space.head_choices(0) == [2, 4] and space.mlp_choices(0) == [16, 32, 48]
    mqa = LlamaShape.from_config(_llama("wide-heads-mqa").config)
    assert mqa.head_size == 16 and SearchSpace(mqa).head_choices(0) == [4]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_full_sub_network_is_the_model(variant):
    model = _llama(variant)
    supernet = LlamaSuperNetwork(model)
    ids = _tokens()
    expected = _logits(model, ids)
    with torch.no_grad():
        _close(supernet(ids)[0], expected)
        sliced, loss = supernet(ids, SubNetwork.full(supernet.config), targets=ids)
    _close(sliced, expected)
    _close(loss, torch.nn.functional.cross_entropy(expected.flatten(0, 1), ids.flatten()))


def test_fewer_heads_and_neurons_equal_the_model_with_them_zeroed():
    # dropping a query group or a neuron removes an additive term: a known answer from
    # transformers' own forward with the unit's output weights set to zero
    model = _llama()
    sub = SubNetwork(32, (0, 1, 2), (2, 4, 2), (48, 20, 7))
    masked = copy.deepcopy(model)
    with torch.no_grad():
        for block, heads, width in zip(masked.model.layers, sub.heads, sub.mlp):
            block.self_attn.o_proj.weight[:, heads * 8 :] = 0
            block.mlp.down_proj.weight[:, width:] = 0
    ids = _tokens()
    with torch.no_grad():
        sliced = LlamaSuperNetwork(model)(ids, sub)[0]
    _close(sliced, _logits(masked, ids))
    assert (sliced - _logits(model, ids)).abs().max() > 1e-2  # not the full model by accident


def test_fewer_layers_equal_the_model_without_the_others():
    model = _llama()
    truncated = copy.deepcopy(model)
    truncated.model.layers = torch.nn.ModuleList([truncated.model.layers[i] for i in (0, 2)])
    truncated.config.num_hidden_layers = 2
    ids = _tokens()
    with torch.no_grad():
        sliced = LlamaSuperNetwork(model)(ids, SubNetwork(32, (0, 2), (4, 4), (48, 48)))[0]
    _close(sliced, _logits(truncated, ids))


def test_training_a_slice_changes_only_the_weights_it_uses():
    model = _llama("bias-tied").train()
    supernet = LlamaSuperNetwork(model)
    sub = SubNetwork(embed=16, layers=(0, 2), heads=(2, 4), mlp=(20, 48))
    before = {name: value.clone() for name, value in model.state_dict().items()}
    ids = _tokens()
    supernet(ids, sub, targets=ids)[1].backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    after = model.state_dict()
    change = {name: after[name] - before[name] for name in after}
    assert not change["model.layers.1.mlp.up_proj.weight"].any()
    q = change["model.layers.0.self_attn.q_proj.weight"]  # one group: query heads 0, 1
    assert q[:16, :16].abs().sum() > 0 and not q[16:].any() and not q[:, 16:].any()
    k = change["model.layers.0.self_attn.k_proj.weight"]  # its one key/value head
    assert k[:8, :16].abs().sum() > 0 and not k[8:].any()
    down = change["model.layers.0.mlp.down_proj.weight"]
    assert down[:16, :20].abs().sum() > 0 and not down[16:].any() and not down[:, 20:].any()
    norm = change["model.layers.2.input_layernorm.weight"]
    assert norm[:16].abs().sum() > 0 and not norm[16:].any()
    embedding = change["model.embed_tokens.weight"]  # tied: the readout's gradient lands here
    assert embedding[:, :16].abs().sum() > 0 and not embedding[:, 16:].any()


def test_sub_networks_outside_the_space_are_refused():
    shape = LlamaShape.from_config(_llama().config)
    with pytest.raises(ValidationError, match="6 heads, the parent has 4"):
        SubNetwork(32, (0,), (6,), (48,)).check(shape)
    with pytest.raises(ValidationError, match="not a multiple of the query-group size 2"):
        SubNetwork(32, (0,), (3,), (48,)).check(shape)
    with pytest.raises(ValidationError, match="MLP width 49"):
        SubNetwork(32, (0,), (2,), (49,)).check(shape)
    with pytest.raises(ValidationError, match="keeps no layer"):
        SubNetwork(32, (), (), ()).check(shape)
    with pytest.raises(ValidationError, match="query-group"):
        SearchSpace(shape).build(32, 2, 3, 48)
    with pytest.raises(ValidationError, match="embed 40"):
        LlamaSuperNetwork(_llama())(_tokens(), SubNetwork(40, (0,), (2,), (48,)))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_counted_parameters_are_the_extracted_models(variant):
    model = _llama(variant)
    supernet = LlamaSuperNetwork(model, layer_order=(2, 0, 1))
    space = supernet.space("uniform", min_embed=8, embed_step=8, mlp_step=8)
    rng = np.random.default_rng(0)
    subs = [space.smallest(), space.largest(), *(space.sample(rng) for _ in range(4))]
    for sub in subs:
        dense = extract_llama(supernet, sub)
        assert count_parameters(supernet.config, sub) == dense.num_parameters()
    assert count_parameters(supernet.config, space.largest()) == model.num_parameters()


def test_flops_count_every_matrix_and_grow_with_the_sub_network():
    shape = LlamaShape.from_config(_llama().config)
    # per layer: q 32·32, k and v 32·16 each, o 32·32, three SwiGLU 32·48, all ×2; attention
    # 2·2·32 per attended token, (seq + 1) // 2 = 5 of them under the causal mask; plus the
    # readout 2·64·32
    per_layer = 2 * (32 * 32 + 2 * 32 * 16 + 32 * 32 + 3 * 32 * 48) + 4 * 5 * 32
    assert count_flops(shape, SubNetwork.full(shape), 10) == 3 * per_layer + 2 * 64 * 32
    space = SearchSpace(shape, min_embed=8, embed_step=8)
    assert count_flops(shape, space.smallest()) < count_flops(shape, space.largest())


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_sorting_keeps_the_function_and_puts_important_units_first(variant):
    model = _llama(variant)
    batches = [_tokens(seed=seed) for seed in range(3)]
    ids = _tokens(seed=9)
    expected = _logits(model, ids)
    before = copy.deepcopy(model.state_dict())
    layer_order = sort_llama(model, batches)
    _close(_logits(model, ids), expected)
    assert sorted(layer_order) == [0, 1, 2]
    changed = [name for name, value in model.state_dict().items() if not value.equal(before[name])]
    assert "model.embed_tokens.weight" in changed and "model.layers.0.mlp.up_proj.weight" in changed
    units, blocks = llama_importance(model, batches)
    for scores in (units.embed, *units.heads, *units.mlp):
        assert np.all(np.diff(scores) <= 1e-9 * scores.max())
    assert list(layer_order) == list(np.argsort(-blocks, kind="stable"))


def test_importance_scores_every_unit_and_refuses_bad_input():
    model = _llama("wide-heads-mqa")
    batches = [_tokens()]
    mean, l2 = (llama_importance(model, batches, a)[0] for a in ("mean", "l2"))
    assert mean.embed.shape == (32,) and [h.shape for h in mean.heads] == [(1,)] * 3
    assert [m.shape for m in mean.mlp] == [(48,)] * 3
    assert np.all(l2.mlp[0] >= mean.mlp[0] - 1e-12)  # root mean square ≥ mean of |·|
    assert not np.allclose(l2.mlp[0], mean.mlp[0])
    blocks = llama_importance(model, batches)[1]
    assert blocks.shape == (3,) and np.all((blocks > 0) & (blocks < 2))
    with pytest.raises(ValidationError, match="aggregation"):
        llama_importance(model, batches, "median")
    with pytest.raises(ValidationError, match="no calibration batches"):
        llama_importance(model, [])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_an_extracted_directory_loads_unchanged_and_equals_its_slice(tmp_path, variant):
    model = _llama(variant)
    supernet = LlamaSuperNetwork(model, layer_order=(1, 2, 0))
    sub = supernet.space("uniform", min_embed=8, embed_step=8).build(24, 2, 4, 20)
    before = copy.deepcopy(model.state_dict())
    extract_llama(supernet, sub, tmp_path / "small")
    loaded, loading = LlamaForCausalLM.from_pretrained(
        tmp_path / "small", output_loading_info=True, local_files_only=True
    )
    assert not any(loading.values())  # no missing, unexpected or mismatched weights
    config = loaded.config
    assert (config.hidden_size, config.num_hidden_layers, config.intermediate_size) == (24, 2, 20)
    assert (config.num_attention_heads, config.head_dim) == (4, model.config.head_dim)
    assert config.num_key_value_heads == model.config.num_key_value_heads
    ids = _tokens()
    with torch.no_grad():
        _close(_logits(loaded.eval(), ids), supernet(ids, sub)[0])
    summary = json.loads((tmp_path / "small" / COMPRESS_FILE).read_text())
    assert summary["sub_network"] == sub.to_dict()
    assert (
        summary["parameters"] == loaded.num_parameters() == count_parameters(supernet.config, sub)
    )
    assert all(value.equal(before[name]) for name, value in model.state_dict().items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small"]  # no temporary folder left


def test_a_layerwise_sub_network_is_refused_for_hf_and_nothing_is_written(tmp_path):
    supernet = LlamaSuperNetwork(_llama())
    sub = SubNetwork(32, (0, 1), (2, 4), (48, 48))
    with pytest.raises(ValidationError, match="use a uniform search space for HF models"):
        extract_llama(supernet, sub, tmp_path / "out")
    with pytest.raises(ValidationError, match="uniform"):
        llama_sub_config(supernet.model.config, SubNetwork(32, (0, 1), (4, 4), (16, 48)))
    assert not any(tmp_path.iterdir())


def test_extraction_refuses_a_taken_or_unwritable_folder_and_overwrites_on_request(tmp_path):
    supernet = LlamaSuperNetwork(_llama())
    small, large = SubNetwork(16, (0,), (2,), (16,)), SubNetwork(32, (0, 1), (4, 4), (48, 48))
    out = tmp_path / "out"
    extract_llama(supernet, large, out)
    with pytest.raises(ValidationError, match="not empty"):
        extract_llama(supernet, small, out)
    assert LlamaConfig.from_pretrained(out).hidden_size == 32  # the old model is intact
    extract_llama(supernet, small, out, overwrite=True)
    assert LlamaConfig.from_pretrained(out).hidden_size == 16
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValidationError, match="pick a writable folder"):
        extract_llama(supernet, small, tmp_path / "file" / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "out"]


def test_loading_a_parent_refuses_missing_paths_and_other_architectures(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_hf_parent(tmp_path / "nowhere")
    with pytest.raises(DataNotFoundError, match="no config.json"):
        load_hf_parent(tmp_path)
    for architecture, model_type in [
        ("GPT2LMHeadModel", "gpt2"),
        ("LlamaForSequenceClassification", "llama"),
    ]:
        folder = tmp_path / architecture
        folder.mkdir()
        config = {"architectures": [architecture], "model_type": model_type}
        (folder / "config.json").write_text(json.dumps(config))
        with pytest.raises(ValidationError, match=f"only Llama-family .* got {architecture}"):
            load_hf_parent(folder)
    LlamaConfig(**TINY).save_pretrained(tmp_path / "no-weights")
    with pytest.raises(DataNotFoundError, match="cannot load the Llama weights"):
        load_hf_parent(tmp_path / "no-weights")
    _llama().save_pretrained(tmp_path / "mismatch")
    LlamaConfig(**{**TINY, "intermediate_size": 64}).save_pretrained(tmp_path / "mismatch")
    with pytest.raises(CheckpointError, match="size mismatch.*match its config.json"):
        load_hf_parent(tmp_path / "mismatch")
    (tmp_path / "mismatch" / "config.json").unlink()
    _llama().config.save_pretrained(tmp_path / "mismatch")
    (tmp_path / "mismatch" / "autofm_supernet.json").write_text('{"layer_order": [0, 0, 1]}')
    with pytest.raises(ValidationError, match="not a permutation"):
        load_hf_parent(tmp_path / "mismatch")


def test_a_sorted_llama_goes_end_to_end_from_a_directory_to_extracted_models(tmp_path):
    _llama("bias-tied").save_pretrained(tmp_path / "parent")
    (tmp_path / "parent" / "tokenizer.json").write_text('{"version": "1.0"}')
    supernet, info = load_hf_parent(tmp_path / "parent" / "config.json")  # a file inside works
    assert info["parameters"] == count_parameters(supernet.config, supernet.space().largest())
    calibration = [_tokens(seed=seed) for seed in range(2)]
    layer_order = sort_llama(supernet, calibration)
    save_hf_supernet(tmp_path / "supernet", LlamaSuperNetwork(supernet.model, layer_order))
    supernet, info = load_hf_parent(f"{tmp_path}/supernet")
    assert supernet.layer_order == layer_order == tuple(info["supernet"]["layer_order"])
    space = supernet.space("uniform", min_embed=8, embed_step=8, mlp_step=8)
    rng = np.random.default_rng(0)
    ids = _tokens(seed=5)
    for index in range(3):
        sub = space.sample(rng)
        out = tmp_path / f"sub{index}"
        extract_llama(supernet, sub, out)
        reloaded = LlamaForCausalLM.from_pretrained(out, local_files_only=True).eval()
        with torch.no_grad():
            _close(_logits(reloaded, ids), supernet(ids, sub)[0])
        assert (out / "tokenizer.json").read_text() == '{"version": "1.0"}'
        assert set(sub.layers) == set(layer_order[: len(sub.layers)])


def test_a_half_precision_parent_runs_its_slices_in_its_precision():
    model = _llama().to(torch.bfloat16)
    supernet = LlamaSuperNetwork(model)
    ids = _tokens()
    with torch.no_grad():
        sliced, loss = supernet(ids, SubNetwork.full(supernet.config), targets=ids)
        expected = _logits(model, ids)
    assert sliced.dtype == torch.bfloat16 and loss.dtype == torch.float32
    torch.testing.assert_close(sliced.float(), expected.float(), rtol=0, atol=0.1)
    dense = extract_llama(supernet, SubNetwork(16, (1,), (2,), (16,)))
    assert next(dense.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_magnitude_scores_are_each_units_summed_absolute_weights(variant):
    model = _llama(variant)
    units, blocks = llama_magnitude_scores(model)
    config, llama = model.config, model.model
    group, head_size = config.num_attention_heads // config.num_key_value_heads, config.head_dim
    matrices = {name: p.detach().abs().double() for name, p in model.named_parameters()}
    tied = model.lm_head.weight is llama.embed_tokens.weight
    for channel in (0, 5, 31):  # brute force: every entry any matrix reads or writes it with
        expected = sum(
            float(w[:, channel].sum()) if not name.endswith("o_proj.weight")
            and not name.endswith("down_proj.weight") else float(w[channel].sum())
            for name, w in matrices.items()
            if w.ndim == 2 and not (tied and name == "lm_head.weight")
        )  # fmt: skip
        assert units.embed[channel] == pytest.approx(expected, rel=1e-9)
    attn, mlp = llama.layers[1].self_attn, llama.layers[1].mlp
    for kv_head in range(config.num_key_value_heads):
        queries = slice(kv_head * group * head_size, (kv_head + 1) * group * head_size)
        key_value = slice(kv_head * head_size, (kv_head + 1) * head_size)
        expected = sum(
            float(w.detach().abs().double().sum())
            for w in (attn.q_proj.weight[queries], attn.o_proj.weight[:, queries],
                      attn.k_proj.weight[key_value], attn.v_proj.weight[key_value])
        )  # fmt: skip
        assert units.heads[1][kv_head] == pytest.approx(expected, rel=1e-9)
    neuron = 7
    expected = sum(
        float(w.detach().abs().double().sum())
        for w in (mlp.gate_proj.weight[neuron], mlp.up_proj.weight[neuron],
                  mlp.down_proj.weight[:, neuron])
    )  # fmt: skip
    assert units.mlp[1][neuron] == pytest.approx(expected, rel=1e-9)
    layer_l1 = sum(float(p.detach().abs().double().sum()) for p in llama.layers[2].parameters())
    assert blocks[2] == pytest.approx(layer_l1, rel=1e-9)


@pytest.mark.parametrize(
    "method, variant",
    [("magnitude", "gqa"), ("importance", "gqa"), ("leading", "gqa"),
     ("magnitude", "bias-tied"), ("magnitude", "wide-heads-mqa"), ("importance", "bias-tied")],
)  # fmt: skip
def test_a_pruned_llama_is_the_uniform_shrink_slice_of_its_sorted_copy(method, variant):
    model = _llama(variant)
    before = copy.deepcopy(model.state_dict())
    supernet = LlamaSuperNetwork(model)
    batches = [_tokens(seed=seed) for seed in range(2)]
    pruned, info = prune_llama(supernet, method, 0.5, batches if method == "importance" else None)
    assert all(value.equal(before[name]) for name, value in model.state_dict().items())
    assert pruned.num_parameters() == info["params"]
    assert info["params_fraction"] == pytest.approx(info["params"] / model.num_parameters())
    assert abs(info["params_fraction"] - 0.5) < 0.15
    sub = SubNetwork.from_dict(info["sub_network"])
    reference = copy.deepcopy(model)
    if method == "magnitude":
        permute_llama(reference, llama_magnitude_scores(reference)[0])
    elif method == "importance":
        sort_llama(reference, batches)
    sliced = LlamaSuperNetwork(reference, info["layer_order"])
    ids = _tokens(seed=5)
    _close(_logits(pruned, ids), sliced(ids, sub)[0])
    # the kept layers are the first of the layer order, in their original order
    assert sub.layers == tuple(sorted(info["layer_order"][: len(sub.layers)]))
    with pytest.raises(ValidationError, match="params_fraction must be in"):
        prune_llama(supernet, method, 0.0, batches)
    with pytest.raises(ValidationError, match="below the smallest uniform shrink") as refused:
        prune_llama(supernet, method, 0.01, batches)
    least = float(str(refused.value).rsplit("at least ", 1)[1])  # what it asks for is accepted
    smallest, info = prune_llama(supernet, method, least, batches)
    assert info["params_fraction"] <= least < info["params_fraction"] + 1e-4


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_training_through_the_lm_loop_lowers_the_loss_and_resumes_exactly(tmp_path, variant):
    from autofm.lm.training import TrainConfig, evaluate, train

    stream = np.tile(np.arange(64), 40) % 64  # a pattern a tiny model learns quickly
    runs = {}
    for name, budget in (("whole", None), ("resumed", 0.0)):
        model = _llama(variant)
        trainee = LlamaTrainee(model, LlamaShape.from_config(model.config))
        before = evaluate(trainee, stream, n_blocks=8)
        config = TrainConfig(tokens=4096, batch_size=4, lr=3e-3, seed=0, eval_every=0)
        run_dir = tmp_path / name
        if budget is not None:  # stopped after its first step, then continued
            train(trainee, stream, stream, replace(config, max_seconds=budget), run_dir=run_dir)
            model = _llama(variant)
            trainee = LlamaTrainee(model, LlamaShape.from_config(model.config))
        result = train(trainee, stream, stream, config, run_dir=run_dir)
        runs[name] = model.state_dict()
        assert result.complete and result.final_val_loss < 0.5 * before
    assert all(value.equal(runs["resumed"][key]) for key, value in runs["whole"].items())
    if variant == "bias-tied":  # still one matrix after training and resuming
        assert model.lm_head.weight is model.model.embed_tokens.weight
    state = json.loads((tmp_path / "whole" / "last.json").read_text())
    assert state["kind"] == "hf-llama" and "tokenizer" not in state
