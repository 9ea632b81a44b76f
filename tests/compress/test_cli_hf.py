"""`autofm compress` on a Hugging Face Llama folder (`hf:DIR`), the path a user with real weights
runs: a random tiny `LlamaForCausalLM` saved with a byte-level BPE tokenizer trained here, taken
through importance → search → extract → eval from the command line; bits per byte checked
against transformers' own loss; the refusals in one line with exit code 2 and nothing written."""

import json
import math
import subprocess
import sys

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from autofm.cli import main
from autofm.compress import SubNetwork
from autofm.compress.hf_extract import load_hf_parent
from autofm.compress.hf_supernet import LlamaShape
from autofm.compress.hf_text import bits_per_byte, train_byte_bpe

BLOCK = ["--block-size", "16"]


def _text() -> str:
    lines = []
    for i in range(400):
        lines.append(f"def scale_{i}(values, factor={i % 9}):\n")
        lines.append(f"    # multiply each value by {i * 7 % 13} and add {i % 5} — ü\n")
        lines.append(f"    return [v * factor + {i % 5} for v in values]\n\n")
    return "".join(lines)


def _tokenizer(text: str):
    """A byte-level BPE tokenizer trained offline on `text`, as transformers wraps one."""
    return train_byte_bpe(text, 320)


def _llama(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        initializer_range=0.2,  # logits far from uniform, so a wrong slice shows
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compress-cli-hf")
    text = _text()
    (folder / "text.txt").write_text(text, encoding="utf-8")
    tokenizer = _tokenizer(text)
    _llama(len(tokenizer)).save_pretrained(folder / "parent")
    tokenizer.save_pretrained(folder / "parent")
    return folder


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits


def _close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)


def run(args, capsys):
    code = main(["compress", *args, "--json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else None), captured.err


def test_an_hf_llama_goes_from_importance_to_an_extracted_folder_and_its_eval(
    files, tmp_path, capsys
):
    parent = LlamaForCausalLM.from_pretrained(files / "parent", local_files_only=True).eval()
    ids = torch.randint(0, 320, (2, 12), generator=torch.Generator().manual_seed(3))
    data = ["--data", str(files / "text.txt"), *BLOCK]
    sorted_dir = tmp_path / "sorted"
    code, out, _ = run(
        ["importance", f"hf:{files / 'parent'}", *data, "--batches", "2",
         "--out", str(sorted_dir)],
        capsys,
    )  # fmt: skip
    assert code == 0 and sorted(out["layer_order"]) == [0, 1, 2]
    # sorting permutes the weights and keeps the function; the tokenizer travels with them
    sorted_model = LlamaForCausalLM.from_pretrained(sorted_dir, local_files_only=True).eval()
    _close(_logits(sorted_model, ids), _logits(parent, ids))
    assert not sorted_model.model.embed_tokens.weight.equal(parent.model.embed_tokens.weight)
    tokenizer_file = (files / "parent" / "tokenizer.json").read_bytes()
    assert (sorted_dir / "tokenizer.json").read_bytes() == tokenizer_file

    front = tmp_path / "front.json"
    code, out, _ = run(
        ["search", f"hf:{sorted_dir}", *data, "--method", "random", "--trials", "6",
         "--calibration-blocks", "4", "--run-dir", str(tmp_path / "study"), "--out", str(front)],
        capsys,
    )  # fmt: skip
    assert code == 0 and out["n_trials"] == 6 and out["front"] and out["block_size"] == 16
    shape = LlamaShape.from_config(parent.config)
    for point in out["front"]:  # FLOPs at the 16-token blocks, not max_position_embeddings
        sub = SubNetwork.from_dict(point["sub_network"])
        assert point["flops"] == shape.count_flops(sub, 16) < shape.count_flops(sub, 64)

    small = tmp_path / "small"
    code, out, _ = run(
        ["extract", f"hf:{sorted_dir}", "--front", str(front), "--params-fraction", "0.7",
         "--out", str(small)],
        capsys,
    )  # fmt: skip
    assert code == 0 and out["params"] <= 0.7 * parent.num_parameters()
    reloaded, loading = LlamaForCausalLM.from_pretrained(
        small, output_loading_info=True, local_files_only=True
    )
    assert not any(loading.values()) and reloaded.num_parameters() == out["params"]
    supernet, _ = load_hf_parent(sorted_dir)
    sub = SubNetwork.from_dict(out["sub_network"])
    _close(_logits(reloaded.eval(), ids), supernet(ids, sub)[0])
    tokenizer = AutoTokenizer.from_pretrained(small, local_files_only=True)
    assert len(tokenizer) == 320

    code, out, _ = run(["eval", f"hf:{small}", *data, "--blocks", "8"], capsys)
    assert code == 0 and out["params"] == reloaded.num_parameters()
    full = SubNetwork.full(LlamaShape.from_config(reloaded.config))
    assert out["flops"] == LlamaShape.from_config(reloaded.config).count_flops(full, 16)
    text = (files / "text.txt").read_text(encoding="utf-8")
    expected = bits_per_byte(reloaded, tokenizer, text, 16, max_blocks=8)
    assert out["bits_per_byte"] == pytest.approx(expected["bits_per_byte"], rel=1e-6)
    assert out["bits_per_byte"] > 0 and out["latency_ms"] > 0 and out["block_size"] == 16
    # without --block-size: 256 tokens, or the model's whole context when that is shorter
    code, out, _ = run(["eval", f"hf:{small}", "--data", str(files / "text.txt")], capsys)
    assert code == 0 and out["block_size"] == 64


def test_bits_per_byte_is_the_summed_token_loss_over_the_text_bytes(files):
    model = LlamaForCausalLM.from_pretrained(files / "parent", local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(files / "parent", local_files_only=True)
    text = "def scale(values):\n    return [v * 2 for v in values]  # ü, é\n"
    stream = [tokenizer.bos_token_id, *tokenizer(text, add_special_tokens=False).input_ids]
    n_bytes = len(text.encode("utf-8"))

    def summed_loss(window):  # transformers' own loss (mean over the window's predictions)
        ids = torch.tensor([window])
        with torch.no_grad():
            return float(model(input_ids=ids, labels=ids).loss) * (len(window) - 1)

    measured = bits_per_byte(model, tokenizer, text, block_size=64)
    assert (measured["tokens"], measured["bytes"]) == (len(stream) - 1, n_bytes)
    expected = summed_loss(stream) / math.log(2) / n_bytes
    assert measured["bits_per_byte"] == pytest.approx(expected, rel=1e-5)
    # in blocks of 5 tokens each block starts afresh, and every token is predicted once
    windows = [stream[start : start + 6] for start in range(0, len(stream) - 1, 5)]
    blocked = sum(summed_loss(window) for window in windows) / math.log(2) / n_bytes
    assert bits_per_byte(model, tokenizer, text, block_size=5)["bits_per_byte"] == pytest.approx(
        blocked, rel=1e-5
    )


def test_a_long_text_is_measured_on_about_max_blocks_evenly_spaced_blocks(files):
    model = LlamaForCausalLM.from_pretrained(files / "parent", local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(files / "parent", local_files_only=True)
    text = (files / "text.txt").read_text(encoding="utf-8")[:15_000]
    whole = bits_per_byte(model, tokenizer, text, 16)
    sampled = bits_per_byte(model, tokenizer, text, 16, max_blocks=4)
    assert whole["bytes"] == len(text.encode("utf-8"))
    assert 3 * 16 <= sampled["tokens"] <= 4 * 18 and sampled["bytes"] < whole["bytes"] / 20
    assert sampled["bits_per_byte"] == pytest.approx(whole["bits_per_byte"], rel=0.3)


def _bad(args, capsys, match):
    code = main(["compress", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and match in err, err


def test_bad_hf_inputs_exit_2_in_one_line_with_nothing_written(files, tmp_path, capsys):
    parent = f"hf:{files / 'parent'}"
    text = ["--data", str(files / "text.txt")]
    out = tmp_path / "out"
    no_tokenizer = tmp_path / "no-tokenizer"
    _llama(320).save_pretrained(no_tokenizer)
    for command in (["importance", f"hf:{no_tokenizer}", *text, "--out", str(out)],
                    ["eval", f"hf:{no_tokenizer}", *text]):  # fmt: skip
        _bad(command, capsys, f"hf:{no_tokenizer} has no tokenizer files (tokenizer.json or")
    _bad(["supernet-train", parent, *text, "--out", str(out)], capsys, "GPT parents only")
    _bad(["supernet-train", parent, *text, "--out", str(out)], capsys, "GPU-scale run")
    _bad(["prune", parent, "--params-fraction", "0.5", "--out", str(out)], capsys, "GPT parents")
    _bad(["search", parent, *text, "--space", "layerwise"], capsys, "use --space uniform")
    _bad(["eval", parent, *text, "--block-size", "65"], capsys, "--block-size must be in 2..64")
    _bad(["eval", "gpt-parent", *text, "--block-size", "16"], capsys, "--block-size is for hf:")
    short = tmp_path / "short.txt"
    short.write_text("def f(x): return x\n")
    _bad(["importance", parent, "--data", str(short), *BLOCK, "--out", str(out)], capsys, "block")
    small_vocabulary = tmp_path / "small-vocabulary"
    _llama(100).save_pretrained(small_vocabulary)
    AutoTokenizer.from_pretrained(files / "parent").save_pretrained(small_vocabulary)
    _bad(["eval", f"hf:{small_vocabulary}", *text], capsys, "has 320 tokens but the model's")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "no-tokenizer", "short.txt", "small-vocabulary"
    ]  # fmt: skip
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("x")
    sub = json.dumps({"embed": 16, "layers": [0], "heads": [2], "mlp": [16]})
    for command in (["importance", parent, *text, "--out", str(taken)],
                    ["extract", parent, "--sub", sub, "--out", str(taken)]):  # fmt: skip
        _bad(command, capsys, "is not an empty folder")
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]


@pytest.mark.slow  # a fresh interpreter, so that nothing has imported transformers yet
def test_the_command_line_imports_transformers_only_for_hf_models():
    code = "import sys, autofm.compress.cli; sys.exit('transformers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
