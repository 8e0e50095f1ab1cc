"""Render sections as report.md and a self-contained report.html (plots inlined)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from resnet_bench.report.sections import Section


def _fmt(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = out[column].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
    return out


def to_markdown(sections: list[Section], title: str) -> str:
    parts = [f"# {title}\n"]
    for section in sections:
        parts.append(f"## {section.title}\n")
        parts += [f"{line}\n" for line in section.text]
        for caption, table in section.tables:
            if caption:
                parts.append(f"**{caption}**\n")
            parts.append(_fmt(table).to_markdown(index=False) + "\n")
        parts += [f"![{name}]({name})\n" for name in section.plots]
    return "\n".join(parts)


def to_html(sections: list[Section], title: str, out: Path) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body += [f"<p>{html.escape(line)}</p>" for line in section.text]
        for caption, table in section.tables:
            if caption:
                body.append(f"<h3>{html.escape(caption)}</h3>")
            body.append(f"<div class='wide'>{_fmt(table).to_html(index=False, border=0, classes='t')}</div>")
        for name in section.plots:
            data = base64.b64encode((out / name).read_bytes()).decode()
            body.append(f'<img alt="{name}" src="data:image/png;base64,{data}">')
    # A wide table scrolls inside its own box; plots shrink to the page: nothing widens the page.
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
             ".wide{overflow-x:auto;max-width:100%}table.t{border-collapse:collapse;font-size:12px;margin:1em 0}"
             ".t td,.t th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}"
             "img{max-width:100%;height:auto}p{line-height:1.4}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")
