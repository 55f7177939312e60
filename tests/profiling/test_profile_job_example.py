"""examples/profile-job.yaml is a plausible Job whose profiler arguments `gridshift profile` accepts."""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from gridshift.cli import profile as profile_cli
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "profile-job.yaml"


def documents() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d}


def test_the_job_runs_vllm_as_a_sidecar_holding_the_gpu() -> None:
    job = documents()["Job"]
    assert job["apiVersion"] == "batch/v1"
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (vllm,) = pod["initContainers"]
    assert vllm["restartPolicy"] == "Always" and vllm["image"].startswith("vllm/vllm-openai:")
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "startupProbe" in vllm
    (profiler,) = pod["containers"]
    assert profiler["command"] == ["gridshift", "profile"]
    assert pod["serviceAccountName"] == documents()["ServiceAccount"]["metadata"]["name"]


def test_the_profiler_may_apply_gpuprofiles() -> None:
    (rule,) = documents()["ClusterRole"]["rules"]
    assert rule["apiGroups"] == ["gridshift.dev"] and rule["resources"] == ["gpuprofiles"]
    assert {"get", "create", "update"} <= set(rule["verbs"])


def test_the_profiler_arguments_parse_and_pass_the_flag_checks() -> None:
    profiler = documents()["Job"]["spec"]["template"]["spec"]["containers"][0]
    parser = argparse.ArgumentParser(prog="gridshift")
    profile_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["profile", *profiler["args"]])
    profile_cli._check_flags(args)
    assert args.apply and args.prometheus and args.gpu_type == "NVIDIA-H100-80GB-HBM3"
    assert args.concurrency == (1, 2, 4, 8, 16, 32, 64, 128)
    # The selector is filled from the downward API variables the container defines.
    names = {e["name"] for e in profiler["env"]}
    assert {"POD_NAME", "POD_NAMESPACE"} <= names and "$(POD_NAME)" in args.selector
