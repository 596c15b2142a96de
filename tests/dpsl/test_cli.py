"""`python -m dpsl` end to end in a subprocess: output keys, CSV, and exit codes for invalid parameters."""

from __future__ import annotations

import csv
import io

import pytest

COMMON_KEYS = {
    "checkpoints",
    "llr_mean",
    "llr_quantiles",
    "first_correct_action_mean",
    "first_correct_report_mean",
    "wrong_actions_mean",
    "wrong_reports_mean",
    "theory",
}
BINARY_KEYS = {"p_correct_cascade", "cascade_threshold", "reports_before_cascade_mean"}


def test_simulate_gaussian_json_keys(cli_json):
    d = cli_json(
        "simulate",
        "--signal",
        "gaussian",
        "--sigma",
        "1",
        "--mechanism",
        "smooth",
        "--epsilon",
        "1",
        "--agents",
        "100",
        "--runs",
        "200",
        "--seed",
        "0",
        "--checkpoints",
        "10,100",
        "--json",
    )
    assert COMMON_KEYS <= d.keys()
    assert d["checkpoints"] == [10, 100]
    assert len(d["llr_mean"]) == 2 and set(d["llr_quantiles"]) == {"0.1", "0.5", "0.9"}
    assert all(len(v) == 2 for v in d["llr_quantiles"].values())
    assert d["llr_quantiles"]["0.1"][1] <= d["llr_mean"][1] <= d["llr_quantiles"]["0.9"][1]
    assert len(d["theory"]["llr_mean"]) == 2  # the asymptote at the same checkpoints
    assert d["scenario"]["epsilon"] == 1.0 and d["runs"] == 200


def test_simulate_binary_json_keys_and_theory_under_the_same_names(cli_json):
    d = cli_json(
        "simulate",
        "--signal",
        "binary",
        "--p",
        "0.7",
        "--mechanism",
        "rr",
        "--epsilon",
        "1",
        "--agents",
        "200",
        "--runs",
        "500",
        "--json",
    )
    assert COMMON_KEYS | BINARY_KEYS <= d.keys()
    assert BINARY_KEYS <= d["theory"].keys()
    assert d["cascade_threshold"] == d["theory"]["cascade_threshold"] == 3


def test_simulate_csv_has_one_row_per_checkpoint(run_cli):
    code, out, err = run_cli(
        "simulate", "--epsilon", "0.5", "--agents", "50", "--runs", "100", "--checkpoints", "1,10,50", "--csv"
    )
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:3] == ["checkpoint", "llr_mean", "llr_se"]
    assert [r[0] for r in rows[1:]] == ["1", "10", "50"]


def test_theory_and_sweep(cli_json, run_cli):
    d = cli_json("theory", "--signal", "binary", "--p", "0.9", "--mechanism", "rr", "--epsilon", "0.5")
    assert d["theory"]["cascade_threshold"] == 6
    assert d["theory"]["p_correct_cascade"] == pytest.approx(
        0.9154, abs=1e-4
    )  # docs/dpsl-model.md §6.1 spot value
    s = cli_json(
        "sweep",
        "--param",
        "epsilon",
        "--values",
        "0.5,1,2",
        "--signal",
        "binary",
        "--mechanism",
        "rr",
        "--agents",
        "100",
        "--runs",
        "300",
        "--json",
    )
    assert s["parameter"] == "epsilon" and s["values"] == [0.5, 1.0, 2.0]
    assert len(s["p_correct_cascade"]) == 3 and len(s["results"]) == 3
    code, out, err = run_cli(
        "sweep", "--param", "epsilon", "--values", "0.5,1", "--agents", "20", "--runs", "50", "--csv"
    )
    assert code == 0, err
    assert out.splitlines()[0].startswith("epsilon,first_correct_action_mean")


# The invalid parameters the issue lists, each through a real subprocess.
@pytest.mark.parametrize(
    "args, message",
    [
        (["--epsilon", "0"], "epsilon must be finite and > 0 for mechanism 'smooth'"),
        (
            ["--signal", "binary", "--mechanism", "rr", "--epsilon", "1", "--p", "1.2"],
            "p must be in the open interval (0.5, 1)",
        ),
        (["--sigma", "0", "--epsilon", "1"], "sigma must be finite and > 0"),
        (["--agents", "0", "--epsilon", "1"], "agents must be an integer >= 1"),
        (["--runs", "0", "--epsilon", "1"], "runs must be an integer >= 1"),
        (
            ["--signal", "binary", "--mechanism", "smooth", "--epsilon", "1"],
            "mechanism must be one of none, rr for binary",
        ),
    ],
)
def test_invalid_parameters_exit_non_zero_naming_the_parameter(run_cli, args, message):
    code, out, err = run_cli("simulate", *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err


# The rest in-process (same code path, without a Python start-up each).
@pytest.mark.parametrize(
    "args, message",
    [
        (["--epsilon", "-1", "--mechanism", "rr"], "epsilon must be finite and > 0 for mechanism 'rr'"),
        (["--mechanism", "smooth"], "epsilon must be given (> 0) for mechanism 'smooth'"),
        (
            ["--signal", "binary", "--mechanism", "none", "--p", "0.5"],
            "p must be in the open interval (0.5, 1)",
        ),
        (
            ["--mechanism", "laplace", "--epsilon", "1"],
            "mechanism must be one of none, rr, smooth for gaussian",
        ),
        (["--epsilon", "1", "--checkpoints", "0,10"], "checkpoints must be integers in [1, agents=1000]"),
        (["--epsilon", "1", "--epsilon-uniform", "0", "1"], "either --epsilon or --epsilon-uniform"),
        (["--epsilon-uniform", "1", "0"], "epsilon high must be finite and > low"),
    ],
)
def test_invalid_parameters_in_process(capsys, args, message):
    from dpsl.cli import main

    assert main(["simulate", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_malformed_numbers_are_rejected_by_the_parser(run_cli):
    code, _, err = run_cli("simulate", "--sigma", "abc")
    assert code == 2 and "--sigma" in err
