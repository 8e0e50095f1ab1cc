"""What a machine costs, from a price file, and the cost of a million images at the SLA.

A price file (TOML) names each machine kind's price, the rate basis, the date and the source:

    [kinds.epyc-zen4-2c]
    price_per_hour = 0.192
    basis = "on-demand, us-east-1"
    date = "2026-06"
    source = "https://..."

Cost per million images = price per hour / 3600 / (images per second at the budget) x 1e6, the
rate being the LoadGen Server peak under the latency bound when the row has one, else the closed
loop's images/s (and the row says so). Prices change; a report quoting them says their date.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

FIELDS = ("price_per_hour", "basis", "date", "source")


@dataclass(frozen=True)
class Price:
    kind: str
    price_per_hour: float
    basis: str
    date: str
    source: str


def load_prices(path: str | Path) -> dict[str, Price]:
    """Kind -> its price; ValueError in one line naming what is wrong with the file."""
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # pragma: no cover - Python 3.10: the backport
        import tomli as tomllib
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"--prices {path}: cannot read it ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"--prices {path}: not TOML ({exc})") from None
    kinds = data.get("kinds")
    if not isinstance(kinds, dict) or not kinds:
        raise ValueError(f"--prices {path}: needs a [kinds.<machine kind>] table per kind")
    prices = {}
    for kind, entry in kinds.items():
        missing = [f for f in FIELDS if not isinstance(entry, dict) or f not in entry]
        if missing:
            raise ValueError(f"--prices {path}: kind {kind!r} lacks {', '.join(missing)}")
        value = entry["price_per_hour"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"--prices {path}: kind {kind!r}: price_per_hour must be a positive number, got {value!r}")
        prices[kind] = Price(kind, float(value), str(entry["basis"]), str(entry["date"]), str(entry["source"]))
    return prices


def cost_per_million(price_per_hour: float, images_per_s: float) -> float:
    """Dollars (or the price's currency) per million images at ``images_per_s``."""
    if not images_per_s or not images_per_s > 0 or math.isnan(images_per_s):
        return math.nan
    return price_per_hour / 3600 / images_per_s * 1e6


def cost_columns(row: dict, prices: dict[str, Price] | None) -> dict:
    """A row's cost at the SLA: the Server peak's rate when it is a Server row, else its closed
    loop's; empty with the reason when its kind has no price."""
    kind = row.get("machine_kind")
    if not prices:
        return {}
    price = prices.get(kind)
    if price is None:
        return {"cost_per_million": None, "cost_basis": f"no price for machine kind {kind!r} in the price file"}
    server = row.get("scenario") == "server"
    rate = row.get("target_qps") if server else row.get("images_per_s")
    how = "Server peak under the latency bound" if server else "closed loop"
    return {"cost_per_million": cost_per_million(price.price_per_hour, rate or math.nan),
            "cost_basis": f"{price.price_per_hour:g}/h {price.basis} ({price.date}, {price.source}); {how}"}
