"""The learning nodes as ComfyUI runs them: graphs queued through the real server's /prompt, the example
workflows executed with their model loaders swapped for the test pack's tiny checkpoint and reward
(nothing else in them changes but sizes and counts), and collection shared by two real servers."""

from __future__ import annotations

import copy
import json
import shutil
import threading
from pathlib import Path

import pytest
from safetensors import safe_open

from dev.checkpoints import write_tiny_checkpoint
from dev.comfy_harness import ExecutionFailed, start_server
from dev.training_data import train_process
from npnet.learning.dataset import NoisePromptDataset
from tests.support import REPO_ROOT

pytestmark = pytest.mark.server

API_DIR = REPO_ROOT / "tests" / "api_workflows"
SMALL = {"width": 128, "height": 128, "steps": 3, "batch_size": 1}  # tests at other batches say so


def example(name: str, **changes) -> dict:
    """An example's API copy on the tiny models: CheckpointLoaderSimple -> GoldenNoiseTinyCheckpoint (the
    same three outputs in the same order), GoldenNoiseRewardLoader -> GoldenNoiseTinyReward; `changes`
    apply to every node that has those inputs."""
    prompt = json.loads((API_DIR / f"{name}.json").read_text(encoding="utf-8"))
    for node in prompt.values():
        if node["class_type"] == "CheckpointLoaderSimple":
            node.update(class_type="GoldenNoiseTinyCheckpoint", inputs={"family": "sd15", "seed": 0})
        elif node["class_type"] == "GoldenNoiseRewardLoader":
            node.update(class_type="GoldenNoiseTinyReward", inputs={"nan_from": 0})
        else:
            node["inputs"].update({k: v for k, v in changes.items() if k in node["inputs"]})
    return prompt


def node_of(prompt: dict, class_type: str) -> dict:
    return next(n for n in prompt.values() if n["class_type"] == class_type)


def ui_text(entry: dict, prompt: dict, class_type: str) -> str:
    nid = next(k for k, n in prompt.items() if n["class_type"] == class_type)
    return "".join(entry["outputs"][nid]["text"])


@pytest.fixture(scope="module")
def eval_net(comfy_server) -> str:
    """An NPNet for the tiny SD1.5 model at 128x128 (4x16x16 latents, 32-wide prompt states)."""
    write_tiny_checkpoint(comfy_server.models_dir / "golden_noise" / "server_eval_net.safetensors")
    return "server_eval_net.safetensors"


def evaluate_graph(weights: str, **changes) -> dict:
    prompt = example("golden_noise_evaluate_sdxl", **{**SMALL, "seeds": 2, **changes})
    node_of(prompt, "GoldenNoiseLoader")["inputs"]["weights"] = weights
    return prompt


def test_evaluate_finishes_on_the_server_and_writes_its_files(comfy_server, eval_net):
    prompt = evaluate_graph(eval_net, filename_prefix="server_eval/run")
    entry = comfy_server.run(prompt, timeout=300)
    text = ui_text(entry, prompt, "GoldenNoiseEvaluate")
    csv_name, json_name = json.loads(text.splitlines()[-1])
    document = json.loads((comfy_server.output_dir / json_name).read_text())
    assert document["complete"] is True and document["summary"]["pairs"] == 8  # 4 prompts x 2 seeds
    assert (comfy_server.output_dir / csv_name).read_text().count("\n") == 9
    assert f"mean difference {document['summary']['mean_difference']:+.4g}" in text


@pytest.mark.parametrize("value", ["../../etc/passwd", "/etc/passwd", "../outside.txt", ".hidden.txt"])
@pytest.mark.parametrize("node", ["GoldenNoiseCollectDataset", "GoldenNoiseEvaluate"])
def test_a_prompt_file_outside_the_input_folder_is_refused(comfy_server, eval_net, node, value):
    (comfy_server.base_dir / "outside.txt").write_text("a secret line\n")
    (comfy_server.base_dir / "input" / ".hidden.txt").write_text("a hidden line\n")
    if node == "GoldenNoiseEvaluate":
        prompt = evaluate_graph(eval_net, filename_prefix="server_eval/refused")
    else:
        prompt = example("golden_noise_collect_sdxl", **SMALL, dataset_name="refused_npd")
    node_of(prompt, node)["inputs"].update(prompts="", prompt_file=value)
    try:
        error = comfy_server.run_expecting_error(prompt, timeout=120)
        message = error["exception_message"]
    except ExecutionFailed as refused:  # a core that checks combo values refuses it at /prompt
        message = str(refused)
    assert "prompt_file" in message and "secret" not in message and "Traceback" not in message
    assert not (comfy_server.output_dir / "npd" / "refused_npd").exists()


def test_a_prompt_file_in_the_input_folder_is_read(comfy_server, eval_net):
    (comfy_server.base_dir / "input" / "server_prompts.jsonl").write_text(
        '{"prompt": "a red bicycle"}\n{"prompt": "a bowl of ramen"}\n'
    )
    prompt = evaluate_graph(eval_net, filename_prefix="server_eval/from_file")
    node_of(prompt, "GoldenNoiseEvaluate")["inputs"].update(prompts="", prompt_file="server_prompts.jsonl")
    entry = comfy_server.run(prompt, timeout=300)
    csv_name, _ = json.loads(ui_text(entry, prompt, "GoldenNoiseEvaluate").splitlines()[-1])
    rows = (comfy_server.output_dir / csv_name).read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["a red bicycle"] * 2 + ["a bowl of ramen"] * 2


def test_a_nan_reward_is_an_error_on_the_node_and_keeps_the_scored_rows(comfy_server, eval_net):
    prompt = evaluate_graph(eval_net, filename_prefix="server_eval/nan")
    node_of(prompt, "GoldenNoiseTinyReward")["inputs"]["nan_from"] = 3
    error = comfy_server.run_expecting_error(prompt, timeout=300)
    assert error["node_type"] == "GoldenNoiseEvaluate" and "input 'reward'" in error["exception_message"]
    assert "2 pairs scored before it" in error["exception_message"]
    (csv_file,) = (comfy_server.output_dir / "server_eval").glob("nan_*.csv")
    assert csv_file.read_text().count("\n") == 3  # header and the two scored pairs


def shard_indices(folder: Path) -> list[int]:
    found = []
    for path in sorted(folder.glob("part-*.safetensors")):
        with safe_open(path, "pt") as f:
            found.extend(f.get_tensor("index").tolist())
    return found


@pytest.mark.slow
def test_the_learning_loop_example_runs_end_to_end(comfy_server, tmp_path):
    """collect (the example, queued) -> python -m npnet.train -> the trained file in models/npnet ->
    Evaluate (the evaluate example, queued) with it."""
    collect = example(
        "golden_noise_learning_loop_sd15", **SMALL, samples_per_prompt=2, dataset_name="loop_npd"
    )
    entry = comfy_server.run(collect, timeout=600)
    assert "12 pairs written now, 12 in the dataset" in ui_text(entry, collect, "GoldenNoiseCollectDataset")
    data = comfy_server.output_dir / "npd" / "loop_npd"
    assert sorted(shard_indices(data)) == list(range(12))
    out = tmp_path / "run"
    process = train_process(
        "--data", str(data), "--out", str(out), "--epochs", "1", "--batch-size", "2", "--min-gain", "-1000"
    )
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    (comfy_server.models_dir / "golden_noise").mkdir(
        parents=True, exist_ok=True
    )  # run alone, nothing made it yet
    shutil.copy(
        out / "npnet.safetensors", comfy_server.models_dir / "golden_noise" / "loop_trained.safetensors"
    )
    evaluate = evaluate_graph("loop_trained.safetensors", filename_prefix="server_eval/loop")
    entry = comfy_server.run(evaluate, timeout=600)
    assert "8 prompt x seed pairs scored by brightness" in ui_text(entry, evaluate, "GoldenNoiseEvaluate")


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [1, 4])
def test_two_servers_with_different_shard_sizes_on_one_folder_write_each_sample_once(
    comfy_server, tmp_path, batch_size
):
    second = start_server(
        tmp_path / "second", extra_args=["--output-directory", str(comfy_server.output_dir)]
    )
    try:
        graphs = []
        for server, per_shard in ((comfy_server, 3), (second, 5)):
            graph = example(
                "golden_noise_collect_sdxl",
                **{**SMALL, "batch_size": batch_size},
                samples_per_prompt=6,
                dataset_name=f"shared_npd_{batch_size}",
            )
            node_of(graph, "GoldenNoiseCollectDataset")["inputs"]["samples_per_shard"] = per_shard
            graphs.append((server, graph))
        results = {}
        threads = [
            threading.Thread(target=lambda s=s, g=g: results.__setitem__(id(s), s.run(g, timeout=600)))
            for s, g in graphs
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=700)
        assert len(results) == 2, "a server did not finish its collection"
        folder = comfy_server.output_dir / "npd" / f"shared_npd_{batch_size}"
        prompts = node_of(graphs[0][1], "GoldenNoiseCollectDataset")["inputs"]["prompts"].strip().splitlines()
        total = 6 * len(prompts)
        assert len(NoisePromptDataset(folder)) == total  # each sample once
        assert set(shard_indices(folder)) == set(range(total))
        # Re-queued, neither server makes anything again.
        again = copy.deepcopy(graphs[0][1])
        entry = comfy_server.run(again, timeout=300)
        assert f"0 pairs written now, {total} in the dataset" in ui_text(
            entry, again, "GoldenNoiseCollectDataset"
        )
    finally:
        second.stop()


def test_evaluate_scores_a_second_reward_linked_on_the_server(comfy_server, eval_net):
    prompt = evaluate_graph(eval_net, filename_prefix="server_eval/two_rewards")
    prompt["90"] = {"class_type": "GoldenNoiseTinyReward", "inputs": {"nan_from": 0}}
    node_of(prompt, "GoldenNoiseEvaluate")["inputs"]["reward_2"] = ["90", 0]
    entry = comfy_server.run(prompt, timeout=300)
    text = ui_text(entry, prompt, "GoldenNoiseEvaluate")
    assert text.count("8 prompt x seed pairs scored by brightness") == 2
    written = sorted(p.name for p in (comfy_server.output_dir / "server_eval").glob("two_rewards_*.csv"))
    assert len(written) == 2 and written[1].endswith("_brightness_.csv"), written


def test_the_authors_example_collects_with_its_preset_through_the_server(comfy_server):
    """golden_noise_collect_authors_sdxl as queued: DDIM over ddim_uniform at 50 steps, the released
    inversion, the zero negative, 1024x1024, the authors' last step and 77-token prompts, recorded in the
    dataset (the preset's values are kept; one prompt, and the tiny reward named as the authors' one)."""
    prompt = example(
        "golden_noise_collect_authors_sdxl",
        samples_per_prompt=1,
        dataset_name="authors_npd",
        prompts="a red bicycle",
    )
    node_of(prompt, "GoldenNoiseTinyReward")["inputs"]["name"] = "HPSv2.1"
    assert node_of(prompt, "GoldenNoiseCollectDataset")["inputs"]["preset"] == "authors"
    comfy_server.run(prompt, timeout=600)
    shards = sorted((comfy_server.output_dir / "npd" / "authors_npd").glob("*.safetensors"))
    with safe_open(shards[0], "pt") as f:
        settings = json.loads(f.metadata()["npd"])
    assert (settings["sampler"], settings["scheduler"], settings["steps"]) == ("ddim", "ddim_uniform", 50)
    assert settings["inversion"] == "released" and settings["negative_conditioning"] == "zero"
    assert (settings["width"], settings["last_step"], settings["prompt_tokens"]) == (1024, "authors", "77")


def _connect_negative(prompt: dict, node_type: str, text: str, zero: bool) -> None:
    """CLIPTextEncode(text) [-> ConditioningZeroOut] -> the node's optional `negative`, as a user wires it."""
    ckpt = next(k for k, n in prompt.items() if n["class_type"] == "GoldenNoiseTinyCheckpoint")
    prompt["900"] = {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": [ckpt, 1]}}
    source = "900"
    if zero:
        prompt["901"] = {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["900", 0]}}
        source = "901"
    node = node_of(prompt, node_type)["inputs"]
    node["negative"], node["negative_prompt"] = [source, 0], ""


def test_a_connected_negative_reaches_collect_and_evaluate_through_the_server(comfy_server, eval_net):
    prompt = example(
        "golden_noise_collect_authors_sdxl",
        width=128,
        height=128,
        samples_per_prompt=1,
        dataset_name="neg_npd",
    )
    # The connected negative is under test here, not the preset (whose size and reward checks have tests
    # of their own): the authors' sampling at a small size.
    node_of(prompt, "GoldenNoiseCollectDataset")["inputs"]["preset"] = "custom"
    _connect_negative(prompt, "GoldenNoiseCollectDataset", "", zero=True)
    comfy_server.run(prompt, timeout=600)
    shard = sorted((comfy_server.output_dir / "npd" / "neg_npd").glob("*.safetensors"))[0]
    with safe_open(shard, "pt") as f:
        settings = json.loads(f.metadata()["npd"])
    assert settings["negative_prompt"] is None and len(settings["negative_conditioning_sha256"]) == 64

    graph = evaluate_graph(eval_net, filename_prefix="server_eval/negative")
    _connect_negative(graph, "GoldenNoiseEvaluate", "washed out", zero=False)
    entry = comfy_server.run(graph, timeout=300)
    _, json_name = json.loads(ui_text(entry, graph, "GoldenNoiseEvaluate").splitlines()[-1])
    document = json.loads((comfy_server.output_dir / json_name).read_text())
    assert document["settings"]["negative_prompt"] is None
    assert len(document["settings"]["negative_conditioning_sha256"]) == 64


def shard_rows(folder: Path) -> dict[int, dict]:
    out = {}
    for path in sorted(folder.glob("part-*.safetensors")):
        with safe_open(path, "pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        for r, index in enumerate(tensors["index"].tolist()):
            assert index not in out, f"sample {index} written twice"
            out[index] = {k: v[r] for k, v in tensors.items()}
    return out


def test_batch_8_collects_and_evaluates_what_batch_1_does_through_the_server(comfy_server, eval_net):
    """The examples queued at batch 1 and at batch 8 (the collection: 3 samples x 6 prompts = 18, so two
    full batches and a partial one across 64-sample shards): the same samples, noise, token states,
    golden targets and gains, and the same Evaluate rows and scores."""
    found = {}
    for batch in (1, 8):
        graph = example(
            "golden_noise_collect_sdxl",
            **{**SMALL, "batch_size": batch},
            samples_per_prompt=3,
            dataset_name=f"batch_npd_{batch}",
        )
        comfy_server.run(graph, timeout=600)
        found[batch] = shard_rows(comfy_server.output_dir / "npd" / f"batch_npd_{batch}")
    one, eight = found[1], found[8]
    assert sorted(one) == sorted(eight) == list(range(18))
    for index in one:
        for name in ("noise", "embeds", "index"):
            assert (one[index][name] == eight[index][name]).all(), (index, name)
        assert (one[index]["golden"].float() - eight[index]["golden"].float()).abs().max() <= 1e-3
        assert abs(float(one[index]["gain"]) - float(eight[index]["gain"])) <= 1e-3

    scored = {}
    for batch in (1, 8):
        graph = evaluate_graph(eval_net, filename_prefix=f"server_eval/batch{batch}", batch_size=batch)
        entry = comfy_server.run(graph, timeout=300)
        csv_name, _ = json.loads(ui_text(entry, graph, "GoldenNoiseEvaluate").splitlines()[-1])
        scored[batch] = [
            line.split(",") for line in (comfy_server.output_dir / csv_name).read_text().splitlines()[1:]
        ]
    assert [r[:2] for r in scored[8]] == [r[:2] for r in scored[1]] and len(scored[1]) == 8
    for a, b in zip(scored[1], scored[8], strict=True):
        assert abs(float(a[2]) - float(b[2])) <= 1e-4 and abs(float(a[3]) - float(b[3])) <= 1e-4


@pytest.mark.parametrize("node", ["GoldenNoiseCollectDataset", "GoldenNoiseEvaluate"])
def test_a_prompt_file_linked_out_of_the_input_folder_is_refused(comfy_server, eval_net, node, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("a secret line\n")
    link = comfy_server.base_dir / "input" / "linked_prompts.txt"
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    if node == "GoldenNoiseEvaluate":
        prompt = evaluate_graph(eval_net, filename_prefix="server_eval/linked")
    else:
        prompt = example("golden_noise_collect_sdxl", **SMALL, dataset_name="linked_npd")
    node_of(prompt, node)["inputs"].update(prompts="", prompt_file="linked_prompts.txt")
    error = comfy_server.run_expecting_error(prompt, timeout=120)
    message = error["exception_message"]
    assert "prompt_file" in message and "symbolic link" in message and "secret line" not in message
    assert "Traceback" not in message and not (comfy_server.output_dir / "npd" / "linked_npd").exists()


def test_a_filename_prefix_too_long_or_linked_out_of_the_output_folder_is_refused(
    comfy_server, eval_net, tmp_path
):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    link = comfy_server.output_dir / "linked_out"
    if not link.is_symlink():
        link.symlink_to(outside)
    for prefix, wording in (("x" * 300, "too long"), ("linked_out/run", "symbolic link")):
        prompt = evaluate_graph(eval_net, filename_prefix=prefix)
        error = comfy_server.run_expecting_error(prompt, timeout=120)
        message = error["exception_message"]
        assert error["node_type"] == "GoldenNoiseEvaluate" and "filename_prefix" in message, message
        assert wording in message and "Traceback" not in message
    assert list(outside.iterdir()) == []  # nothing written through the link


@pytest.mark.parametrize("node", ["GoldenNoiseCollectDataset", "GoldenNoiseEvaluate"])
def test_a_size_that_cannot_fit_in_memory_is_refused_before_any_work(comfy_server, eval_net, node):
    """16384 x 16384 (the widgets' maximum) on CPU used to get the server killed for memory, the queue
    with it: refused naming width, and the server goes on to run the next prompt."""
    huge = {**SMALL, "width": 16384, "height": 16384, "batch_size": 4}
    if node == "GoldenNoiseEvaluate":
        prompt = evaluate_graph(eval_net, filename_prefix="server_eval/huge", **huge)
    else:
        prompt = example("golden_noise_collect_sdxl", **huge, dataset_name="huge_npd")
    error = comfy_server.run_expecting_error(prompt, timeout=120)
    message = error["exception_message"]
    assert error["node_type"] == node and "input 'width'" in message and "GiB" in message, message
    assert not (comfy_server.output_dir / "npd" / "huge_npd").exists()
    prompt = evaluate_graph(eval_net, filename_prefix="server_eval/after_huge")
    assert comfy_server.run(prompt, timeout=300)["status"]["completed"]


@pytest.mark.parametrize(
    "widget, value", [("last_step", "../zero"), ("last_step", ""), ("prompt_tokens", 77)]
)
def test_a_bad_last_step_or_prompt_tokens_is_named_before_any_work(comfy_server, widget, value):
    prompt = example("golden_noise_collect_sdxl", **SMALL, dataset_name="bad_option_npd")
    node_of(prompt, "GoldenNoiseCollectDataset")["inputs"][widget] = value
    try:
        message = comfy_server.run_expecting_error(prompt, timeout=120)["exception_message"]
    except ExecutionFailed as refused:  # a core that checks combo values refuses it at /prompt
        message = str(refused)
    assert widget in message and "Traceback" not in message, message
    assert not (comfy_server.output_dir / "npd" / "bad_option_npd").exists()
