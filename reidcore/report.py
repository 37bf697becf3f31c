"""The printed CMC/mAP table of a report dict (see :func:`reidcore.evaluation.evaluate`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def format_report(report: Mapping[str, Any], title: str = "") -> str:
    """A small table: CMC rank-1/5/10/20 and mAP in percent, valid and skipped queries."""
    cols = [("rank-1", "rank1"), ("rank-5", "rank5"), ("rank-10", "rank10"), ("rank-20", "rank20"),
            ("mAP", "mAP")]
    head = " | ".join(f"{c:>7}" for c, _ in cols)
    vals = " | ".join(f"{100 * report[k]:6.1f}%" for _, k in cols)
    lines = [title] if title else []
    lines += [head, "-" * len(head), vals,
              f"queries: {report['num_valid_queries']} valid, {report['num_skipped']} skipped "
              f"(no valid gallery match); metric {report.get('metric', '?')}, "
              f"excluder {report.get('excluder', '?')}"]
    return "\n".join(lines)
