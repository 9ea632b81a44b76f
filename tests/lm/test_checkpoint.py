import json

import pytest
import torch

from autofm.core.errors import CheckpointError
from autofm.lm import GPT, GPTConfig, grow, load_gpt, save_gpt


def test_round_trip_is_exact_for_trained_and_grown_models(tmp_path):
    config = GPTConfig(
        width=32, depth=1, head_size=8, block_size=16, base_width=32, tie_embeddings=True
    )
    model = GPT(config, seed=4)
    grown = grow(model, 64, seed=5)
    idx = torch.randint(0, 256, (2, 16))
    for name, original in (("small", model), ("grown", grown)):
        stem = save_gpt(tmp_path / name, original, {"note": name})
        loaded, meta = load_gpt(stem)
        assert loaded.config == original.config
        assert torch.equal(loaded(idx)[0], original(idx)[0])
        assert meta["tokenizer"]["kind"] == "bytes" and meta["kind"] == "gpt"
        assert meta["training"] == {"note": name}


def test_config_that_does_not_match_the_weights_is_refused(tmp_path):
    stem = save_gpt(tmp_path / "m", GPT(GPTConfig(width=32, head_size=8, block_size=16), seed=0))
    meta = json.loads(stem.with_suffix(".json").read_text())
    meta["model"]["width"] = 64
    stem.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match the model built from its config"):
        load_gpt(stem)
    meta["model"]["width"] = 33
    stem.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="invalid GPTConfig"):
        load_gpt(stem)
    meta["model"]["width"] = 32
    meta["tokenizer"] = {"kind": "bpe", "vocab_size": 50257}
    stem.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="byte-level"):
        load_gpt(stem)
