"""Self-contained HTML reports: headings, text, tables and matplotlib figures embedded as PNG."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from autofm.core.io import atomic_write_text  # noqa: E402

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}
img{max-width:100%;display:block;margin:1em 0}.caption{color:#555;font-size:0.9em}
pre{background:#f6f6f6;padding:0.6em;overflow-x:auto}
"""


def figure_to_png_base64(fig: plt.Figure, dpi: int = 110) -> str:
    """Render a matplotlib figure to base64 PNG and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class Report:
    """An HTML report built section by section and written in one atomic step."""

    def __init__(self, title: str):
        self.title = title
        self._parts: list[str] = []

    def heading(self, text: str, level: int = 2) -> Report:
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")
        return self

    def text(self, text: str) -> Report:
        self._parts.append(f"<p>{html.escape(text)}</p>")
        return self

    def code(self, text: str) -> Report:
        self._parts.append(f"<pre>{html.escape(text)}</pre>")
        return self

    def table(self, data: pd.DataFrame | list[dict] | dict, float_format: str = "{:.4g}") -> Report:
        """A table from a DataFrame, a list of row dicts, or a {row: {col: value}} dict; a default
        0, 1, 2, … index says nothing and is left out."""
        if isinstance(data, dict):
            frame = pd.DataFrame(data).T
        elif isinstance(data, list):
            frame = pd.DataFrame(data)
        else:
            frame = data
        formatted = frame.map(lambda v: float_format.format(v) if isinstance(v, float) else v)
        plain_index = isinstance(frame.index, pd.RangeIndex)
        self._parts.append(formatted.to_html(escape=True, border=0, index=not plain_index))
        return self

    def figure(self, fig: plt.Figure, caption: str | None = None) -> Report:
        data = figure_to_png_base64(fig)
        self._parts.append(
            f'<img alt="{html.escape(caption or "figure")}" src="data:image/png;base64,{data}">'
        )
        if caption:
            self._parts.append(f'<p class="caption">{html.escape(caption)}</p>')
        return self

    def extend(self, other: Report) -> Report:
        """Append another report's sections (its title becomes a heading)."""
        self.heading(other.title)
        self._parts.extend(other._parts)
        return self

    def to_html(self) -> str:
        body = "\n".join(self._parts)
        return (
            f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(self.title)}'
            f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>"
            f"\n{body}\n</body></html>"
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the report atomically; return its path."""
        return atomic_write_text(path, self.to_html())
