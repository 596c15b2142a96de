"""`python -m dpsl` end to end in a subprocess: output keys, CSV, and exit codes for invalid parameters."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys

import pytest

from tests.support import REPO_ROOT

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


def _without_timing(payload: dict) -> dict:
    """The JSON less what the clock decides (elapsed time and the speed derived from it)."""
    if isinstance(payload, dict):
        return {
            k: _without_timing(v) for k, v in payload.items() if k not in ("elapsed_s", "agent_steps_per_s")
        }
    if isinstance(payload, list):
        return [_without_timing(v) for v in payload]
    return payload


@pytest.mark.parametrize(
    "args",
    [
        [
            "simulate",
            "--epsilon",
            "1",
            "--agents",
            "30",
            "--runs",
            "40000",
            "--belief-threshold",
            "3",
            "--per-run",
        ],
        [
            "sweep",
            "--signal-model",
            "binary",
            "--signal-accuracy",
            "0.6",
            "--mechanism",
            "rr",
            "--agents",
            "40",
            "--runs",
            "33000",
            "--param",
            "epsilon",
            "--values",
            "0.5,1",
        ],
    ],
    ids=["simulate", "sweep"],
)
def test_torchrun_with_two_processes_gives_the_single_process_json(tmp_path, args):
    """Runs are split by whole RNG blocks over the ranks and summed back: the output is exactly equal."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    common = [*args, "--seed", "7", "--json"]  # the default chunk plan: two chunks, one per rank
    single = subprocess.run(
        [sys.executable, "-m", "dpsl", *common, "--out", str(tmp_path / "one.json")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    double = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node=2",
            "-m",
            "dpsl",
            *common,
            "--out",
            str(tmp_path / "two.json"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert double.returncode == 0, double.stderr[-3000:]
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert _without_timing(one) == _without_timing(two)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--epsilon", "0.01"], None),
        (["--epsilon", "1e-300"], None),
        (["--epsilon", "1", "--device", "tpu"], "device must be"),
        (["--epsilon", "1", "--device", "cuda:abc"], "device must be"),
        (["--epsilon", "1", "--out", "/nonexistent/dir/x.json"], "--out"),
        (["--epsilon", "1", "--out", "."], "--out"),
    ],
)
def test_user_errors_exit_2_with_one_error_line_and_no_traceback(extra, message):
    done = subprocess.run(
        [sys.executable, "-m", "dpsl", "simulate", "--agents", "10", "--runs", "10", *extra],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    if message is None:  # extreme but valid budgets simulate; their closed forms are reported as null
        assert done.returncode == 0 and json.loads(done.stdout)["scenario"]["agents"] == 10
    else:
        assert done.returncode == 2
        assert done.stderr.startswith("error: ") and message in done.stderr and done.stderr.count("\n") == 1


def test_a_full_disk_leaves_the_previous_out_file_whole(tmp_path):
    """The write fails part-way (a file-size limit stands in for a full disk: the same EFBIG/ENOSPC
    OSError from write): the previous --out file stays as it was and no temporary file is left."""
    import resource
    import signal

    out = tmp_path / "result.json"
    out.write_text('{"previous": true}\n')

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dpsl",
            "simulate",
            "--agents",
            "50",
            "--runs",
            "20",
            "--per-run",
            "--json",
            "--out",
            str(out),
            "--epsilon",
            "1",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=small_files,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 2 and "error: --out" in done.stderr, done.stderr[-2000:]
    assert out.read_text() == '{"previous": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


NONE_SWEEP_WORDS = "mechanism is 'none' (non-private): an epsilon sweep needs mechanism smooth or rr"


def test_an_epsilon_sweep_without_a_mechanism_is_refused_by_the_cli_and_the_api(run_cli):
    """The rule lives in dpsl: the CLI, the Python API and the ComfyUI node refuse it in the same words
    (the node's side is tests/dpsl_lab/test_nodes.py)."""
    code, out, err = run_cli(
        "sweep",
        "--signal",
        "binary",
        "--p",
        "0.7",
        "--mechanism",
        "none",
        "--param",
        "epsilon",
        "--values",
        "0.5,1",
        "--agents",
        "10",
        "--runs",
        "5",
    )
    assert code == 2 and out == "" and err.startswith("error: ") and NONE_SWEEP_WORDS in err
    from dpsl import Scenario, ScenarioError
    from dpsl.sweep import sweep

    with pytest.raises(ScenarioError, match=re.escape(NONE_SWEEP_WORDS)):
        sweep(Scenario(signal="binary", p=0.7, mechanism="none", agents=10, runs=5), "epsilon", [0.5, 1.0])
