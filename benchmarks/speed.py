"""Each system's main operation timed beside its anchor, in one run on one machine.

Rows (each: our seconds, the anchor's seconds, their ratio, and what bounds our time):
- the command line: `autofm --version` / `--help` against a bare `python -c pass`;
- greedy ensemble selection (50 rounds, M=200 models, N=20,000 samples, C=10 classes, NLL)
  against the irreducible work, one `log` over the N×M true-class probabilities per round;
- Mamba4Cast forecasting whole datasets against statsforecast's AutoETS (one core each);
- PFN inference (tasks/s) and μP GPT training (tokens/s) against plain PyTorch models of the
  same size (`nn.TransformerEncoder`; the same GPT stepped by a bare AdamW loop);
- GAMformer fit + predict against interpret's EBM (CPU seconds, 500 and 10,000 rows × 60);
- ManyFairHPO trials per minute (random forest on COMPAS) and the speed-up of 2 worker
  processes over 1 on one study.

Every timing is the median of SPEED_REPEATS runs after one warm-up run (the forecast rows: 3 of
ours, one of AutoETS, which is deterministic and minutes long); run it on an otherwise
idle machine (`make bench-speed`). Writes benchmarks/results/speed.{json,md}. SPEED_ONLY=name,...
runs a subset of the sections (cli, greedy, forecast, pfn, lm, gam, fairness); the other
sections' rows are kept from the last results, each with the date it was measured.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from benchmarks.common import RESULTS_DIR, markdown_table, save_results

REPEATS = int(os.environ.get("SPEED_REPEATS", "5"))
ONLY = [s for s in os.environ.get("SPEED_ONLY", "").split(",") if s]
FORECAST_DATASETS = ("m3_yearly", "m3_quarterly", "m3_monthly", "tourism_yearly")
SEED = 0


def median_seconds(run: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median wall seconds of `repeats` calls of `run`, after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def row(operation: str, ours: float, anchor: str, anchor_s: float, bound: str, **extra) -> dict:
    """One table row; `ratio` is anchor time / our time (above 1: we are faster)."""
    return {
        "operation": operation,
        "ours s": ours,
        "anchor": anchor,
        "anchor s": anchor_s,
        "ratio": anchor_s / ours,
        "bound": bound,
        **extra,
    }


def cli_rows() -> list[dict]:
    """`autofm --version` and `--help` in a fresh process against the interpreter's start-up."""
    autofm = shutil.which("autofm") or sys.exit("the autofm command is not on PATH")

    def command(*args: str) -> Callable[[], object]:
        return lambda: subprocess.run(args, capture_output=True, check=True)

    bare = median_seconds(command(sys.executable, "-c", "pass"))
    return [
        row(
            f"autofm {flag}",
            median_seconds(command(autofm, flag)),
            "python -c pass",
            bare,
            "interpreter start-up + argparse; target ≤ 0.5 s",
            target_met=median_seconds(command(autofm, flag)) <= 0.5,
        )
        for flag in ("--version", "--help")
    ]


def greedy_rows() -> list[dict]:
    """Greedy selection on a random pool against 50 `log` passes over N×M probabilities."""
    from autofm.ensemble import GreedyEnsemble

    n, m, c, rounds = 20_000, 200, 10, 50
    rng = np.random.default_rng(SEED)
    logits = rng.normal(size=(n, m, c)).astype(np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, c, size=n)
    true_class = np.ascontiguousarray(probabilities[np.arange(n), :, labels])  # [N, M]

    ours = median_seconds(lambda: GreedyEnsemble(n_rounds=rounds).fit(probabilities, labels))
    numpy_logs = median_seconds(lambda: [np.log(true_class) for _ in range(rounds)])
    as_tensor = torch.from_numpy(true_class)
    torch_logs = median_seconds(lambda: [torch.log(as_tensor) for _ in range(rounds)])
    bound = (
        "compute: per round one log pass over the N×M true-class probabilities (the anchors) "
        f"plus the candidates' mean; {torch.get_num_threads()} threads; target < 0.5 s"
    )
    return [
        row("greedy 50 rounds, NLL (M=200, N=20k, C=10)", ours, "50 numpy log passes",
            numpy_logs, bound, target_met=ours < 0.5),
        row("greedy 50 rounds, NLL (M=200, N=20k, C=10)", ours, "50 torch log passes",
            torch_logs, bound, target_met=ours < 0.5),
    ]  # fmt: skip


def forecast_rows() -> list[dict]:
    """Whole datasets, Mamba4Cast (as shipped) vs AutoETS, one core each, same process."""
    from autofm.forecast import Mamba4CastForecaster
    from benchmarks.forecast import load_subset, run_anchor, warm_up_numba

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        forecaster = Mamba4CastForecaster.from_pretrained("mamba4cast-cpu")
        warm_up_numba()
        rows = []
        for name in FORECAST_DATASETS:
            context, _, meta = load_subset(name, 10**9)
            h = int(meta["horizon"])
            forecast = lambda c=context, h=h, f=meta["freq"]: forecaster.predict(c, h, freq=f)  # noqa: E731
            ours = median_seconds(forecast, 3)
            share = forward_share(forecast)
            _, ets = run_anchor("AutoETS", context, h, meta)  # deterministic: timed once
            target = 30 if name.endswith("monthly") else 10
            rows.append(
                row(
                    f"forecast {name} ({context['unique_id'].nunique()} series, h={h})",
                    ours,
                    "AutoETS (statsforecast)",
                    ets,
                    f"compute: the model's forward pass ≥ {share:.0%} of the time (profiled), "
                    f"the rest per-series preparation; 1 thread; target ≥ {target}×",
                    target_met=ets / ours >= target,
                )
            )
        return rows
    finally:
        torch.set_num_threads(threads)


def forward_share(forecast: Callable[[], object]) -> float:
    """The share of one `forecast()` call's time spent in Mamba4Cast's forward pass, under
    cProfile (which slows the Python-level preparation more than the torch kernels, so the
    share is a lower bound)."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.runcall(forecast)
    stats = pstats.Stats(profile).stats  # (file, line, function) -> (..., cumulative, callers)
    total = max(entry[3] for entry in stats.values())
    forward = max(
        entry[3]
        for (file, _, function), entry in stats.items()
        if file.endswith(os.path.join("forecast", "model.py")) and function == "forward"
    )
    return forward / total


def pfn_rows() -> list[dict]:
    """Tasks per second of the shipped GP PFN against a plain `nn.TransformerEncoder` of the
    same width, depth, heads and hidden size on the same number of tokens."""
    from autofm.icl import load_pfn
    from autofm.icl.pretrained import make_prior

    pfn, meta = load_pfn("gp")
    config = pfn.config
    batch_size, n_context, n_query = 256, config.max_context, 50
    batch = make_prior(meta["training"]["prior"]).sample(
        batch_size, n_context, n_query, config.n_features, torch.Generator().manual_seed(SEED)
    )
    layer = torch.nn.TransformerEncoderLayer(
        config.d_model, config.n_heads, config.d_hidden, dropout=0.0, batch_first=True,
        norm_first=True, activation="gelu",
    )  # fmt: skip
    plain = torch.nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False).eval()
    tokens = torch.randn(batch_size, n_context + n_query, config.d_model)
    with torch.inference_mode():
        ours = median_seconds(
            lambda: pfn.predict_logits(batch.x_context, batch.y_context, batch.x_query)
        )
        anchor = median_seconds(lambda: plain(tokens))
    return [
        row(
            f"PFN inference, {batch_size} tasks × {n_context}+{n_query} points",
            ours,
            "nn.TransformerEncoder, same size",
            anchor,
            f"compute; {batch_size / ours:.0f} tasks/s vs {batch_size / anchor:.0f}",
        )
    ]


def lm_rows(steps: int = 20) -> list[dict]:
    """Tokens per second of `autofm.lm.train` (μP GPT) against the same GPT stepped by a bare
    AdamW loop, and a plain-PyTorch GPT (`nn.TransformerEncoder`, causal) of the same size."""
    from autofm.data.text import encode, stdlib_corpus
    from autofm.lm import GPT, GPTConfig, TrainConfig, train

    config = GPTConfig(width=256, depth=4, head_size=32, block_size=128)
    batch_size = 16
    tokens = encode(stdlib_corpus(max_bytes=4_000_000))
    train_config = TrainConfig(lr=3e-3, batch_size=batch_size, tokens=steps * batch_size * 128)
    ours = median_seconds(lambda: train(GPT(config), tokens, None, train_config), 3)

    rng = np.random.default_rng(SEED)
    starts = rng.integers(0, len(tokens) - 129, size=(steps, batch_size))
    blocks = [torch.from_numpy(tokens[s[:, None] + np.arange(129)]).long() for s in starts]

    def bare_loop(model: torch.nn.Module, loss_of: Callable) -> Callable[[], object]:
        def run() -> None:
            optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
            for block in blocks:
                loss = loss_of(model, block)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

        return run

    same_gpt = median_seconds(bare_loop(GPT(config), lambda m, b: m(b[:, :-1], b[:, 1:])[1]), 3)
    plain = PlainGPT(config.vocab_size, config.width, config.depth, config.width // 32, 128)
    plain_s = median_seconds(bare_loop(plain, PlainGPT.loss), 3)
    n_tokens = steps * batch_size * 128
    bound = "compute (matmuls); " + f"{n_tokens / ours:.0f} tokens/s"
    return [
        row("μP GPT training (d256, 4 layers), train()", ours, "same GPT, bare AdamW loop",
            same_gpt, bound),
        row("μP GPT training (d256, 4 layers), train()", ours, "plain PyTorch GPT, same size",
            plain_s, bound),
    ]  # fmt: skip


class PlainGPT(torch.nn.Module):
    """A GPT from PyTorch's own layers (pre-norm, GELU, causal mask): the speed baseline."""

    def __init__(self, vocab: int, width: int, depth: int, heads: int, block_size: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.position = torch.nn.Embedding(block_size, width)
        layer = torch.nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True,
            activation="gelu",
        )  # fmt: skip
        self.blocks = torch.nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.head = torch.nn.Linear(width, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        time_steps = idx.shape[1]
        x = self.embed(idx) + self.position(torch.arange(time_steps))
        mask = torch.nn.Transformer.generate_square_subsequent_mask(time_steps)
        return self.head(self.blocks(x, mask=mask, is_causal=True))

    @staticmethod
    def loss(model: PlainGPT, block: torch.Tensor) -> torch.Tensor:
        logits = model(block[:, :-1])
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), block[:, 1:].flatten())


def gam_rows() -> list[dict]:
    """GAMformer fit + predict against EBM (CPU seconds, one torch thread; 60 features, about
    10% positives): benchmarks.gam.speed_rows."""
    from benchmarks.gam import speed_rows

    return [
        row(
            f"GAMformer fit+predict {r['rows']}×{r['features']} (CPU s)",
            r["ours_cpu_s"],
            "EBM (interactions=0, 64 bins, CPU s)",
            r["ebm_cpu_s"],
            f"forward passes; wall ratio {r['wall_ratio']:.1f}; target ≥ {r['target_ratio']:g}×",
            target_met=r["ratio"] >= r["target_ratio"],
        )
        for r in speed_rows(sizes=(500, 10_000), repeats=REPEATS)
    ]


def fairness_rows(n_trials: int = 60) -> list[dict]:
    """ManyFairHPO trials per minute (RF on COMPAS, 3 folds): one worker fitting folds one after
    another, one worker with folds in parallel (the default), and 2 workers of one fold each."""
    from benchmarks.fairness import trials_per_minute

    settings = {"1 worker, sequential folds": (1, 1), "1 worker, parallel folds": (None, 1),
                "2 workers, sequential folds": (1, 2)}  # fmt: skip
    rates = {
        name: trials_per_minute(n_trials=n_trials, n_jobs=n_jobs, workers=workers)
        for name, (n_jobs, workers) in settings.items()
    }
    base = rates["1 worker, sequential folds"]
    return [
        row(
            f"fair search, RF on COMPAS: {name}",
            60 / rate["trials_per_minute"],
            "1 worker, sequential folds (s per trial)",
            60 / base["trials_per_minute"],
            f"compute: the folds' random-forest fits; {rate['trials_per_minute']:.0f} "
            "trials/min; target 2 workers ≥ 1.7×",
            target_met=(60 / base["trials_per_minute"]) / (60 / rate["trials_per_minute"]) >= 1.7
            if name.startswith("2 workers")
            else None,
        )
        for name, rate in rates.items()
        if name != "1 worker, sequential folds"
    ]


SECTIONS: dict[str, Callable[[], list[dict]]] = {
    "cli": cli_rows,
    "greedy": greedy_rows,
    "forecast": forecast_rows,
    "pfn": pfn_rows,
    "lm": lm_rows,
    "gam": gam_rows,
    "fairness": fairness_rows,
}


# operation prefixes of each section, for rows written before rows carried their section
SECTION_PREFIXES = {
    "cli": "autofm --",
    "greedy": "greedy ",
    "forecast": "forecast ",
    "pfn": "PFN ",
    "lm": "μP ",
    "gam": "GAMformer ",
    "fairness": "fair search",
}


def section_of(row: dict) -> str | None:
    if "section" in row:
        return row["section"]
    return next((s for s, p in SECTION_PREFIXES.items() if row["operation"].startswith(p)), None)


def kept_rows(rerun: set[str]) -> list[dict]:
    """The last results' rows of the sections not rerun (with their measurement date)."""
    import json

    path = RESULTS_DIR / "speed.json"
    if not path.is_file():
        return []
    last = json.loads(path.read_text())
    environment = last.get("environment", {})
    measured = environment.get("date", "")[:10]
    return [
        {"measured": measured, "torch": environment.get("torch"), **row}
        for row in last.get("rows", [])
        if section_of(row) not in rerun
    ]


def main() -> None:
    unknown = sorted(set(ONLY) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"SPEED_ONLY names unknown sections {unknown}; known: {list(SECTIONS)}")
    torch.set_flush_denormal(True)
    rows = []
    for name, section in SECTIONS.items():
        if ONLY and name not in ONLY:
            continue
        print(f"timing {name} ...", file=sys.stderr, flush=True)
        today = time.strftime("%Y-%m-%d", time.gmtime())  # UTC, as the results' date
        rows.extend(
            {"section": name, "measured": today, "torch": torch.__version__, **r} for r in section()
        )
        print(markdown_table(rows[-1:], digits=3), file=sys.stderr, flush=True)
    if ONLY:
        fresh = rows
        rows = kept_rows(set(ONLY)) + fresh
        rows.sort(key=lambda r: list(SECTIONS).index(section_of(r) or "fairness"))
    columns = [
        "operation",
        "ours s",
        "anchor",
        "anchor s",
        "ratio",
        "bound",
        "target_met",
        "measured",
    ]
    markdown = (
        "# Speed: each system's main operation beside its anchor\n\n"
        f"Each row's two sides in one run on one machine ({os.cpu_count()} CPUs; the date of "
        f"the run in `measured`), median of {REPEATS} repeats after a warm-up (forecast rows: "
        "3 repeats of ours; AutoETS, deterministic and minutes long on M3 monthly, is timed "
        "once). ratio = anchor s / ours s (above 1: autofm is faster).\n\n"
        + markdown_table(rows, columns, digits=3)
    )
    save_results("speed", {"rows": rows, "repeats": REPEATS}, markdown, [SEED])


if __name__ == "__main__":
    main()
