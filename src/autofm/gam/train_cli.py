"""`python -m autofm.gam.train_cli`: train a GAMformer preset in the background (resumable)."""

from __future__ import annotations

import argparse
import sys

from autofm.gam.training import PRESETS, train_gamformer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--run-dir", default="runs/gam-train")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output", default=None, help="checkpoint stem to ship the weights to")
    parser.add_argument("--init", default=None, help="warm-start from this checkpoint (name/path)")
    parser.add_argument("--lr", type=float, default=None, help="override the preset's peak lr")
    parser.add_argument("--warmup-steps", type=int, default=None)
    parser.add_argument(
        "--time-schedule", action="store_true", help="warmup + cosine over --max-seconds"
    )
    args = parser.parse_args(argv)
    result = train_gamformer(
        args.preset,
        args.run_dir,
        steps=args.steps,
        max_seconds=args.max_seconds,
        seed=args.seed,
        device=args.device,
        output=args.output,
        init=args.init,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        time_schedule=args.time_schedule,
    )
    print(f"trained {result.steps_done} steps in {result.seconds:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
