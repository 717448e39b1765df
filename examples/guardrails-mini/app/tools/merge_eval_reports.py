"""Merges the report.json files of shards of one suite and split into one report.

The real repo's CLI: python -m app.tools.merge_eval_reports --out merged.json a.json b.json ...
Needs two reports or more of the same report_version, suite, split and policy; sums the counts
of every metric and computes precision, recall and f1 again from the sums; lists the datasets of
all shards; prints the path it wrote. (The example has span_detection only: the real tool also
merges policy_action and mask_leakage, and sums the runs' timing.)
"""

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

from app.eval.cli import scores

COUNTS = ("true_positives", "false_positives", "false_negatives")


def rescore(counts):
    return scores(*(counts.get(key, 0) for key in COUNTS))


def add_counts(total, metric):
    for key in COUNTS:
        total[key] = total.get(key, 0) + int(metric.get(key, 0))


def merge_span(parts):
    family_counts, label_counts, datasets = {}, {}, []
    for part in parts:
        combined = part.get("metrics", {}).get("combined", {})
        for family, metric in combined.items():
            if family == "per_label_char":
                for label, counts in metric.items():
                    add_counts(label_counts.setdefault(label, {}), counts)
            else:
                add_counts(family_counts.setdefault(family, {}), metric)
        datasets.extend(part.get("metrics", {}).get("datasets", []))
    combined = {family: rescore(counts) for family, counts in family_counts.items()}
    combined["per_label_char"] = {label: rescore(label_counts[label]) for label in sorted(label_counts)}
    exact = combined.get("exact_canonical", {})
    return {
        "elapsed_seconds": round(sum(float(p.get("elapsed_seconds", 0)) for p in parts), 6),
        "sample_count": sum(int(p.get("sample_count", 0)) for p in parts),
        "metrics": {"combined": combined, "datasets": datasets},
        "headline": {"risk_weighted_char_recall": exact.get("recall", 0.0)},
        "models": parts[0].get("models", []),
    }


def merge_reports(reports):
    if len(reports) < 2:
        raise ValueError("need at least two reports to merge")
    first = reports[0]
    for other in reports[1:]:
        if other.get("report_version") != first.get("report_version"):
            raise ValueError("report_version mismatch")
        for key in ("suite", "split", "policy_name"):
            if other.get("run", {}).get(key) != first.get("run", {}).get(key):
                raise ValueError("%s mismatch" % key)
    now = datetime.datetime.now(datetime.timezone.utc)
    run = dict(first.get("run", {}))
    run["run_id"] = "merged_eval_%s_%s_%s" % (run.get("suite"), run.get("split"), now.strftime("%Y%m%dT%H%M%SZ"))
    run["merged_from_reports"] = [r.get("run", {}).get("run_id") for r in reports]
    run["datasets"] = sorted({d for r in reports for d in r.get("run", {}).get("datasets", [])})
    merged = {"report_version": first.get("report_version"), "generated_at_utc": now.isoformat(), "run": run, "tasks": {}}
    spans = [r["tasks"]["span_detection"] for r in reports if "span_detection" in r.get("tasks", {})]
    if spans:
        merged["tasks"]["span_detection"] = merge_span(spans)
    run["finished_at_utc"] = now.isoformat()
    return merged


def main(argv=None):
    p = argparse.ArgumentParser(description="Merge multiple eval report.json files into a single aggregate report.")
    p.add_argument("--out", required=True, help="Output path for merged report.json")
    p.add_argument("reports", nargs="+", help="Input report.json paths")
    args = p.parse_args(argv)
    reports = []
    for path in args.reports:
        with open(path, encoding="utf-8") as handle:
            reports.append(json.load(handle))
    merged = merge_reports(reports)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(merged, handle, ensure_ascii=False, indent=2)
    print(str(Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
