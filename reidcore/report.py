"""The printed CMC/mAP table of a report dict (see :func:`reidcore.evaluation.evaluate`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def format_report(report: Mapping[str, Any], title: str = "") -> str:
    """A small table: CMC rank-1/5/10/20, mAP and mINP in percent (a second row for
    ``report["reranked"]`` when present), valid and skipped queries.

    Reports written before mINP existed print ``-`` in its column.
    """
    cols = [("rank-1", "rank1"), ("rank-5", "rank5"), ("rank-10", "rank10"), ("rank-20", "rank20"),
            ("mAP", "mAP"), ("mINP", "mINP")]
    label = "" if "reranked" not in report else "reranked"
    width = max(len(label), 8) if label else 0

    def row(r: Mapping[str, Any], name: str) -> str:
        cells = " | ".join(f"{100 * r[k]:6.1f}%" if k in r else f"{'-':>7}" for _, k in cols)
        return f"{name:<{width}} | {cells}" if width else cells

    head = " | ".join(f"{c:>7}" for c, _ in cols)
    if width:
        head = f"{'':<{width}} | {head}"
    lines = [title] if title else []
    lines += [head, "-" * len(head), row(report, "original")]
    if "reranked" in report:
        lines.append(row(report["reranked"], "reranked"))
    ap = f", {report['ap']} AP" if "ap" in report else ""
    lines += [
              f"queries: {report['num_valid_queries']} valid, {report['num_skipped']} skipped "
              f"(no valid gallery match); metric {report.get('metric', '?')}, "
              f"excluder {report.get('excluder', '?')}{ap}"
              + (f", re-ranked by {report['reranked'].get('reranker', '?')}"
                 if "reranked" in report else "")]
    return "\n".join(lines)
