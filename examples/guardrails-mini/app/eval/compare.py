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


def span(report):
    return ((report or {}).get("tasks") or {}).get("span_detection") or {}


def headline(report):
    try:
        return float((span(report).get("headline") or {}).get("risk_weighted_char_recall", 0.0) or 0.0)
    except (TypeError, ValueError):
        return 0.0


def label_recalls(report):
    per_label = ((span(report).get("metrics") or {}).get("combined") or {}).get("per_label_char") or {}
    if not isinstance(per_label, dict):
        return {}
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
             "", "## Worst Per-Label Char Recall Deltas", ""]
    item_line = lambda item: "- `%s`: %+.4f (base=%.4f, new=%.4f)" % (item["label"], item["delta"], item["base"], item["new"])
    lines += [item_line(item) for item in diff["span_detection"]["worst_10"]]
    lines += ["", "## Best Per-Label Char Recall Deltas", ""]
    lines += [item_line(item) for item in diff["span_detection"]["best_10"]]
    return "\n".join(lines).rstrip() + "\n"


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
