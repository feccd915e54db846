"""The benchmark report: the printed table, CSV and a latency chart."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence

from rnnx.benchmark.measure import BenchRow
from rnnx.core.errors import RnnxError

# (header, width, cell) of the printed table
_COLUMNS: list[tuple[str, str, Callable[[BenchRow], str]]] = [
    ("runtime", "<18", lambda r: r.runtime),
    ("batch", ">5", lambda r: _size(r.batch)),
    ("time", ">5", lambda r: _size(r.time)),
    ("thr", ">3", lambda r: str(r.threads)),
    ("chunk", ">5", lambda r: str(r.chunk) if r.chunk else "-"),
    ("p50 ms", ">9", lambda r: f"{r.p50_ms:.3f}"),
    ("p90 ms", ">9", lambda r: f"{r.p90_ms:.3f}"),
    ("p99 ms", ">9", lambda r: f"{r.p99_ms:.3f}"),
    ("frames/s", ">10", lambda r: f"{r.frames_per_s:.0f}" if r.frames_per_s else "-"),
    (
        "vs eager",
        ">8",
        lambda r: f"{r.ratio_to_eager:.2f}x" if r.ratio_to_eager is not None else "-",
    ),
    ("x floor", ">7", lambda r: f"{r.times_floor:.1f}" if r.times_floor is not None else "-"),
    ("RTF", ">6", lambda r: f"{r.real_time_factor:.3f}" if r.real_time_factor is not None else "-"),
    ("providers", "<", lambda r: r.providers),
]


def _size(size: int | None) -> str:
    return "-" if size is None else str(size)  # None: an axis the model fixes


def format_table(rows: Iterable[BenchRow]) -> str:
    def line(cells: Iterable[str]) -> str:
        return " ".join(f"{c:{w}}" for c, (_, w, _) in zip(cells, _COLUMNS)).rstrip()

    header = line(h for h, _, _ in _COLUMNS)
    body = [line(cell(r) for _, _, cell in _COLUMNS) for r in rows]
    return "\n".join([header, "-" * len(header), *body])


def write_csv(rows: Sequence[BenchRow], path: str | os.PathLike) -> None:
    import csv

    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0].to_dict()))
        writer.writeheader()
        writer.writerows(r.to_dict() for r in rows)


def plot(rows: Sequence[BenchRow], path: str | os.PathLike, title: str = "") -> None:
    """Bar chart of p50 latency per configuration and runtime (needs matplotlib: [plot] extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise RnnxError("--plot needs matplotlib: pip install 'rnnx[plot]'") from error
    labels = list(dict.fromkeys(_config_label(r) for r in rows))
    runtimes = list(dict.fromkeys(r.runtime for r in rows))
    width = 0.8 / len(runtimes)
    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(labels)), 4))
    for i, runtime in enumerate(runtimes):
        by_label = {_config_label(r): r.p50_ms for r in rows if r.runtime == runtime}
        xs = [j + i * width for j, label in enumerate(labels) if label in by_label]
        axes.bar(
            xs, [by_label[label] for label in labels if label in by_label], width, label=runtime
        )
    axes.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))], labels, fontsize=8)
    axes.set_ylabel("p50 latency (ms)")
    axes.set_yscale("log")
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _config_label(row: BenchRow) -> str:
    chunk = f" chunk {row.chunk}" if row.chunk else ""
    return f"b{_size(row.batch)}×t{_size(row.time)}{chunk}\n{row.threads} thr"
