"""Cost of a csvReplay feed's first fetch on a large local price file: CPU time and peak RSS.

Generates price CSVs of the size asked in both layouts of ../shared/data/prices-2024 (wide: 17
market columns; per market: two columns), hourly rows going back from 2025, then, each in a fresh
process, measures:
  floor    reading the file line by line and doing nothing (the I/O floor of any parser)
  feed     CsvReplayPriceFeed(...).fetch(now) as the operator runs it (size cap as configured)
  uncapped the same with the cap raised above the file size (what streaming costs on it)
CPU time is time.process_time (the machine is shared); peak RSS is ru_maxrss minus the RSS after
imports. Ratios are against the floor measured in the same run.

Usage (repo root):
  .venv/bin/python bench/price_csv_bench.py [--mb 50]
  PYTHONPATH=<other checkout>/operator .venv/bin/python bench/price_csv_bench.py --mb 50   # compare code
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

MARKETS = [
    "AT_EUR",
    "BE_EUR",
    "CH_EUR",
    "DE-LU_EUR",
    "ES_EUR",
    "FR_EUR",
    "NL_EUR",
    "PT_EUR",
    "US-CAL-CISO_USD",
    "US-MIDA-PJM_USD",
    "US-NY-NYIS_USD",
    "US-TEX-ERCO_USD",
    "CA-ON_CAD",
    "AU-NSW_AUD",
    "AU-VIC_AUD",
    "JP-TK_JPY",
    "SG_SGD",
]
END = datetime(2025, 1, 1, tzinfo=UTC)


def generate(path: Path, megabytes: float, layout: str) -> int:
    """A CSV of about `megabytes` MB ending at 2025-01-01; returns its row count.

    wide: `datetime_utc,<MARKET>_<CUR>_per_MWh,...` (17 columns); market: `Datetime,Price (EUR/MWh)`.
    """
    columns = len(MARKETS) if layout == "wide" else 1
    if layout == "wide":
        header = "datetime_utc," + ",".join(f"{m}_per_MWh" for m in MARKETS) + "\n"
    else:
        header = "Datetime,Price (EUR/MWh)\n"
    sample = "2024-01-01T00:00:00Z," + ",".join("60.25" for _ in range(columns)) + "\n"
    rows = int(megabytes * 1e6 / len(sample))
    start = END - timedelta(hours=rows)
    with path.open("w") as out:
        out.write(header)
        for hour in range(rows):
            at = start + timedelta(hours=hour)
            prices = ",".join(f"{(hour * 7 + i * 13) % 200 - 20 + 0.25:.2f}" for i in range(columns))
            out.write(f"{at:%Y-%m-%dT%H:%M:%SZ},{prices}\n")
    return rows


PROBE = r"""
import json, resource, sys, time
mode, path, cap, column = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] or None
from datetime import UTC, datetime
from gridshift.api.regional_cluster import CsvReplayFeed
from gridshift.signals.price_csv import CsvReplayPriceFeed
from gridshift.signals.prices import PriceFeedError
from gridshift.signals.settings import PriceFeedSettings
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cpu = time.process_time()
outcome = "ok"
if mode == "floor":
    with open(path, encoding="utf-8") as handle:
        for _ in handle:
            pass
else:
    fields = PriceFeedSettings.__dataclass_fields__
    settings = PriceFeedSettings(max_csv_bytes=cap) if cap and "max_csv_bytes" in fields else PriceFeedSettings()
    feed = CsvReplayPriceFeed(
        "bench", spec=CsvReplayFeed(path=path, column=column), currency="EUR", settings=settings
    )
    try:
        series = feed.fetch(datetime(2024, 10, 8, 10, 17, tzinfo=UTC))
        outcome = f"{len(series.intervals)} intervals"
        feed.fetch(datetime(2024, 10, 9, 10, 17, tzinfo=UTC))  # a second fetch: from the index
    except PriceFeedError as error:
        outcome = f"refused: {error}"
cpu = time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"cpu_s": cpu, "rss_mib": (peak - base) / 1024, "outcome": outcome}))
"""


def probe(mode: str, path: Path, cap: int, column: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode, str(path), str(cap), column], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="size of each generated CSV, MB (default 50)")
    parser.add_argument("--layout", choices=("wide", "market", "both"), default="both")
    args = parser.parse_args()
    for layout in ("wide", "market") if args.layout == "both" else (args.layout,):
        column = "DE-LU_EUR_per_MWh" if layout == "wide" else ""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "prices.csv"
            rows = generate(path, args.mb, layout)
            size = path.stat().st_size
            print(f"{layout} layout: {size / 1e6:.1f} MB, {rows} hourly rows")
            floor = probe("floor", path, 0, column)
            print(f"  {'floor':9} cpu {floor['cpu_s']:7.2f} s  rss +{floor['rss_mib']:7.1f} MiB  (read lines only)")
            for mode, cap in (("feed", 0), ("uncapped", size + 1)):
                got = probe(mode, path, cap, column)
                ratio = float(got["cpu_s"]) / max(float(floor["cpu_s"]), 1e-3)  # type: ignore[arg-type]
                print(
                    f"  {mode:9} cpu {got['cpu_s']:7.2f} s  rss +{got['rss_mib']:7.1f} MiB  "
                    f"cpu x{ratio:6.1f} of floor  {got['outcome']}"
                )


if __name__ == "__main__":
    main()
