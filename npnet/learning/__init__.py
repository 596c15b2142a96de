"""The learning framework behind golden noise: everything between a user's diffusion model and a trained
NPNet, host-free (torch, numpy, safetensors; matplotlib only inside `evaluation.chart`).

- `dataset`: the noise prompt dataset (NPD) format, shards written atomically and read checked.
- `redenoise`: re-denoise sampling (one denoise step, one inversion step) over any model's sampling.
- `collection`: which samples to make, shards shared by several servers, resuming (`collect`).
- `evaluation`: golden against plain noise, paired statistics, rows streamed to CSV (`run`).
- `recipe`: the pair recipe every host shares, batched (`PairHost`, `make_pairs`, `score_jobs`), the
  dataset's record and the authors' preset.
- `reward_training`: `train_on_reward`, golden noise trained on the reward itself (Noise Hypernetworks).
- `runs` and `train`: `python -m npnet.train` (one process or torchrun), runs that cannot be mixed.

Inference-only users never import this package: `import npnet` does not.
"""

from .clip_conversion import convert_file as convert_open_clip_checkpoint
from .collection import (
    DatasetWriter,
    Pair,
    Plan,
    Sample,
    check_dataset_name,
    collect,
    plan,
    prompts_fingerprint,
    read_prompt_file,
    read_prompts,
    summary,
)
from .dataset import DatasetError, NoisePromptDataset, write_shard
from .evaluation import (
    Job,
    PairScore,
    ResultFiles,
    Summary,
    bootstrap_interval,
    describe,
    jobs,
    per_prompt,
    read_csv,
    result_suffixes,
    run_evaluation,
    summarise,
)
from .evaluation import chart as evaluation_chart
from .recipe import (
    LAST_STEPS,
    PRESETS,
    PROMPT_TOKENS,
    PairHost,
    Reward,
    check_preset,
    checked_scores,
    dataset_record,
    job_scorer,
    make_pairs,
    pair_maker,
    preset_widgets,
    score_jobs,
)
from .redenoise import INVERSIONS, redenoise, redenoise_released, to_unit_noise
from .reward_training import ANCHORS, train_on_reward

__all__ = [
    "ANCHORS",
    "INVERSIONS",
    "LAST_STEPS",
    "PRESETS",
    "PROMPT_TOKENS",
    "PairHost",
    "Reward",
    "check_preset",
    "checked_scores",
    "dataset_record",
    "job_scorer",
    "make_pairs",
    "pair_maker",
    "preset_widgets",
    "score_jobs",
    "DatasetError",
    "DatasetWriter",
    "Job",
    "NoisePromptDataset",
    "Pair",
    "PairScore",
    "Plan",
    "ResultFiles",
    "Sample",
    "Summary",
    "bootstrap_interval",
    "check_dataset_name",
    "collect",
    "convert_open_clip_checkpoint",
    "describe",
    "evaluation_chart",
    "jobs",
    "per_prompt",
    "plan",
    "prompts_fingerprint",
    "read_csv",
    "read_prompt_file",
    "read_prompts",
    "redenoise",
    "redenoise_released",
    "result_suffixes",
    "run_evaluation",
    "summarise",
    "summary",
    "to_unit_noise",
    "train_on_reward",
    "write_shard",
]
