"""`gridshift profile`: measure a served model across concurrency and write (or apply) its GPUProfile.

Drives an OpenAI-compatible endpoint (vLLM) through a concurrency sweep, reads GPU energy from NVML
on the node (or DCGM through Prometheus when run elsewhere), fits the planner's performance model
to check the points, and writes the GPUProfile YAML to stdout or --output, or applies it (--apply).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from gridshift.cli.usage import finite_float, plain_int
from gridshift.numerals import plain_integer, shown
from gridshift.redaction import display_url

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from rich.console import Console
    from rich.progress import Progress, TaskID

    from gridshift.api import GPUProfile
    from gridshift.profiling import EnergyMeter, LevelMeasurement, LoadSettings, SweepResult
    from gridshift.profiling.workload import RequestShape

_LOAD_FIELDS = (
    "prompt_tokens",
    "output_tokens",
    "api",
    "warmup_seconds",
    "measure_seconds",
    "idle_seconds",
)
"""Flags named after LoadSettings' fields (and --concurrency, its concurrency_levels): unset, they leave
LoadSettings' defaults, so those are written in one place."""


def _ints_at_least(minimum: int, meaning: str) -> Callable[[str], tuple[int, ...]]:
    """An argparse type: comma-separated integers, each at least `minimum` (`meaning` names them in errors).
    Each item is read by `numerals.plain_integer` once stripped: spaces around a comma are the list's layout
    ("1, 2"), as around a CSV cell; "1_0", "１" and "١" are no integer, where int() read them (found in review)."""

    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(plain_integer(part.strip()) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {shown(text)}") from None
        if not values or any(v < minimum for v in values):
            raise argparse.ArgumentTypeError(f"expected {meaning}, got {shown(text)}")
        # A GPU index given twice would be sampled twice (its power counted double, the replica's GPU
        # count inferred one too many); a concurrency level twice, measured twice. argparse names the flag.
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise argparse.ArgumentTypeError(f"expected each value once, got {shown(text)} (repeated: {repeated})")
        return values

    return parse


_positive_ints = _ints_at_least(1, "positive integers")
_non_negative_ints = _ints_at_least(0, "GPU indices >= 0")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="measure a served model's latency, throughput and GPU energy across concurrency; write a GPUProfile",
        description=__doc__,
    )
    target = parser.add_argument_group("endpoint")
    target.add_argument("--endpoint", required=True, help="base URL of the OpenAI-compatible server (vLLM)")
    target.add_argument("--served-model", help="model name to request (default: the first the server lists)")
    target.add_argument("--model", help="spec.model of the profile, e.g. a Hugging Face id (default: served model)")
    target.add_argument("--api", choices=("completions", "chat"), help="API to stream from")
    target.add_argument(
        "--no-vllm-extensions",
        action="store_true",
        help="do not send vLLM's ignore_eos/min_tokens/continuous_usage_stats (for other servers)",
    )
    load = parser.add_argument_group("load")
    load.add_argument("--concurrency", type=_positive_ints)
    load.add_argument("--prompt-tokens", type=plain_int, help="prompt length without --trace")
    load.add_argument("--output-tokens", type=plain_int, help="output length without --trace")
    load.add_argument("--trace", type=Path, help="take request lengths from an Azure-format trace CSV")
    load.add_argument("--trace-limit", type=plain_int, default=5000, help="requests read from --trace")
    load.add_argument("--max-prompt-tokens", type=plain_int, default=8192, help="clip trace prompts to this")
    load.add_argument("--max-output-tokens", type=plain_int, default=1024, help="clip trace outputs to this")
    load.add_argument("--warmup-seconds", type=finite_float, help="load before each window, s")
    load.add_argument("--measure-seconds", type=finite_float, help="measured window per level, s")
    load.add_argument("--idle-seconds", type=finite_float, help="idle-power phase first, s (0: skip)")
    energy = parser.add_argument_group("energy (NVML on this node by default)")
    energy.add_argument("--gpus", type=_non_negative_ints, help="NVML indices of the replica's GPUs (default: all)")
    energy.add_argument("--prometheus", metavar="URL", help="read DCGM energy from this Prometheus instead of NVML")
    energy.add_argument(
        "--selector", help='PromQL matchers of the replica\'s GPU series, e.g. pod="vllm-0",namespace="ml"'
    )
    energy.add_argument(
        "--scrape-wait-seconds", type=finite_float, default=30.0, help="wait for the last DCGM scrape, s"
    )
    energy.add_argument("--power-trace", type=Path, help="replay a recorded power trace CSV instead (dry runs)")
    energy.add_argument("--gpu-type", help="nvidia.com/gpu.product of the GPUs (default: from NVML)")
    energy.add_argument("--gpus-per-replica", type=plain_int, help="tensor-parallel size (default: GPUs sampled)")
    output = parser.add_argument_group("output")
    output.add_argument("--name", help="metadata.name of the GPUProfile (default: from model, GPU type and TP)")
    output.add_argument("--output", "-o", type=Path, help="write the YAML here (default: stdout)")
    output.add_argument("--apply", action="store_true", help="create or replace the GPUProfile in the cluster")
    output.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    parser.set_defaults(handler=run)


def _check_flags(args: argparse.Namespace) -> None:
    from gridshift.cli.usage import UsageError

    if args.prometheus and not args.selector:
        raise UsageError('--prometheus needs --selector naming the vLLM pod\'s GPU series, e.g. pod="vllm-0"')
    if args.selector and not args.prometheus:
        raise UsageError("--selector is only used with --prometheus")
    if args.prometheus and args.power_trace:
        raise UsageError("--prometheus and --power-trace are two energy sources: choose one")
    if args.prometheus and args.gpus:
        raise UsageError("--gpus selects NVML GPUs on this node; with --prometheus, --selector selects the GPUs")
    if (args.prometheus or args.power_trace) and not args.gpu_type:
        # Given empty (`--gpu-type ''`, an unset shell variable), "is required" sent users looking for the flag.
        problem = "is empty: it is required" if args.gpu_type is not None else "is required"
        raise UsageError(f"--gpu-type {problem} with --prometheus or --power-trace (NVML cannot tell it)")
    if args.gpus_per_replica is not None and args.gpus_per_replica not in (1, 2, 4, 8):
        raise UsageError(f"--gpus-per-replica must be 1, 2, 4 or 8, got {args.gpus_per_replica}")
    # The profile's power is the sum over the GPUs measured: they must be the replica's (found in review: all 8
    # of a node's GPUs profiled as a 1-GPU replica, 2,400 W, which the operator then refused).
    if args.gpus and args.gpus_per_replica is not None and len(args.gpus) != args.gpus_per_replica:
        raise UsageError(
            f"--gpus has {len(args.gpus)} {'index' if len(args.gpus) == 1 else 'indices'} but --gpus-per-replica "
            f"is {args.gpus_per_replica}: "
            "name the replica's GPUs, no more and no fewer"
        )
    if args.prometheus and args.gpus_per_replica is None:
        raise UsageError("--gpus-per-replica is required with --prometheus: the --selector's GPUs are summed")
    if args.scrape_wait_seconds < 0:
        raise UsageError(f"--scrape-wait-seconds must be >= 0, got {args.scrape_wait_seconds:g}")
    if args.prometheus:
        _check_prometheus_phases(args)
    for flag, path in (("--trace", args.trace), ("--power-trace", args.power_trace)):
        if path is not None and not path.is_file():
            # /dev/null or a folder exists: "no such file" sent users looking for a typo (found in review).
            raise UsageError(f"{flag} {path}: {'not a regular file' if path.exists() else 'no such file'}")
    _check_outputs(args)


def _check_prometheus_phases(args: argparse.Namespace) -> None:
    """Phases read through Prometheus span two scrapes of the shipped ServiceMonitor, or increase() reads
    nothing (found in review: a 10 s idle phase failed after it, blaming --selector)."""
    from gridshift.cli.usage import UsageError
    from gridshift.profiling.energy import MIN_PROMETHEUS_PHASE_S, SHIPPED_SCRAPE_INTERVAL_S

    for flag, seconds in (("--idle-seconds", args.idle_seconds), ("--measure-seconds", args.measure_seconds)):
        if seconds is not None and 0 < seconds < MIN_PROMETHEUS_PHASE_S:
            skip = " (0 skips the idle phase)" if flag == "--idle-seconds" else ""
            raise UsageError(
                f"{flag} {seconds:g} is too short for --prometheus: give at least {MIN_PROMETHEUS_PHASE_S:g}{skip}, "
                f"two scrape intervals of dcgm/servicemonitor.yaml ({SHIPPED_SCRAPE_INTERVAL_S:g} s), or "
                "Prometheus holds too few samples to read the phase's energy"
            )


def _check_outputs(args: argparse.Namespace) -> None:
    """What the sweep's result goes to, checked before minutes of measuring (found in review: a bad --output
    or --name failed after the sweep and lost it). The endpoint too: a URL without a scheme was reported as
    "cannot list models"."""
    import os

    import httpx

    from gridshift.api.common import DNS_SUBDOMAIN
    from gridshift.cli.usage import UsageError

    for flag, url in (("--endpoint", args.endpoint), ("--prometheus", args.prometheus)):
        if url is None:
            continue
        try:
            scheme = httpx.URL(url).scheme
        except httpx.InvalidURL:
            raise UsageError(f"{flag} is not a valid URL: {display_url(url)}") from None
        if scheme not in ("http", "https"):
            raise UsageError(f"{flag} must be an http(s) URL such as http://vllm:8000, got {display_url(url)}")
    if args.concurrency is not None and len(args.concurrency) < 2:
        # The planner's model is fitted to at least two batch sizes (found in review: refused after the sweep).
        raise UsageError(f"--concurrency needs at least two levels, e.g. 1,8, got {args.concurrency[0]}")
    if args.gpu_type is not None:
        check_profile_field("gpu_type", args.gpu_type, "--gpu-type")
    if args.model is not None:
        check_profile_field("model", args.model, "--model")
    if args.name is not None and not (len(args.name) <= 253 and re.fullmatch(DNS_SUBDOMAIN, args.name)):
        raise UsageError(f"--name {args.name!r} is not a Kubernetes object name (lower case, digits, '-', '.')")
    if args.output is not None:
        folder = args.output.parent
        if args.output.is_dir():
            raise UsageError(f"--output {args.output} is a directory; name the file to write")
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise UsageError(f"--output {args.output}: {folder} is not a directory this user may write to")
    for flag, least in (("trace_limit", 1), ("max_prompt_tokens", 1), ("max_output_tokens", 2)):
        # Outputs of one token have no inter-token latency to measure (as --output-tokens, found in review).
        if getattr(args, flag) < least:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= {least}, got {getattr(args, flag)}")


def check_profile_field(field: str, value: str, flag: str) -> None:
    """`value` as GPUProfile's spec takes it for `field`, by the API model's own rule, or a UsageError naming
    the flag: found in review, a bad --gpu-type or a --model over 256 characters was refused after the sweep,
    naming spec.gpuType."""
    from typing import Annotated

    from pydantic import TypeAdapter, ValidationError

    from gridshift.api.gpu_profile import GPUProfileSpec
    from gridshift.cli.usage import UsageError

    info = GPUProfileSpec.model_fields[field]
    try:
        TypeAdapter(cast(Any, Annotated[(info.annotation, *info.metadata)])).validate_python(value)
    except ValidationError as error:
        problem = error.errors()[0]["msg"]
        hint = (
            f"; give the node label nvidia.com/gpu.product, spaces as '-': {node_label_of(value)!r}"
            if field == "gpu_type" and " " in value.strip()
            else ""
        )
        raise UsageError(f"{flag} {value[:80]!r}{'...' if len(value) > 80 else ''}: {problem}{hint}") from None


def _served_model(endpoint: str) -> str:
    import httpx

    from gridshift.cli.usage import UsageError
    from gridshift.profiling import endpoint_url

    url = endpoint_url(endpoint, "/v1/models")
    try:
        response = httpx.get(url, timeout=30.0, trust_env=False)
        response.raise_for_status()
        models = [m["id"] for m in response.json()["data"]]
    except httpx.HTTPStatusError as error:
        raise UsageError(
            f"cannot list models at {display_url(url)} (HTTP {error.response.status_code}); pass --served-model"
        ) from None
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
        # The class name only: httpx's and json's texts may quote the URL, user:password@ included.
        raise UsageError(
            f"cannot list models at {display_url(url)} ({type(error).__name__}); pass --served-model"
        ) from None
    if not models:
        raise UsageError(f"{display_url(url)} lists no model; pass --served-model")
    return str(models[0])


def node_label_of(gpu_name: str) -> str:
    """nvidia.com/gpu.product value of an NVML GPU name: GPU feature discovery's own rule, spaces replaced
    by '-'. Found in review: matched against the data sets' short names, an H100 PCIe or NVL was filed as
    the SXM H100 (NVIDIA-H100-80GB-HBM3), a GH200 as an H200, a PCIe A100 as the SXM4 one."""
    return gpu_name.strip().replace(" ", "-")


def default_name(model: str, gpu_type: str, gpus_per_replica: int) -> str:
    """A DNS-subdomain metadata.name such as meta-llama-3-8b-instruct-nvidia-h100-80gb-hbm3-tp1.

    The model's last path part, a trailing slash aside: vLLM names a model served from a folder after the
    path (`/models/Meta-Llama-3-8B/`), and found in review, every such model was named after nothing but its
    GPU, so `--apply` replaced one model's profile with another's. Dots stand only between alphanumerics."""
    raw = f"{model.rstrip('/').rsplit('/', 1)[-1]}-{gpu_type}-tp{gpus_per_replica}".lower()
    name = re.sub(r"[^a-z0-9.-]+", "-", raw)
    name = re.sub(r"[-.]*\.[-.]*", ".", name).strip("-.")
    return name[:253].rstrip("-.")


class _RichObserver:
    """Progress bars on stderr: one per phase, with the tokens streamed so far."""

    def __init__(self, console: Console, progress: Progress) -> None:
        self._console = console
        self._progress = progress
        self._task: TaskID | None = None
        self._total = 0.0
        self._least_loaded: LevelMeasurement | None = None
        """The lowest concurrency finished so far: queued_note's prefill reference."""

    def _finish_task(self) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=self._total)

    def phase_started(self, label: str, seconds: float) -> None:
        self._finish_task()
        self._total = seconds
        self._task = self._progress.add_task(label, total=seconds, tokens=0)

    def phase_progress(self, label: str, elapsed_s: float, tokens: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=elapsed_s, tokens=tokens)

    def level_finished(self, level: LevelMeasurement) -> None:
        self._finish_task()
        if self._least_loaded is None or level.concurrency < self._least_loaded.concurrency:
            self._least_loaded = level
        self._console.print(level_line(level, self._least_loaded))


def level_line(level: LevelMeasurement, least_loaded: LevelMeasurement | None) -> str:
    """What was measured at one level, as the sweep's progress prints it (and as a failed run prints it again)."""
    s = level.stats
    return (
        f"  concurrency {level.concurrency}: batch {s.running_batch:.1f}{queued_note(level, least_loaded)}, "
        f"ITL median {s.itl_ms_p50:.1f} ms (mean {s.itl_ms_mean:.1f}), "
        f"{s.output_tokens_per_s:,.0f} tok/s, {level.power_watts:.0f} W, {level.joules_per_token:.3f} J/token"
    )


def queued_note(level: LevelMeasurement, least_loaded: LevelMeasurement | None = None) -> str:
    """Says so when the server queued requests at this level (vLLM's --max-num-seqs); empty otherwise.

    Queued means: its queued_requests against the least-loaded level (the sweep's lowest concurrency) are
    at least one request and a tenth of the concurrency, and at least half of the requests in flight but not
    decoding, so their first token waited over twice as long per prompt token as prefill alone took there.
    Found in review: any batch below the concurrency was said to be queued, and a server that only
    prefilled (a request's time before its first token is no decode) was said to gain no throughput from
    more concurrency. One level alone (least_loaded None, or the level itself) cannot tell, and says nothing."""
    from gridshift.profiling import queued_requests

    s = level.stats
    if least_loaded is None or least_loaded.concurrency >= level.concurrency:
        return ""
    queued = queued_requests(s, least_loaded.stats)
    enough = max(1.0, 0.1 * level.concurrency, 0.5 * (s.mean_in_flight - s.mean_decoding))
    if round(s.running_batch) >= level.concurrency or queued < enough:
        return ""
    return (
        f" of {s.mean_in_flight:.1f} requests in flight (the server queued about {queued:.1f} of them, "
        "e.g. vLLM's --max-num-seqs; the profile takes the batch it ran)"
    )


def _open_meter(args: argparse.Namespace) -> tuple[EnergyMeter, tuple[str, ...], str, Any]:
    """The energy source, its GPU names, a description for the profile, and what to close after."""
    from gridshift.cli.usage import UsageError
    from gridshift.nvml import NvmlPowerSampler, NvmlUnavailable, PowerTrace, SamplerSettings, TracePowerSampler
    from gridshift.profiling import PrometheusEnergyMeter, PrometheusEnergySettings

    if args.prometheus:
        settings = PrometheusEnergySettings(
            url=args.prometheus, selector=args.selector, scrape_wait_seconds=args.scrape_wait_seconds
        )
        return PrometheusEnergyMeter(settings), (), f"DCGM energy counter via Prometheus {{{args.selector}}}", None
    sampler_settings = SamplerSettings(gpu_indices=args.gpus)
    if args.power_trace:
        try:
            trace = PowerTrace.from_csv(args.power_trace)
        except ValueError as error:
            raise UsageError(f"--power-trace: {error}") from None
        sampler = TracePowerSampler(trace, sampler_settings, gpu_count=args.gpus_per_replica or 1)
        return sampler, sampler.gpu_names(), f"replayed power trace {args.power_trace.name} (not measured)", sampler
    try:
        nvml = NvmlPowerSampler(sampler_settings)
    except NvmlUnavailable as error:
        raise UsageError(f"{error}; run on the GPU node, or pass --prometheus URL --selector ...") from None
    return nvml, nvml.gpu_names(), f"NVML ({nvml.power_reading} power every 20 ms, energy counter)", nvml


def _print_summary(
    console: Console, profile: GPUProfile, checks: list[Any], levels: Sequence[LevelMeasurement]
) -> None:
    from rich.table import Table

    from gridshift.planner.cost import joules_per_token_of_step

    table = Table(title=f"GPUProfile {profile.metadata.get('name')}", title_justify="left")
    # Two figures, each named: found in review, one "J/token" heading showed the point's (power x median step /
    # rounded batch, the stalls of steps carrying a prefill chunk left out) up to 1.7x below the level line's
    # measured energy / tokens, and nothing said which was which.
    columns = ("batch", "context", "step ms", "fit ms", "fit error", "W", "J/token measured", "J/token at median step")
    for column in columns:
        table.add_column(column, justify="right")
    for check, level in zip(checks, levels, strict=False):  # build_gpu_profile makes a point of each level, in order
        p = check.point
        table.add_row(
            str(p.batch),
            str(p.context_tokens),
            f"{p.step_time_ms:.2f}",
            f"{check.predicted_step_ms:.2f}",
            f"{check.relative_error * 100:+.1f}%",
            f"{p.power_watts:.0f}",
            f"{level.joules_per_token:.3f}",
            f"{joules_per_token_of_step(p.power_watts, p.step_time_ms, p.batch):.3f}",
        )
    console.print(table)
    least_loaded = min(levels, key=lambda level: level.concurrency, default=None)
    queued = [level.concurrency for level in levels if queued_note(level, least_loaded)]
    if queued and least_loaded is not None:
        console.print(
            f"the server ran a smaller batch than the concurrency at {', '.join(map(str, queued))}: it queued "
            "requests (their first token waited over twice as long per prompt token as at concurrency "
            f"{least_loaded.concurrency}); more concurrency there adds latency, not throughput"
        )


def _kube_api() -> Any:
    """The cluster's CustomObjectsApi from the in-cluster config or the kubeconfig; UsageError without one."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    from gridshift.cli.usage import UsageError

    try:
        config.load_incluster_config()
    except ConfigException:
        try:
            config.load_kube_config()
        except (ConfigException, OSError) as error:
            raise UsageError(f"--apply: no in-cluster config and no usable kubeconfig ({error})") from None
    return client.CustomObjectsApi()


def apply_profile(profile: GPUProfile) -> str:
    """Create the GPUProfile, or replace the one of that name; returns what was done."""
    from kubernetes.client.exceptions import ApiException

    from gridshift.api import GROUP, VERSION
    from gridshift.cli.usage import UsageError

    api = _kube_api()
    body = profile.to_wire()
    name = str(body["metadata"]["name"])
    try:
        api.create_cluster_custom_object(GROUP, VERSION, "gpuprofiles", body)
        return f"gpuprofile.{GROUP}/{name} created"
    except ApiException as error:
        if error.status != 409:
            raise UsageError(f"--apply: the API server refused gpuprofile {name}: {error.reason}") from None
    try:
        existing = cast(dict[str, Any], api.get_cluster_custom_object(GROUP, VERSION, "gpuprofiles", name))
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        api.replace_cluster_custom_object(GROUP, VERSION, "gpuprofiles", name, body)
    except ApiException as error:
        raise UsageError(f"--apply: the API server refused replacing gpuprofile {name}: {error.reason}") from None
    return f"gpuprofile.{GROUP}/{name} replaced"


def _load_settings(args: argparse.Namespace, served_model: str) -> LoadSettings:
    """LoadSettings from the flags; a UsageError naming the flag (not the field) when one is out of range."""
    from gridshift.cli.usage import naming_flags
    from gridshift.profiling import LoadSettings

    flags = {name: getattr(args, name) for name in _LOAD_FIELDS} | {"concurrency_levels": args.concurrency}
    if args.prometheus and args.idle_seconds is None:
        from gridshift.profiling.energy import MIN_PROMETHEUS_PHASE_S

        # LoadSettings' 10 s idle phase suits NVML; through Prometheus it may hold one scrape or none.
        flags["idle_seconds"] = MIN_PROMETHEUS_PHASE_S
    try:
        return LoadSettings(
            endpoint=args.endpoint,
            served_model=served_model,
            vllm_extensions=not args.no_vllm_extensions,
            **{name: value for name, value in flags.items() if value is not None},
        )
    except ValueError as error:
        fields = (*_LOAD_FIELDS, "endpoint", "served_model")
        raise naming_flags(error, fields, {"concurrency_levels": "--concurrency"}) from None


def _load(args: argparse.Namespace, served_model: str) -> tuple[LoadSettings, Iterator[RequestShape], str]:
    """The load generator's settings, the request shapes it sends and a line saying what they are."""
    from gridshift.cli.usage import UsageError
    from gridshift.profiling import cycle_shapes, fixed_shapes, load_trace_shapes

    settings = _load_settings(args, served_model)
    try:
        if args.trace:
            trace_shapes = load_trace_shapes(
                args.trace,
                max_prompt_tokens=args.max_prompt_tokens,
                max_output_tokens=args.max_output_tokens,
                limit=args.trace_limit,
            )
            shapes = cycle_shapes(trace_shapes)
            workload = f"request lengths from {args.trace.name} ({len(trace_shapes)} requests)"
        else:
            shapes = fixed_shapes(settings.prompt_tokens, settings.output_tokens)
            workload = f"{settings.prompt_tokens}-token prompts, {settings.output_tokens} output tokens"
    except ValueError as error:
        raise UsageError(str(error)) from None

    return settings, shapes, workload


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from gridshift.cli.usage import UsageError
    from gridshift.nvml import PowerReadError
    from gridshift.profiling import EndpointError, EnergyMeterError, WindowError, run_sweep

    _check_flags(args)
    if args.apply:
        _kube_api()  # before the sweep: without a cluster to apply to, minutes of measuring would be for nothing
    console = Console(stderr=True, quiet=args.quiet)
    base = endpoint_base(args.endpoint)
    if base != args.endpoint:
        console.print(f"--endpoint ends in /v1, which gridshift adds to each path: using {display_url(base)}")
        args.endpoint = base
    # The flags' ranges before the endpoint is asked for its model: found in review, `--measure-seconds -1`
    # was reported only once the server answered, and as `measure_seconds`.
    _load_settings(args, args.served_model if args.served_model is not None else "(asked of the endpoint)")
    served_model = args.served_model or _served_model(args.endpoint)
    settings, shapes, workload = _load(args, served_model)
    meter, gpu_names, energy_source, closable = _open_meter(args)
    try:
        gpu_type = args.gpu_type or node_label_of(gpu_names[0])
        gpus_per_replica = args.gpus_per_replica or max(1, len(gpu_names))
        if gpus_per_replica not in (1, 2, 4, 8):
            raise UsageError(f"sampling {gpus_per_replica} GPUs: a replica has 1, 2, 4 or 8; pass --gpus")
        if gpu_names and len(gpu_names) != gpus_per_replica:
            raise UsageError(
                f"sampling {len(gpu_names)} GPU(s) for a replica of {gpus_per_replica}: "
                f"pass --gpus with the replica's {gpus_per_replica} NVML indices"
            )
        model = args.model or served_model
        check_profile_field("model", model, "the served model's name (pass --model)")
        name = _profile_name(args, model, gpu_type, gpus_per_replica)
        console.print(
            f"profiling {served_model} at {display_url(args.endpoint)} on {gpus_per_replica}x {gpu_type}: "
            f"concurrency {','.join(map(str, settings.concurrency_levels))}, {workload}; energy: {energy_source}"
        )
        progress = Progress(
            TextColumn("{task.description:>16}"),
            BarColumn(),
            TextColumn("{task.fields[tokens]:>9,} tokens"),
            TimeElapsedColumn(),
            console=console,
            disable=args.quiet,
        )
        try:
            with progress:
                result = run_sweep(settings, meter, shapes, observer=_RichObserver(console, progress))
        except (EndpointError, EnergyMeterError, PowerReadError, WindowError) as error:
            print(f"gridshift profile: {error}", file=sys.stderr)
            return 1
    finally:
        if closable is not None:
            closable.close()

    description = (
        f"gridshift profile of {served_model} at {display_url(args.endpoint)} via /v1/{settings.api}: {workload}; "
        f"{settings.measure_seconds:g} s per level after {settings.warmup_seconds:g} s warm-up; energy: {energy_source}"
    )
    if result.stopped is not None:
        description += f"; the sweep ended at concurrency {result.stopped.concurrency}, which failed"
    identity = {"name": name, "model": model, "gpu_type": gpu_type, "gpus_per_replica": gpus_per_replica}
    return _profile_and_deliver(args, console, result, identity | {"description": description})


PARTIAL_SWEEP_EXIT = 3
"""Exit status of a run whose sweep the server ended at a level, the profile made of the levels before it
written (and applied) as asked: not 0, which says every level asked for was measured, nor 1, nothing written."""


def endpoint_base(endpoint: str) -> str:
    """The endpoint without a trailing /v1 (the OpenAI client's base_url), which gridshift adds to each path
    itself. Found in review: `--endpoint http://vllm:8000/v1` asked /v1/v1/models, and with --served-model
    failed only after the idle phase."""
    import httpx

    url = httpx.URL(endpoint)
    path = url.path.rstrip("/")
    if not path.endswith("/v1"):
        return endpoint
    return str(url.copy_with(path=path.removesuffix("/v1") or "/"))


def _profile_and_deliver(
    args: argparse.Namespace, console: Console, result: SweepResult, identity: dict[str, Any]
) -> int:
    """The sweep's profile, written and/or applied as asked. Found in review: a level the server failed (vLLM
    out of memory at concurrency 64) threw away the levels measured before it, and `--quiet` even their lines;
    now they make the profile where they hold two batch sizes, and are printed (whatever --quiet) where not."""
    from datetime import UTC, datetime

    import yaml
    from pydantic import ValidationError

    from gridshift.profiling import build_gpu_profile

    stopped = result.stopped
    if stopped is not None:
        print(
            f"gridshift profile: the sweep stopped at concurrency {stopped.concurrency}, which failed: {stopped.error}",
            file=sys.stderr,
        )
    try:
        profile, _, checks = build_gpu_profile(result, measured_at=datetime.now(UTC).replace(microsecond=0), **identity)
    except (ValueError, ValidationError) as error:
        print(f"gridshift profile: the sweep cannot make a profile: {error}; measured:", file=sys.stderr)
        least_loaded = min(result.levels, key=lambda level: level.concurrency, default=None)
        for level in result.levels:
            print(level_line(level, least_loaded), file=sys.stderr)
        return 1
    _print_summary(console, profile, checks, result.levels)
    delivered = _deliver(args, console, profile, yaml.safe_dump(profile.to_wire(), sort_keys=False))
    if stopped is None or delivered != 0:
        return delivered
    measured = ",".join(str(level.concurrency) for level in result.levels)
    print(
        f"gridshift profile: the profile holds concurrency {measured} only, the levels measured before "
        f"{stopped.concurrency} failed (exit status {PARTIAL_SWEEP_EXIT})",
        file=sys.stderr,
    )
    return PARTIAL_SWEEP_EXIT


def _profile_name(args: argparse.Namespace, model: str, gpu_type: str, gpus_per_replica: int) -> str:
    """--name, or the default name, checked before the sweep (an invalid one failed after it)."""
    from gridshift.api.common import DNS_SUBDOMAIN
    from gridshift.cli.usage import UsageError

    if args.name:
        return str(args.name)
    name = default_name(model, gpu_type, gpus_per_replica)
    if not re.fullmatch(DNS_SUBDOMAIN, name):
        raise UsageError(f"no Kubernetes object name can be made of {model!r} and {gpu_type!r}: pass --name")
    return name


def _deliver(args: argparse.Namespace, console: Console, profile: GPUProfile, text: str) -> int:
    """Write and/or apply the profile; whatever fails, the YAML reaches stdout rather than being lost."""
    from gridshift.cli.usage import UsageError

    written = failed = False
    if args.output:
        try:
            args.output.write_text(text)
            written = True
            console.print(f"wrote {args.output}")
        except OSError as error:
            print(f"gridshift profile: cannot write {args.output}: {error.strerror}", file=sys.stderr)
            failed = True
    if args.apply:
        try:
            console.print(apply_profile(profile))
        except UsageError as error:
            print(f"gridshift profile: {error}", file=sys.stderr)
            failed = True
    if (failed and not written) or not (args.output or args.apply):
        sys.stdout.write(text)  # the measured profile is never lost to a failed write or apply
    return 1 if failed else 0
