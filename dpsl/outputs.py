"""The host-side outputs of a simulation: per-run arrays filled chunk by chunk, summed across ranks."""

from __future__ import annotations

import threading

import numpy as np
import torch

from .results import PER_RUN, Result
from .scenario import Scenario


class Outputs:
    """Host-side per-run outputs, filled chunk by chunk (disjoint slices; shared sums under a lock)."""

    # Everything a rank fills for its runs (zeros elsewhere), summed across ranks.
    SUMMED = ("llr_checkpoints", *PER_RUN, "action_correct", "report_correct", "paths")

    def __init__(self, scenario: Scenario, zeroed: bool = False):
        runs, c = scenario.runs, len(scenario.resolved_checkpoints)
        new = np.zeros if zeroed else np.empty  # zeros where another rank fills the runs
        self.scenario = scenario
        self.llr_checkpoints = new((runs, c))
        self.llr_final = new(runs)
        self.first_correct_action = new(runs, dtype=np.int64)
        self.first_correct_report = new(runs, dtype=np.int64)
        self.wrong_actions = new(runs, dtype=np.int64)
        self.wrong_reports = new(runs, dtype=np.int64)
        self.action_correct = np.zeros(c, dtype=np.int64)
        self.report_correct = np.zeros(c, dtype=np.int64)
        binary = scenario.signal == "binary"
        self.cascade_time = new(runs, dtype=np.int64) if binary else None
        self.cascade_side = new(runs, dtype=np.int8) if binary else None
        self.belief_stop_time = new(runs, dtype=np.int64) if scenario.belief_threshold is not None else None
        self.paths = new((runs, scenario.agents + 1)) if scenario.keep_paths else None
        self.lock = threading.Lock()

    def sum_across_ranks(self, dev: torch.device) -> None:
        """All-reduce every output; NCCL reduces on the rank's GPU, gloo on the CPU."""
        where = dev if torch.distributed.get_backend() == "nccl" else torch.device("cpu")
        for name in self.SUMMED:
            array = getattr(self, name)
            if array is None:
                continue
            wide = torch.from_numpy(array.astype(np.int64) if array.dtype == np.int8 else array).to(where)
            torch.distributed.all_reduce(wide)
            setattr(self, name, wide.cpu().numpy().astype(array.dtype))

    def to_result(self, device: str, elapsed: float) -> Result:
        return Result(
            scenario=self.scenario,
            checkpoints=np.asarray(self.scenario.resolved_checkpoints, dtype=np.int64),
            llr_checkpoints=self.llr_checkpoints,
            action_correct_rate=self.action_correct / self.scenario.runs,
            report_correct_rate=self.report_correct / self.scenario.runs,
            **{name: getattr(self, name) for name in PER_RUN},
            paths=self.paths,
            device=device,
            elapsed_s=elapsed,
        )
