"""Command line: python -m dpsl simulate|theory|sweep [scenario flags] [--json | --csv] [--out FILE].

Invalid parameters exit with status 2 and one line on stderr naming the parameter and its range.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys

import torch

from . import theory
from .engine import RunOptions, simulate
from .files import write_text_atomic
from .results import json_safe
from .scenario import AMPLITUDES, SIGNALS, Scenario, ScenarioError, scenario_from
from .sweep import SWEEPABLE, parse_values, sweep

EXIT_INVALID = 2


def _list_of(convert, flag: str):
    """An argparse type: a value list through the one parser (`sweep.parse_values`)."""

    def parse(text: str) -> tuple:
        try:
            return tuple(parse_values(text, flag, convert))
        except ScenarioError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parse


def _scenario_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scenario")
    # --signal-model and --signal-accuracy: the same flags under names torchrun's own parser cannot
    # claim (it takes --signal and --p as ambiguous prefixes of its --signals-to-handle, --print-...).
    g.add_argument(
        "--signal",
        "--signal-model",
        dest="signal",
        choices=SIGNALS,
        default="gaussian",
        help="signal model (default gaussian)",
    )
    g.add_argument("--sigma", type=float, default=1.0, help="Gaussian signal noise sigma > 0 (default 1)")
    g.add_argument(
        "--p",
        "--signal-accuracy",
        dest="p",
        type=float,
        default=0.7,
        help="binary signal accuracy in (0.5, 1) (default 0.7)",
    )
    g.add_argument(
        "--mechanism", default="smooth", help="none | rr | smooth (smooth is Gaussian only; default smooth)"
    )
    g.add_argument("--epsilon", type=float, default=None, help="homogeneous privacy budget eps > 0")
    g.add_argument(
        "--epsilon-uniform",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        default=None,
        help="heterogeneous budgets eps_n ~ U[LOW, HIGH] instead of --epsilon",
    )
    g.add_argument(
        "--amplitude",
        choices=AMPLITUDES,
        default="half",
        help="smooth RR amplitude A: half (1/2, default) or legacy (1/(1+e^eps))",
    )
    g.add_argument("--agents", type=int, default=1000, help="agents per run N >= 1 (default 1000)")
    g.add_argument("--runs", type=int, default=1000, help="independent runs R >= 1 (default 1000)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument(
        "--belief-threshold", type=float, default=None, help="B > 0 of the stopping time |l_n| >= B"
    )
    g.add_argument(
        "--checkpoints",
        type=_list_of(int, "--checkpoints"),
        default=None,
        help="comma-separated n in [1, agents] for the LLR summaries (default 1-2-5 per decade)",
    )
    g.add_argument(
        "--quantiles",
        type=_list_of(float, "--quantiles"),
        default=(0.1, 0.5, 0.9),
        help="comma-separated quantiles in [0, 1] (default 0.1,0.5,0.9)",
    )
    g.add_argument(
        "--quadrature-nodes",
        type=int,
        default=64,
        help="Gauss-Legendre nodes for heterogeneous budgets (default 64)",
    )


def _run_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("execution")
    g.add_argument("--device", default="cpu", help="cpu (default), cuda[:N] or auto")
    g.add_argument("--chunk-runs", type=int, default=None, help="runs per chunk (never changes results)")


def _output_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    fmt = g.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON on stdout (the default)")
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout")
    g.add_argument("--per-run", action="store_true", help="JSON: add the per-run arrays")
    g.add_argument("--out", default=None, help="write to this file instead of stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dpsl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="Monte Carlo simulation of one scenario")
    _scenario_flags(sim)
    _run_flags(sim)
    _output_flags(sim)
    th = sub.add_parser("theory", help="closed-form values for one scenario")
    _scenario_flags(th)
    _output_flags(th)
    sw = sub.add_parser("sweep", help="one scenario field over a list of values")
    _scenario_flags(sw)
    sw.add_argument("--param", required=True, choices=SWEEPABLE, help="the field to vary")
    sw.add_argument("--values", required=True, help="comma-separated values of --param")
    _run_flags(sw)
    _output_flags(sw)
    return parser


def scenario_from_args(args: argparse.Namespace, **overrides) -> Scenario:
    """The Scenario the flags describe; `overrides` replace fields before validation (sweeps)."""
    fields = dict(
        signal=args.signal,
        sigma=args.sigma,
        p=args.p,
        mechanism=args.mechanism,
        epsilon=args.epsilon,
        epsilon_uniform=args.epsilon_uniform,
        amplitude=args.amplitude,
        agents=args.agents,
        runs=args.runs,
        seed=args.seed,
        belief_threshold=args.belief_threshold,
        checkpoints=args.checkpoints,
        quantiles=tuple(args.quantiles),
        quadrature_nodes=args.quadrature_nodes,
    )
    if "epsilon" in overrides:  # a sweep over epsilon replaces whichever form the flags gave
        fields["epsilon_uniform"] = None
    fields.update(overrides)
    return scenario_from(**fields, names=("--epsilon", "--epsilon-uniform"))


def _sweep_values(param: str, text: str) -> list:
    convert = int if param in ("agents", "runs") else (str if param in ("amplitude", "mechanism") else float)
    return parse_values(text, f"values of {param}", convert)


def _theory_dict(scenario: Scenario) -> dict:
    return json_safe({"scenario": scenario.to_dict(), "theory": theory.summary(scenario)})


def _to_csv(rows: list[list]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _theory_csv(d: dict) -> list[list]:
    rows = [["key", "value"]]
    for k, v in d["theory"].items():
        rows.append([k, json.dumps(v) if isinstance(v, (list, dict)) else v])
    return rows


def _process_group(device: str) -> tuple[bool, str, int]:
    """Under torchrun (WORLD_SIZE > 1): join the group, gloo on the CPU or NCCL with one GPU per rank.
    Returns (distributed, this rank's device, rank)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False, device, 0
    import torch.distributed as dist

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return True, device, dist.get_rank()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.out and (
        os.path.isdir(args.out) or not os.path.isdir(os.path.dirname(os.path.abspath(args.out)))
    ):
        # Checked before the run, so a long simulation is not lost to a typo in the output path.
        print(f"error: --out {args.out}: not a file in an existing folder", file=sys.stderr)
        return EXIT_INVALID
    distributed, device, rank = _process_group(getattr(args, "device", "cpu") or "cpu")
    try:
        options = RunOptions(
            device=device, chunk_runs=getattr(args, "chunk_runs", None), distributed=distributed
        )
        if args.command == "sweep":
            values = _sweep_values(args.param, args.values)
            scenario = scenario_from_args(args, **({args.param: values[0]} if values else {}))
        else:
            scenario = scenario_from_args(args)
        if args.command == "simulate":
            result = simulate(scenario, options)
            payload = result.to_dict(per_run=args.per_run)
            rows = result.csv_rows
        elif args.command == "theory":
            payload = _theory_dict(scenario)
            rows = lambda: _theory_csv(payload)  # noqa: E731
        else:
            result = sweep(scenario, args.param, values, options)
            payload = result.to_dict(per_run=args.per_run)
            rows = result.csv_rows
    except ScenarioError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INVALID
    if rank != 0:
        return 0  # every rank holds the result; one writes it
    text = _to_csv(rows()) if args.csv else json.dumps(payload, indent=2) + "\n"
    if args.out:
        try:
            write_text_atomic(args.out, text)
        except OSError as err:
            print(f"error: --out {args.out}: {err.strerror or err}", file=sys.stderr)
            return EXIT_INVALID
    else:
        sys.stdout.write(text)
    return 0
