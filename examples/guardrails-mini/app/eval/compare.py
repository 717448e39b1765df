"""Compares two report.json files: the real repo's CLI and outputs.

  python -m app.eval.compare --base BASE.json --new NEW.json --out DIR
writes DIR/diff.json (the headline's change and each label's character recall before and after)
and DIR/diff.md, and prints {"diff_dir", "diff_json", "diff_md"} on stdout.
"""

import argparse
import datetime
import json
import os
import sys


def headline(report):
    value = report.get("tasks", {}).get("span_detection", {}).get("headline", {}).get("risk_weighted_char_recall", 0.0)
    return float(value or 0.0)


def label_recalls(report):
    per_label = report.get("tasks", {}).get("span_detection", {}).get("metrics", {}).get("combined", {}).get("per_label_char", {})
    return {str(label): float(metric.get("recall", 0.0) or 0.0) for label, metric in per_label.items() if isinstance(metric, dict)}


def build_diff(base, new):
    before, after = label_recalls(base), label_recalls(new)
    labels = [{"label": label, "base": before.get(label, 0.0), "new": after.get(label, 0.0),
               "delta": after.get(label, 0.0) - before.get(label, 0.0)} for label in sorted(set(before) | set(after))]
    ordered = sorted(labels, key=lambda item: item["delta"])
    return {
        "diff_version": "1.0",
        "generated_at_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "headline": {"base": headline(base), "new": headline(new), "delta": headline(new) - headline(base)},
        "span_detection": {"per_label_char_recall": labels, "worst_10": ordered[:10], "best_10": ordered[::-1][:10]},
    }


def diff_markdown(diff):
    head = diff["headline"]
    lines = ["# Guardrails Eval Diff", "",
             "- Headline (risk-weighted char recall) delta: `%+.4f` (base=%.4f, new=%.4f)" % (head["delta"], head["base"], head["new"]),
             "", "## Per-label char recall deltas", ""]
    for item in diff["span_detection"]["per_label_char_recall"]:
        lines.append("- `%s`: %+.4f (base=%.4f, new=%.4f)" % (item["label"], item["delta"], item["base"], item["new"]))
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description="Compare two eval reports.")
    p.add_argument("--base", required=True, help="Path to base report.json")
    p.add_argument("--new", required=True, help="Path to new report.json")
    p.add_argument("--out", required=True, help="Output directory for diff.json/diff.md")
    args = p.parse_args(argv)
    with open(args.base, encoding="utf-8") as handle:
        base = json.load(handle)
    with open(args.new, encoding="utf-8") as handle:
        new = json.load(handle)
    diff = build_diff(base, new)
    out = os.path.realpath(os.path.expanduser(args.out))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "diff.json"), "w", encoding="utf-8") as handle:
        json.dump(diff, handle, ensure_ascii=False, indent=2)
    with open(os.path.join(out, "diff.md"), "w", encoding="utf-8") as handle:
        handle.write(diff_markdown(diff))
    print(json.dumps({"diff_dir": out, "diff_json": os.path.join(out, "diff.json"), "diff_md": os.path.join(out, "diff.md")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
