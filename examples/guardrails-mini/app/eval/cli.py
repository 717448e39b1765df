"""The guardrails-mini eval: scores a simple PII detector on a suite's datasets.

It keeps the contract of the real eval CLI:
    python -m app.eval.cli --suite S --split P --env-file .env.eval --output-dir reports/evaluations
prints one JSON object on stdout ({"run_dir", "report_json", "report_md", "metrics_csv", ...}),
logs to stderr, and prints that JSON even when it fails, then exits non-zero.

Models come from GR_MODEL_DIR (its manifest.json names the token-classifier models; each holds a
detector.json of regular expressions per label). Splits are loaded by Hugging Face repo id: with
the `datasets` library when it is installed (offline when HF_DATASETS_OFFLINE=1), otherwise from
the JSONL files in the Hub cache under HUGGINGFACE_HUB_CACHE. Only the standard library is needed.

Switches for testing the runner (not part of the contract): --fail-after-report makes the run fail
after writing its report; --claim-run-dir PATH prints PATH as run_dir instead of the real one;
--sleep S waits S seconds before scoring; --print-token prints HF_TOKEN to stderr.
"""

import argparse
import csv
import datetime
import glob
import json
import os
import random
import re
import sys
import time


def log(message):
    sys.stderr.write("[guardrails-mini] %s\n" % message)
    sys.stderr.flush()


def read_config(path):
    """The configs are YAML in its JSON-compatible form: drop comment lines, parse as JSON."""
    with open(path, encoding="utf-8") as handle:
        return json.loads("".join(line for line in handle if not line.lstrip().startswith("#")))


def read_env_file(path):
    """KEY=VALUE lines (the eval would read its secrets from here)."""
    values = {}
    if path and os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    key, _, value = line.partition("=")
                    values[key.strip().replace("export ", "")] = value.strip().strip("'\"")
    return values


def load_detectors(model_dir):
    manifest_path = os.path.join(model_dir, "manifest.json")
    if not os.path.isfile(manifest_path):
        raise RuntimeError("no manifest.json in GR_MODEL_DIR=%s" % model_dir)
    with open(manifest_path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    detectors = []
    for entry in manifest.get("token_classifier_models", []):
        with open(os.path.join(model_dir, entry["path"], "detector.json"), encoding="utf-8") as handle:
            spec = json.load(handle)
        patterns = {label: re.compile(pattern) for label, pattern in spec["patterns"].items()}
        detectors.append({"name": entry["model_name"], "sha": entry.get("sha"), "patterns": patterns})
    if not detectors:
        raise RuntimeError("the models manifest lists no token_classifier model")
    return detectors


def load_split(hf_id, split):
    """Rows of one split, by repo id: through `datasets` when installed, else from the Hub cache."""
    try:
        import datasets  # noqa: PLC0415 (optional)
    except ImportError:
        datasets = None
    if datasets is not None:
        datasets.disable_progress_bars()
        return [dict(row) for row in datasets.load_dataset(hf_id, split=split)]
    hub = os.environ.get("HUGGINGFACE_HUB_CACHE") or os.path.join(os.environ.get("HF_HOME", ""), "hub")
    repo_dir = os.path.join(hub, "datasets--" + hf_id.replace("/", "--"))
    with open(os.path.join(repo_dir, "refs", "main"), encoding="utf-8") as handle:
        sha = handle.read().strip()
    files = sorted(glob.glob(os.path.join(repo_dir, "snapshots", sha, "data", "%s-*.jsonl" % split)))
    if not files:
        raise RuntimeError("split %s of %s is not in the Hub cache %s" % (split, hf_id, hub))
    rows = []
    for path in files:
        with open(path, encoding="utf-8") as handle:
            rows.extend(json.loads(line) for line in handle if line.strip())
    return rows


def detect(detectors, text):
    for detector in detectors:
        for label, pattern in detector["patterns"].items():
            if pattern.search(text):
                return label
    return "NONE"


def score(rows, detectors):
    """Per-label precision, recall and f1 of the detector's label against the gold label."""
    counts = {}
    for row in rows:
        predicted, gold = detect(detectors, row["text"]), row["label"]
        for label in {predicted, gold} - {"NONE"}:
            tp_fp_fn = counts.setdefault(label, [0, 0, 0])
            if predicted == label and gold == label:
                tp_fp_fn[0] += 1
            elif predicted == label:
                tp_fp_fn[1] += 1
            else:
                tp_fp_fn[2] += 1
    metrics = {}
    for label, (tp, fp, fn) in sorted(counts.items()):
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        metrics[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": tp + fn}
    return metrics


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m app.eval.cli")
    parser.add_argument("--suite", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--env-file", default=".env.eval")
    parser.add_argument("--output-dir", default="reports/evaluations")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--fail-after-report", action="store_true")
    parser.add_argument("--claim-run-dir")
    parser.add_argument("--sleep", type=float, default=0)
    parser.add_argument("--print-token", action="store_true")
    args = parser.parse_args(argv)

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_id = "%s-%s-%s-%04x" % (args.suite, args.split, stamp, random.getrandbits(16))
    run_dir = os.path.abspath(os.path.join(args.output_dir, run_id))
    os.makedirs(run_dir)
    result = {
        "run_id": run_id,
        "run_dir": run_dir,
        "report_json": os.path.join(run_dir, "report.json"),
        "report_md": os.path.join(run_dir, "report.md"),
        "metrics_csv": os.path.join(run_dir, "metrics.csv"),
        "status": "ok",
    }
    try:
        secrets = read_env_file(args.env_file)
        if args.print_token:
            log("token in use: %s" % (os.environ.get("HF_TOKEN") or secrets.get("HF_TOKEN", "")))
        if args.sleep:
            log("sleeping %.1f s" % args.sleep)
            time.sleep(args.sleep)
        suites = read_config(os.path.join("configs", "eval", "suites.yaml"))
        suite = suites["suites"][args.suite]
        if args.split not in suite.get("splits", [args.split]):
            raise RuntimeError("split %s is not declared for suite %s" % (args.split, args.suite))
        detectors = load_detectors(os.environ["GR_MODEL_DIR"])
        log("runtime %s, offline %s, %d detector(s), CUDA_VISIBLE_DEVICES=%s" % (
            os.environ.get("GR_RUNTIME_MODE", "cpu"), os.environ.get("GR_OFFLINE_MODE", "false"),
            len(detectors), os.environ.get("CUDA_VISIBLE_DEVICES", "")))
        rows_out, report_sets = [], []
        all_rows = []
        for dataset_id in suite["datasets"]:
            hf_id = suites["datasets"][dataset_id]["hf_id"]
            rows = load_split(hf_id, args.split)
            log("%s split %s: %d rows" % (hf_id, args.split, len(rows)))
            all_rows.extend(rows)
            for label, m in score(rows, detectors).items():
                rows_out.append(["pii_detection", hf_id, "label:" + label, m["precision"], m["recall"], m["f1"], m["support"]])
            report_sets.append({"hf_id": hf_id, "split": args.split, "rows": len(rows)})
        for label, m in score(all_rows, detectors).items():
            rows_out.append(["pii_detection", "overall", "label:" + label, m["precision"], m["recall"], m["f1"], m["support"]])
        with open(result["metrics_csv"], "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["task", "scope", "metric_family", "precision", "recall", "f1", "support"])
            writer.writerows(rows_out)
        report = {
            "run_id": run_id, "suite": args.suite, "split": args.split, "datasets": report_sets,
            "models": [{"name": d["name"], "sha": d["sha"]} for d in detectors],
            "runtime": os.environ.get("GR_RUNTIME_MODE", "cpu"), "offline": os.environ.get("GR_OFFLINE_MODE") == "true",
            "environment": {k: os.environ.get(k) for k in ("GR_MODEL_DIR", "HF_HOME", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE", "CUDA_VISIBLE_DEVICES")},
        }
        with open(result["report_json"], "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
        with open(result["report_md"], "w", encoding="utf-8") as handle:
            handle.write("# %s / %s\n\n| scope | metric | precision | recall | f1 |\n| --- | --- | --- | --- | --- |\n" % (args.suite, args.split))
            for row in rows_out:
                handle.write("| %s | %s | %s | %s | %s |\n" % (row[1], row[2], row[3], row[4], row[5]))
        if args.fail_after_report:
            raise RuntimeError("failing on purpose after writing the report (--fail-after-report)")
    except Exception as error:  # the contract: print the JSON, then exit non-zero
        log("failed: %s" % error)
        result["status"] = "failed"
        result["error"] = str(error)
    if args.claim_run_dir is not None:
        result["run_dir"] = args.claim_run_dir
    print(json.dumps(result))
    return 0 if result["status"] == "ok" else 3


if __name__ == "__main__":
    sys.exit(main())
