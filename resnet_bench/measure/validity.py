"""Why a measured cell is not a figure to quote: each reason is a code with a message.

A row's ``invalid_reasons`` holds its reasons as ``code: message`` joined by ``"; "``, e.g.
``imprecise: median known within ±2.3%, target ±2.0%``. The code says what kind of reason it
is (reports count them by code); the message says it for this cell. Rows written before the
codes existed are read by the old wording (``LEGACY``).
"""

from __future__ import annotations

REASONS: dict[str, str] = {
    "imprecise": "median not known within the target precision",
    "no_interval": "too few samples for a median interval",
    "drift": "drift between the first and last third",
    "few_iterations": "fewer iterations than the rule's minimum (max time reached)",
    "throttled": "GPU clocks throttled during the cell",
    "parity_failed": "parity failed",
    "loadgen_invalid": "LoadGen said INVALID",
    "cv": "CV above 5% (the rule of results schema 1)",
}
# How rows written before the codes said each kind (the start of the text).
LEGACY = {"median known within": "imprecise", "median has no": "no_interval", "too few iterations": "few_iterations",
          "GPU throttled": "throttled", "parity failed": "parity_failed", "cv ": "cv"}
SEPARATOR = "; "


def reason(code: str, message: str) -> str:
    """One reason as a row stores it."""
    if code not in REASONS:
        raise ValueError(f"unknown validity reason code {code!r}; known: {', '.join(REASONS)}")
    return f"{code}: {message}"


def code_of(text: str) -> str:
    """The code of one stored reason (its own code, or the legacy wording's), else the text."""
    code, _, _ = text.partition(": ")
    if code in REASONS:
        return code
    return next((kind for start, kind in LEGACY.items() if text.startswith(start)), text)


def codes(invalid_reasons: object) -> list[str]:
    """The codes of a row's ``invalid_reasons`` (empty for none or NaN), each once, in order."""
    if not isinstance(invalid_reasons, str):
        return []
    return list(dict.fromkeys(code_of(part) for part in invalid_reasons.split(SEPARATOR) if part))


def describe(code: str) -> str:
    return REASONS.get(code, code)


# The reason every cell whose outputs failed parity carries (the verdict's own reason is in ``error``).
PARITY_FAILED = reason("parity_failed", "outputs outside the precision's tolerance against PyTorch fp32")
