"""`autofm compress` end to end on a tiny parent, and its bad-input cases: one line, exit 2,
nothing half-written."""

import json

import pytest
import torch
from safetensors.torch import load_file

from autofm.cli import main
from autofm.core.checkpoint import save_model
from autofm.lm import GPT, GPTConfig, save_gpt

CONFIG = GPTConfig(width=32, depth=2, head_size=8, block_size=16, parametrization="sp")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compress-cli")
    save_gpt(folder / "parent", GPT(CONFIG, seed=0), {"note": "untrained"})
    text = folder / "text.txt"
    text.write_text("def f(x):\n    return x + 1\n" * 400)
    return folder


def run(args, capsys):
    code = main(["compress", *args, "--json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else None), captured.err


def test_the_whole_pipeline_from_the_command_line(files, capsys):
    data = ["--data", str(files / "text.txt")]
    code, out, _ = run(
        ["importance", str(files / "parent"), *data, "--out", str(files / "sorted")], capsys
    )
    assert code == 0 and sorted(out["layer_order"]) == [0, 1]
    sorted_stem = str(files / "sorted")
    code, out, _ = run(
        ["supernet-train", sorted_stem, *data, "--tokens", "2048", "--batch-size", "4",
         "--out", str(files / "super")],
        capsys,
    )  # fmt: skip
    assert code == 0 and out["complete"] and out["tokens"] >= 2048
    super_stem = str(files / "super")
    front = files / "front.json"
    code, out, _ = run(
        ["search", super_stem, *data, "--method", "random", "--trials", "6",
         "--run-dir", str(files / "study"), "--out", str(front), "--report", str(files / "s.html")],
        capsys,
    )  # fmt: skip
    assert code == 0 and out["n_trials"] == 6 and out["front"] and front.exists()
    assert "data:image/png" in (files / "s.html").read_text()
    code, out, _ = run(
        ["extract", super_stem, "--front", str(front), "--params-fraction", "0.7",
         "--out", str(files / "small")],
        capsys,
    )  # fmt: skip
    assert code == 0 and out["params"] <= 0.7 * GPT(CONFIG).n_parameters()
    assert out["recover_tokens"] == 0 and "val_loss" not in out
    code, recovered, _ = run(
        ["extract", super_stem, "--front", str(front), "--params-fraction", "0.7", *data,
         "--recover-tokens", "512", "--out", str(files / "small-recovered")],
        capsys,
    )  # fmt: skip
    assert code == 0 and recovered["recover_tokens"] == 512 and recovered["val_loss"] > 0
    assert recovered["sub_network"] == out["sub_network"]
    plain = load_file(str(files / "small.safetensors"))
    tuned = load_file(str(files / "small-recovered.safetensors"))
    assert plain.keys() == tuned.keys()
    assert any(not torch.equal(plain[k], tuned[k]) for k in plain)  # fine-tuned, same shapes
    _bad(
        ["extract", super_stem, "--front", str(front), "--latency-ms", "5",
         "--out", str(files / "fast")],
        capsys,
        "no measured latencies",
    )  # fmt: skip
    fast = files / "fast.json"
    code, out, _ = run(
        ["search", super_stem, *data, "--method", "random", "--trials", "4", "--size",
         "latency_ms", "--run-dir", str(files / "study"), "--out", str(fast)],
        capsys,
    )  # fmt: skip
    assert code == 0 and all(p["latency_ms"] > 0 for p in out["front"])
    slowest = max(p["latency_ms"] for p in out["front"])
    code, out, _ = run(
        ["extract", super_stem, "--front", str(fast), "--latency-ms", str(slowest),
         "--out", str(files / "fast")],
        capsys,
    )  # fmt: skip
    assert code == 0
    # the front was searched on the trained super-network: the sorted parent is refused
    _bad(
        ["extract", sorted_stem, "--front", str(front), "--params-fraction", "0.7",
         "--out", str(files / "wrong")],
        capsys,
        "other weights",
    )  # fmt: skip
    code, out, _ = run(["eval", str(files / "small"), *data], capsys)
    assert (
        code == 0
        and out["params"] == json.loads((files / "small.json").read_text())["n_parameters"]
    )
    assert out["bits_per_byte"] > 0 and out["latency_ms"] > 0
    code, out, _ = run(
        ["prune", str(files / "parent"), "--method", "magnitude", "--params-fraction", "0.5",
         *data, "--recover-tokens", "512", "--out", str(files / "pruned")],
        capsys,
    )  # fmt: skip
    assert code == 0 and out["params_fraction"] <= 0.55 and out["recover_tokens"] == 512
    assert out["val_loss"] > 0
    code, out, _ = run(["report", str(front), "--out", str(files / "r.html")], capsys)
    assert code == 0 and (files / "r.html").exists()


def test_a_command_group_without_a_command_exits_2(capsys):
    assert main(["compress"]) == 2
    assert "supernet-train" in capsys.readouterr().err


def _bad(args, capsys, match):
    code = main(["compress", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and match in err, err


def test_bad_inputs_exit_2_in_one_line(files, capsys, tmp_path):
    text = ["--data", str(files / "text.txt")]
    _bad(["eval", "no-such-model", *text], capsys, "no pretrained checkpoint named")
    _bad(["eval", "hf:", *text], capsys, "needs a path")
    other = tmp_path / "other"
    save_model(other, _Other(), training={})
    _bad(["eval", str(other), *text], capsys, "not a 'gpt' one")
    sub = json.dumps({"embed": 32, "layers": [0], "heads": [9], "mlp": [8]})
    out = tmp_path / "x"
    _bad(["extract", str(files / "parent"), "--sub", sub, "--out", str(out)], capsys, "9 heads")
    assert not list(tmp_path.glob("x*"))  # nothing half-written
    short = tmp_path / "short.txt"
    short.write_text("tiny")
    _bad(
        ["importance", str(files / "parent"), "--data", str(short), "--out", str(out)],
        capsys,
        "block",
    )
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _bad(
        ["importance", str(files / "parent"), *text, "--out", str(blocker / "m")],
        capsys,
        "cannot write",
    )
    _bad(
        ["search", str(files / "parent"), *text, "--trials", "2", "--storage", "nosuch://db"],
        capsys,
        "storage",
    )


class _Other(torch.nn.Module):
    checkpoint_kind = "pfn"

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 2)
        self.config = _Config()


class _Config:
    def to_dict(self):
        return {}


@pytest.mark.slow
def test_tour_step(tmp_path):
    from autofm.compress.tour import step

    result = step(tmp_path, seed=0)
    assert result.metrics["extracted_equals_slice"]
    assert result.metrics["chosen_params"] <= 0.5 * result.metrics["parent_params"]
    assert result.metrics["front_size"] >= 2


def test_the_command_line_choices_are_the_modules_own():
    from autofm.compress import AGGREGATIONS, METHODS, PRUNE_METHODS, SPACES, STRATEGIES
    from autofm.compress.cli import CHOICES
    from autofm.compress.objectives import QUALITY_OBJECTIVES, SIZE_OBJECTIVES
    from autofm.compress.training import SAMPLINGS

    assert CHOICES == {
        "aggregation": AGGREGATIONS,
        "strategy": STRATEGIES,
        "sampling": SAMPLINGS,
        "space": SPACES,
        "method": METHODS,
        "objective": QUALITY_OBJECTIVES,
        "size": SIZE_OBJECTIVES,
        "prune": PRUNE_METHODS,
    }


def test_a_sub_network_with_unknown_keys_is_explained(files, capsys, tmp_path):
    bad = json.dumps({"embed": 32, "depth": 2})
    _bad(
        ["extract", str(files / "parent"), "--sub", bad, "--out", str(tmp_path / "x")],
        capsys,
        "needs exactly the keys embed, layers, heads, mlp",
    )
