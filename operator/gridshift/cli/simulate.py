"""`gridshift simulate`: replay real prices and request traces through the planner and the baselines."""

from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import os
import sys
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from gridshift.cli.usage import finite_float, plain_int
from gridshift.numerals import NotFinite, TooLarge, plain_integer, plain_number, shown

_PIPED_WIDTH = 160
"""Columns of the tables when stdout is no terminal (a log, a file): wide enough for every column whole."""

_MAX_GPU_HOUR_USD = 1000.0
"""The largest --gpu-price, USD per GPU-hour: far above any rented GPU-hour (an H100 rents at 2-12)."""


NO_PROGRESS_HELP = "no progress on stderr (a bar on a terminal, else a line per stage and per tenth of the work)"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="replay 2024 prices and Azure LLM traces: gridshift against static, reactive, greedy and hindsight",
        description=(
            "Counterfactual replay in minute steps: N deployments over D days, placed by each policy (static, "
            "reactive, greedy, gridshift = the real planner) and by the hindsight bound (an LP with perfect "
            "knowledge). Reports cost, USD per million output tokens, energy, SLO attainment and migrations for "
            "owned and rented GPUs. With no flags it replays the 2024 prices and Azure traces gridshift ships."
        ),
    )
    parser.add_argument("--days", type=finite_float, default=7.0, help="replay length in days (default: 7)")
    parser.add_argument(
        "--deployments",
        default="10",
        metavar="N|FILE",
        help="number of built-in deployments (default: 10), or a YAML file of InferenceDeployments (the operator's "
        "API; spec.demand.requestsPerSecond is the daily peak, placement.preferredRegions[0] the home market; "
        "see docs/simulate.md) that replaces them",
    )
    parser.add_argument(
        "--start",
        default="2024-03-04",
        help="first day (UTC, YYYY-MM-DD, or an ISO time on a whole hour) of the replay (default: 2024-03-04)",
    )
    parser.add_argument(
        "--scenario", choices=("owned", "rented", "both"), default="both", help="GPU cost scenario (default: both)"
    )
    _input_arguments(parser)
    parser.add_argument(
        "--fx", action="append", default=[], metavar="CUR=USD", help="USD per unit of a currency, e.g. EUR=1.08"
    )
    parser.add_argument("--replan-minutes", type=plain_int, default=60, help="gridshift planning cadence (default: 60)")
    parser.add_argument(
        "--cold-start-seconds", type=finite_float, default=180.0, help="replica cold start (default: 180)"
    )
    parser.add_argument(
        "--gpus-per-market",
        type=plain_int,
        default=None,
        # The default lives in SimulationSettings alone; reading it here would import the simulation
        # package whenever the `gridshift` command starts, and the operator needs none of it.
        help="GPUs each market's cluster offers, 1..1000000 (default: SimulationSettings.gpus_per_market)",
    )
    parser.add_argument(
        "--minute-miss",
        default=None,
        metavar="P|off",
        help="gridshift's per-minute floor: keep the forecast under the rate at which a minute's own p95 TTFT misses "
        "with probability P in the capacity model; off: the forecast margin alone (default: "
        "ForecastSettings.minute_miss, see docs/simulate.md)",
    )
    parser.add_argument("--pue", action="append", default=[], metavar="[MARKET=]PUE", help="site PUE (default: 1.2)")
    parser.add_argument(
        "--gpu-price",
        action="append",
        default=[],
        metavar="[MARKET=]USD",
        help="rented scenario: USD per GPU-hour, everywhere or for one market (default: H100 2.50)",
    )
    parser.add_argument(
        "--diurnal-trough",
        type=finite_float,
        default=0.35,
        help="nightly load as a share of the daily peak (default: 0.35)",
    )
    parser.add_argument(
        "--hindsight",
        choices=("fast", "lp"),
        default="fast",
        help="hindsight bound: fast (GPU-hours and electricity bounded apart) or lp (joint minute LP, slow)",
    )
    parser.add_argument(
        "--jobs", type=plain_int, default=None, help="processes to run the scenarios in (default: up to 2, one per CPU)"
    )
    _carbon_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="write a PNG plot")
    parser.add_argument("--no-progress", action="store_true", help=NO_PROGRESS_HELP)
    parser.set_defaults(handler=run)


def _input_arguments(parser: Any) -> None:
    """The flags naming a user's own prices and traces, and how to read them."""
    parser.add_argument(
        "--prices",
        type=Path,
        action="append",
        default=[],
        metavar="CSV",
        help="price CSV as in shared/data/prices-2024 (wide UTC or per market); repeatable (default: shipped 2024)",
    )
    parser.add_argument(
        "--markets",
        default=None,
        help="comma-separated markets to simulate (default: DE-LU,US-TEX-ERCO,US-CAL-CISO,US-MIDA-PJM,US-NY-NYIS, "
        "the markets with both a 2024 price and carbon recording; or all in --prices, each a market whose local "
        "time gridshift knows unless named here, when its users' day is on UTC)",
    )
    parser.add_argument(
        "--trace",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="request trace: Azure CSV or JSONL (timestamp, input_length, output_length), .gz allowed; repeatable "
        "(default: the shipped Azure 2023 conversation and code traces)",
    )
    parser.add_argument(
        "--prices-timezone",
        action="append",
        default=None,
        metavar="[MARKET=]ZONE",
        help="IANA time zone of --prices timestamps that carry no UTC offset (e.g. Europe/Paris; UTC); "
        "MARKET=ZONE for the per-market file of that market only (repeatable, e.g. FR=Europe/Paris "
        "US-CAL-CISO=UTC); a file of naive timestamps is refused without one",
    )
    parser.add_argument(
        "--real-time-markets",
        default=None,
        metavar="MARKET,...|none",
        help="markets whose prices are real-time (known once their hour has ended), not day-ahead: the online "
        "policies see them with that lag (default: US-MIDA-PJM, real-time in the shipped and shared 2024 prices; "
        "none: every market day-ahead)",
    )
    parser.add_argument(
        "--trace-time-unit",
        default="auto",
        choices=("auto", "s", "ms", "us", "ns"),
        help="unit of numeric JSONL timestamps (default: auto: a Unix epoch by its magnitude, else seconds, "
        "refused if that makes the requests implausibly sparse)",
    )


def _carbon_arguments(parser: Any) -> None:
    """The carbon flags (docs/carbon.md)."""
    parser.add_argument(
        "--carbon",
        type=Path,
        default=None,
        metavar="DIR",
        help="hourly carbon-intensity CSVs, <MARKET>_carbon_2024_hourly.csv (default: shared/data/carbon-2024)",
    )
    parser.add_argument(
        "--carbon-basis",
        choices=("lifecycle", "direct"),
        default="lifecycle",
        help="carbon intensity counted: life-cycle or direct emissions (default: lifecycle)",
    )
    parser.add_argument(
        "--carbon-price",
        default=None,
        metavar="USD_PER_T[,...]",
        help="replay gridshift with each internal carbon price (USD/tonne), e.g. 0,25,50,100,200: the "
        "cost-vs-carbon frontier (in the JSON as carbon_frontier; --frontier-plot for a PNG)",
    )
    parser.add_argument("--frontier-plot", type=Path, default=None, metavar="FILE.png", help="write the frontier PNG")


def _start(text: str) -> datetime:
    from gridshift.cli.usage import UsageError

    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise UsageError(f"--start: not a date or ISO time: {text!r}") from error
    start = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if start != start.replace(minute=0, second=0, microsecond=0):
        # Prices change on the hour: a start within one would shift every price by its minutes.
        raise UsageError(f"--start: {text!r} is not on a whole hour (UTC); the replay's prices are hourly")
    return start


def _pairs(flag: str, values: list[str], *, keyed_only: bool) -> tuple[float | None, dict[str, float]]:
    """`[KEY=]NUMBER` flags: (the unkeyed value, {key: value})."""
    from gridshift.cli.usage import UsageError

    # Each value kept with its number as typed, which a refusal prints: found in review, `--pue 1.3 --pue
    # 1.30000000001` was refused as "got 1.3 and 1.3", the values printed at a precision that hid their difference.
    plain: tuple[float, str] | None = None
    keyed: dict[str, tuple[float, str]] = {}
    for value in values:
        key, sep, number = value.partition("=")
        key = key.strip()
        if not sep and keyed_only:
            raise UsageError(f"{flag}: {value!r} needs the form CUR=NUMBER, e.g. EUR=1.08")
        if not sep:
            key, number = "", value
        # Read as numerals reads a feed's number ("1_0", "１" and "nan" refused, found in review); spaces around
        # the "=" are the pair's layout, stripped as the key's are; an unkeyed value is one word, read as typed.
        typed = number.strip() if sep else number
        try:
            parsed = plain_number(typed)
        except NotFinite:
            raise UsageError(f"{flag}: {shown(value)} is not a finite number") from None
        except ValueError:
            raise UsageError(f"{flag}: {shown(value)} is not [KEY=]NUMBER") from None
        # One value each: found in review, `--pue DE-LU=1.3 --pue DE-LU=1.9` took the last. The same value again
        # is no conflict (a script adding its flags to a user's may repeat one), so it is accepted, as
        # argparse, Helm's --set and docker's -e accept any repeat; a different value stays refused.
        if not sep:
            if plain is not None and parsed != plain[0]:
                raise UsageError(f"{flag}: one value for all at most, got {plain[1]} and {typed}")
            plain = parsed, typed
        else:
            if key in keyed and keyed[key][0] != parsed:
                raise UsageError(f"{flag}: {key} is given twice ({keyed[key][1]}, {typed}): once each")
            keyed[key] = parsed, typed
    return (None if plain is None else plain[0]), {key: number for key, (number, _) in keyed.items()}


def build_settings(args: argparse.Namespace) -> Any:
    from gridshift.cli.usage import UsageError, naming_flags
    from gridshift.simulation.forecast import ForecastSettings
    from gridshift.simulation.settings import (
        DEFAULT_FX_TO_USD,
        DEFAULT_MARKETS,
        RENTED_USD_PER_GPU_HOUR,
        Scenario,
        SimulationSettings,
    )

    _, fx = _pairs("--fx", args.fx, keyed_only=True)
    for currency, rate in fx.items():
        if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
            raise UsageError(f"--fx: {currency!r} is not an ISO 4217 code (three capitals, e.g. EUR)")
        if not rate > 0:
            raise UsageError(f"--fx: {currency} rate must be > 0, got {rate}")
        if currency == "USD" and rate != 1.0:
            raise UsageError(f"--fx: costs are in USD, so USD's rate is 1, got {rate:g}")
    pue, pue_by_market = _pairs("--pue", args.pue, keyed_only=False)
    price, price_by_market = _pairs("--gpu-price", args.gpu_price, keyed_only=False)
    for value in [price, *price_by_market.values()]:
        # Bounded above too (found in review: 1e308 overflowed the costs to inf after the whole replay, a
        # traceback with --json and a table of inf and nan without); 1000 USD is far above any GPU-hour rented.
        if value is not None and not 0 <= value <= _MAX_GPU_HOUR_USD:
            raise UsageError(f"--gpu-price: must be within 0..{_MAX_GPU_HOUR_USD:g} USD per GPU-hour, got {value:g}")
    if args.markets is not None:
        markets = tuple(m.strip() for m in args.markets.split(",") if m.strip())
        if not markets:
            raise UsageError("--markets: name at least one market")
    else:
        markets = () if args.prices else DEFAULT_MARKETS
    rented = dict(RENTED_USD_PER_GPU_HOUR)
    if price is not None:
        rented = dict.fromkeys(rented, price)
    scenarios = (Scenario.OWNED, Scenario.RENTED) if args.scenario == "both" else (Scenario(args.scenario),)
    count, _ = deployments_flag(args.deployments)
    forecast = (
        ForecastSettings() if args.minute_miss is None else ForecastSettings(minute_miss=_minute_miss(args.minute_miss))
    )
    try:
        return SimulationSettings(
            start=_start(args.start),
            days=args.days,
            deployments=count,
            # With --prices and no --markets, every market in the files: named once they are read.
            markets=markets or ("all",),
            fx_to_usd={**DEFAULT_FX_TO_USD, **fx},
            pue=1.2 if pue is None else pue,
            pue_by_market=pue_by_market,
            **({} if args.gpus_per_market is None else {"gpus_per_market": args.gpus_per_market}),
            rented_usd_per_gpu_hour=rented,
            rented_usd_per_gpu_hour_by_market=price_by_market,
            replan_minutes=args.replan_minutes,
            cold_start_seconds=args.cold_start_seconds,
            diurnal_trough=args.diurnal_trough,
            scenarios=scenarios,
            forecast=forecast,
            **_real_time_markets(args.real_time_markets),
        )
    except ValueError as error:
        flags = (
            "days",
            "deployments",
            "markets",
            "pue",
            "gpus_per_market",
            "replan_minutes",
            "cold_start_seconds",
            "diurnal_trough",
        )
        raise naming_flags(error, flags) from error


def _real_time_markets(text: str | None) -> dict[str, Any]:
    """--real-time-markets (comma-separated markets, or none) as SimulationSettings' keyword; none given, its
    default."""
    if text is None:
        return {}
    from gridshift.cli.usage import UsageError

    if text.strip().lower() == "none":
        return {"real_time_markets": frozenset()}
    markets = frozenset(m.strip() for m in text.split(",") if m.strip())
    if not markets:
        raise UsageError("--real-time-markets: name the markets, or none for every market day-ahead")
    return {"real_time_markets": markets}


def _minute_miss(value: str) -> float | None:
    """--minute-miss: a probability within (0, 1), or off."""
    from gridshift.cli.usage import UsageError

    if value.strip().lower() == "off":
        return None
    refusal = UsageError(f"--minute-miss: expected a probability within (0, 1) or off, got {shown(value)}")
    try:
        probability = plain_number(value)  # "0.0_5" was 0.05 by float() (found in review)
    except ValueError:
        raise refusal from None
    if not 0.0 < probability < 1.0:
        raise refusal
    return probability


def deployments_flag(value: str) -> tuple[int, Path | None]:
    """--deployments: (a count of built-in deployments, None) or (1, the InferenceDeployment YAML file)."""
    from gridshift.cli.usage import UsageError

    # A count as numerals reads one, the value as typed: int() read "1_0" and "١٢", and the check before this
    # one passed "+-12" to int(), which raised (a traceback; found in review).
    try:
        return plain_integer(value), None
    except ValueError:
        pass
    path = Path(value)
    try:
        is_file = path.is_file()
    except OSError:  # a name longer than the file system takes (ENAMETOOLONG): a traceback before (review)
        is_file = False
    if not is_file:
        raise UsageError(f"--deployments: {shown(value)} is neither a number of deployments nor a YAML file")
    return 1, path


def price_csv_parser() -> Any:
    """gridshift.signals' csvReplay parser, with its errors as SimulationInputError."""
    from gridshift.signals.price_csv import parse_price_csv_rows
    from gridshift.signals.prices import PriceFeedError
    from gridshift.simulation.data import PricedInterval, SimulationInputError

    def parse(
        text: str, *, feed: str, column: str | None, naive_timezone: tzinfo
    ) -> tuple[list[PricedInterval], datetime]:
        try:
            intervals, rows_end = parse_price_csv_rows(text, feed=feed, column=column, naive_timezone=naive_timezone)
            return list(intervals), rows_end
        except PriceFeedError as error:
            raise SimulationInputError(str(error)) from error

    return parse


_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
"""glibc's mallopt parameters (malloc.h)."""


def keep_freed_heap() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse instead of handing it back to the kernel at once.
    The replay allocates and frees arrays of up to tens of MiB in every pass; by default each is mapped,
    zeroed by the kernel on first touch and unmapped again. Default week (`--jobs 2`, load about 2): 48 of
    253 CPU-s were system time; with these settings 14 s, 127 s wall instead of 138, identical output
    (docs/simulate.md "Run time"). Set before the worker processes fork, so they inherit it. False where
    the C library is not glibc (nothing changed there)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    wanted = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 256 << 20))
    return all(mallopt(ctypes.c_int(option), ctypes.c_int(value)) == 1 for option, value in wanted)


def _prices_timezones(values: list[str] | None) -> dict[str, Any]:
    """--prices-timezone's values as load_prices' `timezone` (one bare ZONE, for every naive file) and
    `timezones` (MARKET=ZONE)."""
    from gridshift.cli.usage import UsageError

    # The same zone again is no conflict, as for --pue, --gpu-price and --fx (_pairs): found in review,
    # `--prices-timezone X --prices-timezone X` was refused. A different one is, naming both (quoted: an empty or
    # space-padded zone stays visible). A bare zone is stripped as a MARKET=ZONE's is, so " UTC" equals "UTC" in
    # both forms (review).
    bare = list(dict.fromkeys(v.strip() for v in values or () if "=" not in v))
    if len(bare) > 1:
        raise UsageError(f"--prices-timezone: one ZONE for all files at most, got {bare[0]!r} and {bare[1]!r}")
    zones: dict[str, str] = {}
    for value in values or ():
        market, sep, zone = (part.strip() for part in value.partition("="))
        if not sep:
            continue
        if not market:
            raise UsageError(f"--prices-timezone: {value!r} names no market (MARKET=ZONE)")
        if zones.get(market, zone) != zone:
            raise UsageError(
                f"--prices-timezone: each MARKET=ZONE once, {market} is given twice ({zones[market]!r}, {zone!r})"
            )
        zones[market] = zone
    return {"timezone": bare[0] if bare else None, "timezones": zones}


def _check_market_keys(settings: Any, args: argparse.Namespace) -> None:
    """--pue, --gpu-price and --real-time-markets keys must be markets of the replay: a typo left the default in
    place, silently. A market without a known local time (it shapes its users' day) must be one --markets names:
    found in review, prices_DE-LU_2024.csv was replayed as a market "prices" on UTC, unasked."""
    from gridshift.cli.usage import UsageError
    from gridshift.simulation.settings import MARKET_TIMEZONES

    named = args.markets
    # With --markets, every market of the replay is one it named (spaces and all: they are stripped there).
    unknown_zone = [] if named else [m for m in settings.markets if m not in MARKET_TIMEZONES]
    if unknown_zone:
        raise UsageError(
            f"--prices: market {', '.join(unknown_zone)} (from a file or column name) has no known local time; "
            f"name the file after a market (<MARKET>_anything.csv: {', '.join(MARKET_TIMEZONES)}), or name it "
            "with --markets to replay its users' day on UTC"
        )
    keys = [("--pue", settings.pue_by_market), ("--gpu-price", settings.rented_usd_per_gpu_hour_by_market)]
    if args.real_time_markets is not None:
        keys.append(("--real-time-markets", settings.real_time_markets))
    for flag, keyed in keys:
        unknown = sorted(set(keyed) - set(settings.markets))
        if unknown:
            raise UsageError(
                f"{flag}: no market {', '.join(unknown)} in this replay; its markets: {', '.join(settings.markets)}"
            )
    real_time = [m for m in settings.markets if m in settings.real_time_markets]
    if args.prices and args.real_time_markets is None and real_time:
        # Found in review: a user's own day-ahead PJM prices were replayed as real-time (a two-hour lag and an
        # extra plan an hour), decided by the market's name alone, and nothing said so.
        print(
            f"note: prices of {', '.join(real_time)} are taken as real-time (known once their hour has ended), as "
            "in the shipped and shared 2024 data; --real-time-markets none (or a list) if yours are day-ahead",
            file=sys.stderr,
        )


def _traces(args: argparse.Namespace) -> dict[str, Any]:
    """The replay's traces by name: --trace files (named by their file name), else the two shipped ones."""
    from gridshift.cli.usage import UsageError
    from gridshift.simulation.data import (
        SimulationInputError,
        load_trace,
        refuse_sparse_trace,
        shipped_trace,
        trace_name,
    )

    if not args.trace:
        return {"conv": shipped_trace("conv"), "code": shipped_trace("code")}
    traces = {}
    for path in args.trace:
        name = trace_name(str(path))
        if not name:
            raise UsageError(f"--trace: {path}: a trace is named by its file's name, and none is left without dots")
        if name in traces:
            raise UsageError(f"--trace: two traces are named {name!r}; rename one file")
        try:
            traces[name] = load_trace(path, args.trace_time_unit)
            # Within the try: found in review, a too sparse trace was the one trace error not naming --trace.
            refuse_sparse_trace(traces[name], str(path))
        except SimulationInputError as error:
            raise UsageError(f"--trace: {error}") from error
    return traces


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from gridshift.cli.streams import stdout_to_stderr
    from gridshift.cli.usage import UsageError
    from gridshift.profiles_catalog import default_performance_models
    from gridshift.signals.prices import MAX_ABS_USD_PER_KWH
    from gridshift.simulation.data import SimulationInputError, load_prices
    from gridshift.simulation.report import write_plot
    from gridshift.simulation.runner import HindsightMethod, policy_minutes, prepare_replay, run_replay

    settings = build_settings(args)
    _check_input_flags(args)
    carbon_prices = _check_output_flags(args)
    keep_freed_heap()
    try:
        wanted = None if not args.markets and args.prices else list(settings.markets)
        try:
            prices = load_prices(
                args.prices,
                fx_to_usd=settings.fx_to_usd,
                markets=wanted,
                parser=price_csv_parser(),
                **_prices_timezones(args.prices_timezone),
                max_abs_usd_per_kwh=MAX_ABS_USD_PER_KWH,
            )
        except SimulationInputError as error:
            # A message that names its flag already keeps it (found in review: "--prices: --prices: market FR ...").
            named = str(error).startswith("--")
            raise SimulationInputError(f"--prices: {error}" if args.prices and not named else str(error)) from error
        settings = replace(settings, markets=tuple(p.market for p in prices))
        _check_market_keys(settings, args)
        traces = _traces(args)
        _, deployments_file = deployments_flag(args.deployments)
        setups = None
        if deployments_file is not None:
            from gridshift.simulation.deployments_file import load_deployments

            setups = load_deployments(deployments_file, settings, traces)
        # Deriving a deployment takes about 0.3 s: thousands of them took minutes without a word (found in review).
        # Lines of their own ("simulate, preparing: 50% ..."): the replay's percentages then start afresh.
        with _progress_display(show=not args.no_progress, command="simulate, preparing") as progress:
            task = progress.add_task("deployments", total=len(setups) if setups else settings.deployments)

            def prepared(done: int, total: int) -> None:
                progress.update(task, advance=1, total=total, description="deployments")

            replay = prepare_replay(settings, traces, prices, default_performance_models(), setups, prepared)
        carbon = replay_carbon(args, replay, carbon_prices)
    except SimulationInputError as error:
        raise UsageError(str(error)) from error
    except ValueError as error:
        raise UsageError(str(error)) from error
    method = HindsightMethod(args.hindsight)
    jobs = args.jobs if args.jobs is not None else min(2, os.cpu_count() or 1)
    if jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {jobs}")
    with _progress_display(show=not args.no_progress) as progress:
        # The carbon-priced replays counted from the start: a total raised after the replay took the plain
        # progress lines from 100% back to 83% (found in review).
        frontier_minutes = replay.minutes * len(carbon_prices) if carbon is not None else 0
        task = progress.add_task("replay", total=policy_minutes(replay, settings.scenarios) + frontier_minutes)

        def advance(label: str, minutes: int) -> None:
            progress.update(task, advance=minutes, description=label)

        # Keep stdout for the JSON or the tables: HiGHS, in the planner, prints its banner there (cli.streams);
        # a saved table began with it (review).
        with stdout_to_stderr():
            result = run_replay(replay, settings.scenarios, hindsight=method, progress=advance, jobs=jobs)
            frontier = carbon_outcome(args, replay, result, carbon, carbon_prices, progress, task)
    if args.plot is not None:
        try:
            write_plot(result, args.plot)
        except OSError as error:
            raise UsageError(f"--plot: cannot write {args.plot}: {error.strerror}") from error
    _output(args, result, carbon, frontier)
    return 0


def _progress_display(show: bool, command: str = "simulate") -> Any:
    """rich's bar on a terminal; off one (CI, a log) plain lines on stderr, where the bar drew nothing (found
    in review: the default week ran two minutes without a word); nothing with --no-progress."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from gridshift.cli.progress import PlainProgress

    stderr = Console(stderr=True)
    if show and not stderr.is_terminal:
        return PlainProgress(command)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=stderr,
        disable=not show,
        transient=True,
    )


def _output(args: argparse.Namespace, result: Any, carbon: Any, frontier: dict[str, Any] | None) -> None:
    """The results as JSON or tables, with the carbon figures when there are."""
    from rich.console import Console

    from gridshift.simulation.report import print_tables

    document = result.to_json()
    if carbon is not None:
        from gridshift.simulation.carbon import annotate

        annotate(document, result, carbon)
    if frontier is not None:
        document["carbon_frontier"] = frontier
    if args.json:
        # allow_nan=False: a NaN would make the document invalid JSON; better an error than that.
        sys.stdout.write(json.dumps(document, indent=2, allow_nan=False) + "\n")
        return
    # Piped or redirected, rich draws 80 columns and cut the policy names, the key to every row (review).
    print_tables(result, Console() if sys.stdout.isatty() else Console(width=_PIPED_WIDTH))
    print_carbon(document)
    if args.plot is not None:
        print(f"wrote {args.plot}")
    if args.frontier_plot is not None:
        print(f"wrote {args.frontier_plot}")


def _check_input_flags(args: argparse.Namespace) -> None:
    """UsageError for a flag that only qualifies an input file when that file is not given: it would be ignored,
    and the user would believe their timestamps were read as they said (found in review)."""
    from gridshift.cli.usage import UsageError

    if args.trace_time_unit != "auto" and not args.trace:
        raise UsageError("--trace-time-unit applies to --trace files; the shipped traces' times are their own")
    if args.prices_timezone and not args.prices:
        raise UsageError("--prices-timezone applies to --prices files; the shipped prices are in UTC")
    if args.gpu_price and args.scenario == "owned":
        raise UsageError("--gpu-price prices rented GPUs; --scenario owned rents none (rented or both does)")


def _check_output_flags(args: argparse.Namespace) -> list[float]:
    """UsageError for a bad --plot, --carbon-price or --frontier-plot; the carbon prices to sweep."""
    from gridshift.cli.usage import UsageError

    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise UsageError(f"--plot: {args.plot} must end in .png")
    if args.plot is not None or args.frontier_plot is not None:
        # Checked before the replay runs, not after minutes of it: matplotlib is an optional extra.
        try:
            importlib.import_module("matplotlib")
        except ImportError:
            raise UsageError("--plot needs matplotlib, which is not installed: pip install 'gridshift[plot]'") from None
    carbon_prices = carbon_price_list(args.carbon_price)
    if args.frontier_plot is not None and args.frontier_plot.suffix.lower() != ".png":
        raise UsageError(f"--frontier-plot: {args.frontier_plot} must end in .png")
    if args.frontier_plot is not None and not carbon_prices:
        raise UsageError("--frontier-plot needs --carbon-price (the carbon prices the frontier is drawn over)")
    for flag, path in (("--plot", args.plot), ("--frontier-plot", args.frontier_plot)):
        # Where it cannot be written, say so now: the replay's results would be lost after minutes of it.
        if path is None:
            continue
        folder = path.parent if str(path.parent) else Path(".")
        if path.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK):
            raise UsageError(
                f"{flag}: cannot write {path}: "
                + ("a directory" if path.is_dir() else f"{folder} is not a writable directory")
            )
    return carbon_prices


def carbon_price_list(text: str | None) -> list[float]:
    """--carbon-price: comma-separated USD/t, each >= 0."""
    from gridshift.cli.usage import UsageError

    if text is None:
        return []
    prices = []
    for part in (p.strip() for p in text.split(",")):
        # Each price as numerals reads one (float() read "1_0" and "１"; found in review), stripped: spaces after
        # a comma are the list's layout. NaN is no number; a price beyond any float is out of range.
        outside = UsageError(f"--carbon-price: {shown(part)} must be within 0..10000 USD/t")
        try:
            value = plain_number(part)
        except TooLarge:
            raise outside from None
        except ValueError:
            raise UsageError(f"--carbon-price: {shown(part)} is not a number (USD per tonne)") from None
        if not (value >= 0 and value <= 10_000):
            raise outside
        prices.append(value)
    return prices


def replay_carbon(args: argparse.Namespace, replay: Any, prices: list[float]) -> Any:
    """The replay's recorded intensities (None when none is found), read and checked before anything is
    replayed. Found in review: they were read after the replay, so a broken file, a missing --carbon folder
    or one holding none of the replay's markets was reported minutes later (or not at all)."""
    from gridshift.api.carbon import CarbonBasis
    from gridshift.cli.usage import UsageError
    from gridshift.simulation.carbon import CARBON_FILE, default_carbon_dir, load_replay_carbon
    from gridshift.simulation.data import SimulationInputError

    directory = args.carbon or default_carbon_dir()
    if not directory.is_dir():
        if args.carbon is not None or prices:
            raise UsageError(f"--carbon: {directory} is not a folder of carbon-intensity CSVs")
        return None
    try:
        # The default recordings are of 2024: a replay of other days, which did not ask for carbon, goes on
        # with its carbon unknown (found in review: a 2023 --prices file was refused); a folder given is refused.
        carbon = load_replay_carbon(
            replay, directory, CarbonBasis(args.carbon_basis), outside_unknown=args.carbon is None
        )
    except SimulationInputError as error:
        raise UsageError(f"--carbon: {error}" if args.carbon is not None else str(error)) from error
    if args.carbon is not None and not carbon.g_per_kwh:
        markets = ", ".join(m.name for m in replay.markets)
        raise UsageError(
            f"--carbon: {directory} has no {CARBON_FILE.format(market='<MARKET>')} for any market of the replay "
            f"({markets})"
        )
    spans = ", ".join(f"{market} {span}" for market, span in carbon.uncovered.items())
    if prices and carbon.missing:
        # Found in review: the carbon-priced replays refused these markets only after the whole replay had
        # run (rc 2, its results thrown away); the sweep needs every market's intensities.
        outside = f" of the replayed days (theirs cover {spans}; --carbon DIR gives others)" if spans else ""
        raise UsageError(
            f"--carbon-price: markets {', '.join(carbon.missing)} have no carbon recording{outside} in {directory}; "
            "choose --markets among those with one, or leave out --carbon-price"
        )
    if spans:
        print(
            f"note: the carbon recordings in {directory} do not cover the replayed days ({spans}): co2_kg not "
            "known; --carbon DIR gives recordings of those days",
            file=sys.stderr,
        )
    return carbon


def carbon_outcome(
    args: argparse.Namespace, replay: Any, result: Any, carbon: Any, prices: list[float], progress: Any, task: Any
) -> dict[str, Any] | None:
    """With --carbon-price, the cost-vs-carbon frontier over the replay's recorded intensities `carbon`."""
    from gridshift.cli.usage import UsageError
    from gridshift.simulation.carbon import frontier_json, sweep, write_frontier_plot
    from gridshift.simulation.data import SimulationInputError

    if carbon is None or not prices:
        return None
    try:
        scenario = next(iter(result.scenarios))
        references = {k: v for k, v in result.scenarios[scenario].policies.items() if k != "gridshift"}

        def advance(label: str, minutes: int) -> None:
            progress.update(task, advance=minutes, description=label)

        points = sweep(replay, scenario, carbon, prices, references, advance)
    except SimulationInputError as error:
        raise UsageError(str(error)) from error
    if args.frontier_plot is not None:
        title = (
            f"Cost vs carbon, {scenario.value}: {replay.settings.days:g} days from {replay.start:%Y-%m-%d}, "
            f"{', '.join(m.name for m in replay.markets)} ({carbon.basis.value} intensity)"
        )
        try:
            write_frontier_plot(points, args.frontier_plot, title)
        except OSError as error:
            raise UsageError(f"--frontier-plot: cannot write {args.frontier_plot}: {error.strerror}") from error
    return frontier_json(scenario, carbon, points)


def print_carbon(document: dict[str, Any]) -> None:
    """The carbon lines of the human output."""
    carbon = document.get("carbon")
    if carbon is None:
        return
    for name, scenario in document["scenarios"].items():
        parts = [
            f"{policy} {'-' if p['co2_kg'] is None else format(p['co2_kg'], ',.1f')}"
            for policy, p in scenario["policies"].items()
        ]
        print(f"kgCO2eq ({carbon['basis']}, {name}): " + ", ".join(parts))
    without = [m for m in carbon["markets_without_data"] if carbon["why_without_data"][m] == "no recording"]
    if without:
        print(f"no carbon recording for {', '.join(without)}: co2_kg not known")
    outside = [m for m in carbon["markets_without_data"] if m not in without]
    if outside:
        print(f"no carbon recording of the replayed days for {', '.join(outside)}: co2_kg not known")
    frontier = document.get("carbon_frontier")
    if frontier is not None:
        print(f"cost-vs-carbon frontier ({frontier['scenario']}):")
        for point in frontier["points"]:
            price = point["carbon_price_usd_per_tonne"]
            label = f"{point['policy']} at {price:g} USD/t" if price is not None else point["policy"]
            print(f"  {label:<28} {point['cost_usd']:>12,.2f} USD {point['co2_kg']:>12,.1f} kgCO2eq")
