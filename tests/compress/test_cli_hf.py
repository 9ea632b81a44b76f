"""`autofm compress` on a Hugging Face Llama folder (`hf:DIR`), the path a user with real weights
runs: a random tiny `LlamaForCausalLM` saved with a byte-level BPE tokenizer trained here, taken
through importance → search → extract → eval from the command line; bits per byte checked
against transformers' own loss; the refusals in one line with exit code 2 and nothing written."""

import json
import math
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from autofm.cli import main
from autofm.compress import SubNetwork
from autofm.compress.hf_extract import extract_llama, load_hf_parent
from autofm.compress.hf_supernet import LlamaShape, LlamaTrainee
from autofm.compress.hf_text import bits_per_byte, token_split, train_byte_bpe
from autofm.lm.training import evaluate

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


TINY_CONFIG = dict(
    vocab_size=320,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    initializer_range=0.2,  # logits far from uniform, so a wrong slice shows
)


def _llama(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**{**TINY_CONFIG, "vocab_size": vocab_size})).eval()


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


def _losses(directory, sub_of, ids):
    """Training loss of the full model and of `sub_of(shape)` of the super-network in `directory`
    on the token blocks `ids`."""
    supernet, _ = load_hf_parent(directory)
    with torch.no_grad():
        full = supernet(ids[:, :-1], None, ids[:, 1:])[1]
        sub = supernet(ids[:, :-1], sub_of(supernet.space()), ids[:, 1:])[1]
    return float(full), float(sub)


def test_an_hf_llama_is_trained_as_a_supernet_then_pruned_and_extracted_with_recovery(
    files, tmp_path, capsys
):
    parent_dir = files / "parent"
    parent = LlamaForCausalLM.from_pretrained(parent_dir, local_files_only=True).eval()
    text = files / "text.txt"
    tokenizer = AutoTokenizer.from_pretrained(parent_dir, local_files_only=True)
    train_tokens, valid_tokens = token_split(tokenizer, text, 0.05)
    starts = np.linspace(0, len(train_tokens) - 18, 16).astype(int)
    blocks = torch.from_numpy(np.stack([train_tokens[s : s + 17] for s in starts])).long()
    data = ["--data", str(text), *BLOCK, "--seed", "0"]

    trained = tmp_path / "trained"
    code, out, _ = run(
        ["supernet-train", f"hf:{parent_dir}", *data, "--tokens", "6000", "--batch-size", "4",
         "--lr", "3e-3", "--random-samples", "1", "--run-dir", str(tmp_path / "run"),
         "--out", str(trained)],
        capsys,
    )  # fmt: skip
    assert code == 0 and out["complete"] and out["steps"] == -(-6000 // 64)
    assert out["supernet"]["space"] == "uniform" and out["sub_network_passes_per_step"] == 3
    reloaded = LlamaForCausalLM.from_pretrained(trained, local_files_only=True)
    assert reloaded.num_parameters() == parent.num_parameters()
    assert (trained / "tokenizer.json").is_file()
    saved = json.loads((trained / "autofm_supernet.json").read_text())
    assert saved["layer_order"] == [0, 1, 2] and saved["trained"]["tokens"] == out["tokens"]
    # sandwich training taught the smallest sub-network, not only the full model
    full_before, small_before = _losses(parent_dir, lambda space: space.smallest(), blocks)
    full_after, small_after = _losses(trained, lambda space: space.smallest(), blocks)
    assert full_after < 0.8 * full_before and small_after < 0.8 * small_before

    pruned = tmp_path / "pruned"
    code, out, _ = run(
        ["prune", f"hf:{trained}", *data, "--method", "magnitude", "--params-fraction", "0.5",
         "--recover-tokens", "3000", "--out", str(pruned)],
        capsys,
    )  # fmt: skip
    assert code == 0 and out["method"] == "magnitude" and out["recover_tokens"] == 3000
    model = LlamaForCausalLM.from_pretrained(pruned, local_files_only=True)
    assert model.num_parameters() == out["params"]
    assert out["params_fraction"] == pytest.approx(out["params"] / parent.num_parameters())
    assert 0.25 < out["params_fraction"] < 0.75  # the nearest shape on this tiny model's grid
    assert json.loads((pruned / "autofm_compress.json").read_text())["val_loss"] == out["val_loss"]
    # recovery lowered the held-out loss of the pruned model (measured as the loop measures it)
    code, plain, _ = run(
        ["prune", f"hf:{trained}", *data, "--method", "magnitude", "--params-fraction", "0.5",
         "--recover-tokens", "0", "--out", str(tmp_path / "plain")],
        capsys,
    )  # fmt: skip
    assert code == 0 and plain["sub_network"] == out["sub_network"] and "val_loss" not in plain
    unrecovered = LlamaForCausalLM.from_pretrained(tmp_path / "plain", local_files_only=True)
    shape = replace(LlamaShape.from_config(unrecovered.config), block_size=16)
    assert out["val_loss"] < evaluate(LlamaTrainee(unrecovered, shape), valid_tokens)

    sub = json.dumps({"embed": 16, "layers": [0, 2], "heads": [2, 2], "mlp": [24, 24]})
    extracted = tmp_path / "extracted"
    code, out, _ = run(
        ["extract", f"hf:{trained}", "--sub", sub, *data, "--recover-tokens", "2000",
         "--out", str(extracted)],
        capsys,
    )  # fmt: skip
    assert code == 0 and out["recover_tokens"] == 2000 and out["val_loss"] > 0
    recovered = LlamaForCausalLM.from_pretrained(extracted, local_files_only=True)
    sliced = extract_llama(load_hf_parent(trained)[0], SubNetwork.from_dict(json.loads(sub)))
    assert recovered.num_parameters() == sliced.num_parameters() == out["params"]
    assert not recovered.model.embed_tokens.weight.equal(sliced.model.embed_tokens.weight)


def test_a_stopped_hf_supernet_run_is_continued_by_rerunning_the_same_command(
    files, tmp_path, capsys
):
    from safetensors.torch import load_file

    command = ["supernet-train", f"hf:{files / 'parent'}", "--data", str(files / "text.txt"),
               *BLOCK, "--tokens", "1280", "--batch-size", "4", "--random-samples", "1"]  # fmt: skip
    code, whole, _ = run([*command, "--out", str(tmp_path / "whole")], capsys)
    assert code == 0 and whole["complete"]
    resumed = [*command, "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "resumed")]
    code, out, _ = run([*resumed, "--max-seconds", "0"], capsys)  # stops after its first step
    assert code == 0 and not out["complete"] and out["steps"] == 1 and out["tokens"] == 4 * 16
    code, out, _ = run(resumed, capsys)  # the same command again: continues, replaces --out
    assert code == 0 and out["complete"] and out["steps"] == whole["steps"] == 20
    weights = [load_file(tmp_path / name / "model.safetensors") for name in ("whole", "resumed")]
    assert weights[0].keys() == weights[1].keys()
    assert all(weights[0][key].equal(weights[1][key]) for key in weights[0])
    # a finished run's folder, or one of another run, is not replaced
    _bad(resumed, capsys, "already holds this run's finished super-network; nothing to do")
    again = [*command, "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "whole")]
    _bad(again, capsys, "is not an empty folder")
    stopped = [*command, "--run-dir", str(tmp_path / "run2"), "--out", str(tmp_path / "stopped")]
    code, out, _ = run([*stopped, "--max-seconds", "0"], capsys)
    assert code == 0 and not out["complete"]
    for other in (["--run-dir", str(tmp_path / "run3")], ["--lr", "1e-3"], ["--seed", "1"],
                  ["--strategy", "random"], ["--data", str(files / "parent" / "tokenizer.json")]):  # fmt: skip
        changed = [*stopped, *other]
        if other[0] == "--run-dir":  # the same command but for another run folder
            changed = [*command, *other, "--out", str(tmp_path / "stopped")]
        _bad(changed, capsys, "is not an empty folder")
    # the same text under another name is the same run; other text or another parent is not
    copy = tmp_path / "copy.txt"
    copy.write_bytes((files / "text.txt").read_bytes())
    code, out, _ = run([*stopped[:2], "--data", str(copy), *stopped[4:], "--max-seconds", "0"],
                       capsys)  # fmt: skip
    assert code == 0 and out["steps"] == 2
    elsewhere = ["--run-dir", str(tmp_path / "run2"), "--out", str(tmp_path / "elsewhere")]
    other_text = ["--data", str(files / "parent" / "tokenizer.json")]
    _bad([*command, *other_text, *elsewhere], capsys, "another model or settings (['data']: data {")
    sorted_parent = tmp_path / "sorted-parent"
    code, _, _ = run(["importance", f"hf:{files / 'parent'}", "--data", str(files / "text.txt"),
                      *BLOCK, "--batches", "2", "--out", str(sorted_parent)], capsys)  # fmt: skip
    other_model = [command[0], f"hf:{sorted_parent}", *command[2:]]
    _bad([*other_model, *elsewhere], capsys, "(['model']: model \"hf:")
    assert not (tmp_path / "elsewhere").exists()


def test_training_runs_in_float32_and_puts_the_model_back_in_its_precision():
    from autofm.compress.cli_hf import _in_float32

    plain = LlamaForCausalLM(LlamaConfig(**TINY_CONFIG)).to(torch.bfloat16)
    tied = LlamaForCausalLM(LlamaConfig(**TINY_CONFIG, tie_word_embeddings=True)).half()
    for model, dtype in ((plain, torch.bfloat16), (tied, torch.float16)):
        with _in_float32(model):
            assert {p.dtype for p in model.parameters()} == {torch.float32} and model.training
        assert {p.dtype for p in model.parameters()} == {dtype} and not model.training
    assert tied.lm_head.weight is tied.model.embed_tokens.weight


def test_a_half_precision_model_trains_in_float32_and_is_saved_in_its_precision(
    files, tmp_path, capsys
):
    half = tmp_path / "half"
    LlamaForCausalLM.from_pretrained(files / "parent").to(torch.bfloat16).save_pretrained(half)
    AutoTokenizer.from_pretrained(files / "parent").save_pretrained(half)
    code, out, _ = run(
        ["prune", f"hf:{half}", "--data", str(files / "text.txt"), *BLOCK, "--params-fraction",
         "0.6", "--recover-tokens", "640", "--out", str(tmp_path / "pruned")],
        capsys,
    )  # fmt: skip
    assert code == 0 and math.isfinite(out["val_loss"])
    model = LlamaForCausalLM.from_pretrained(tmp_path / "pruned", dtype="auto")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


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
    try:
        code = main(["compress", *args])
    except SystemExit as exit:  # refused by the argument parser
        code = exit.code
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
    layerwise = ["--space", "layerwise", "--out", str(out)]
    _bad(["supernet-train", parent, *text, *layerwise], capsys, "use --space uniform")
    fraction = ["--params-fraction", "1.5", "--out", str(out)]
    _bad(["prune", parent, *text, *BLOCK, *fraction], capsys, "params_fraction must be in (0, 1]")
    _bad(["prune", "gpt-parent", *text, *BLOCK, *fraction], capsys, "--block-size is for hf:")
    missing = ["--data", str(tmp_path / "missing.txt"), "--out", str(out)]
    _bad(["prune", parent, "--params-fraction", "0.5", *missing], capsys, "missing.txt")
    sub = json.dumps({"embed": 16, "layers": [0], "heads": [2], "mlp": [16]})
    recover = ["--sub", sub, "--recover-tokens", "64", *missing]
    _bad(["extract", parent, *recover], capsys, "missing.txt")
    _bad(["extract", parent, *recover[:-4], *text, "--block-size", "99", "--out", str(out)],
         capsys, "--block-size must be in 2..64")  # fmt: skip
    _bad(["search", parent, *text, "--space", "layerwise"], capsys, "use --space uniform")
    _bad(["eval", parent, *text, "--block-size", "65"], capsys, "--block-size must be in 2..64")
    _bad(["eval", parent, *text, "--blocks", "0"], capsys, "--blocks")
    _bad(["prune", parent, *text, "--params-fraction", "0.01", "--out", str(out)], capsys,
         "below the smallest uniform shrink")  # fmt: skip
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
    for command in (["importance", parent, *text, "--out", str(taken)],
                    ["extract", parent, "--sub", sub, "--out", str(taken)],
                    ["supernet-train", parent, *text, "--out", str(taken)],
                    ["prune", parent, *text, "--params-fraction", "0.5", "--out", str(taken)]):  # fmt: skip
        _bad(command, capsys, "is not an empty folder")
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]


@pytest.mark.slow  # a fresh interpreter, so that nothing has imported transformers yet
def test_the_command_line_imports_transformers_only_for_hf_models():
    code = "import sys, autofm.compress.cli; sys.exit('transformers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
