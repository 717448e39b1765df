"""The guardrails-mini eval: scores a simple PII detector on a suite's datasets.

It keeps the real guardrails eval CLI's contract wherever the remote runner depends on it:
  python -m app.eval.cli --suite S --split P --env-file .env.eval --output-dir reports/evaluations
- the env file fills only variables that are not set (app/eval/env.py, the real reading);
- the token is $HF_TOKEN (--hf-token-env), else, online, the token `hf auth login` stored
  (token=True: huggingface_hub reads HF_TOKEN_PATH, default $HF_HOME/token);
- the cache root is --cache-dir (default .eval_cache/hf); left at its default while HF_HOME is set,
  it is $HF_HOME. HF_HOME, HUGGINGFACE_HUB_CACHE and HF_DATASETS_CACHE are set only where unset, and
  every split is loaded with load_dataset(hf_id, split=..., token=..., cache_dir=<root>);
- sampled indices are written under <root>/_eval/ (the real CLI writes them when it samples; this
  one always does, so a cache root that cannot be written fails every run, not only some);
- models come from GR_MODEL_DIR/token_classifier/<org>__<name>/ for every token_classifier
  recognizer of the policy (here: a detector.json of regular expressions per label);
- with runtime cuda the embedded PyTriton ports are held for the whole run (app/eval/pytriton.py);
- failures while loading (unknown suite or dataset, a split not in the cache offline, a port in
  use) end with a traceback and no JSON; failures while scoring still write the report, print the
  JSON {"report_json", "report_md", "metrics_csv", "run_dir"} on stdout, then exit 1.

Switches for testing the runner (not part of the contract): --fail-after-report makes the run fail
after writing its report; --claim-run-dir PATH prints PATH as run_dir instead of the real one;
--sleep S waits S seconds before scoring; --print-token prints the token in use to stderr;
GR_MINI_DATASET_SECONDS="id=S,..." makes scoring each listed dataset take S seconds more (uneven
datasets, for sharding); GR_MINI_FAIL_DATASETS="id,..." fails a run that scores a listed dataset,
after writing its report (one failing shard). The report keeps the real one's shape where the runner and the merger
read it: tasks.span_detection.metrics.combined (counts, precision, recall, f1) and .datasets (one
entry per dataset with its sample_count and elapsed_seconds).
"""

import argparse
import csv
import datetime
import hashlib
import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from app.eval import data, pytriton
from app.eval.env import load_env_file

REPORT_VERSION = "3.0"
DEFAULT_CACHE_DIR = ".eval_cache/hf"
TRUE = {"1", "true", "yes", "on"}


def log(message):
    sys.stderr.write("[guardrails-mini] %s\n" % message)
    sys.stderr.flush()


def read_config(path):
    """The configs are YAML in its JSON-compatible form: drop comment lines, parse as JSON."""
    with open(path, encoding="utf-8") as handle:
        return json.loads("".join(line for line in handle if not line.lstrip().startswith("#")))


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m app.eval.cli", description="guardrails-mini evaluation runner.")
    p.add_argument("--registry-path", default=os.path.join("configs", "eval", "suites.yaml"))
    p.add_argument("--suite", default="guardrails_ru")
    p.add_argument("--dataset", action="append", default=None, help="Dataset id override (repeatable).")
    p.add_argument("--split", default=None, help="Split override (fast|full). Default uses suite default.")
    p.add_argument("--tasks", default="all")
    p.add_argument("--policy-path", default="configs/policy.yaml")
    p.add_argument("--policy-name", default=None)
    p.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="HF hub/datasets cache root (unless HF_HOME already set).")
    p.add_argument("--output-dir", default="reports/evaluations")
    p.add_argument("--env-file", default=".env.eval")
    p.add_argument("--hf-token-env", default="HF_TOKEN")
    p.add_argument("--offline", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--runtime", choices=["cpu", "cuda"], default=None)
    p.add_argument("--max-samples", type=int, default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--fail-after-report", action="store_true")
    p.add_argument("--claim-run-dir")
    p.add_argument("--sleep", type=float, default=0)
    p.add_argument("--print-token", action="store_true")
    return p.parse_args(argv)


def configure_hf_cache(cache_dir, force):
    root = os.path.realpath(os.path.expanduser(cache_dir))
    os.makedirs(root, exist_ok=True)
    for name, value in (("HF_HOME", root), ("HUGGINGFACE_HUB_CACHE", os.path.join(root, "hub")), ("HF_DATASETS_CACHE", os.path.join(root, "datasets"))):
        if force or name not in os.environ:
            os.environ[name] = value


def model_dirs(policy, model_dir, offline):
    """Where each token_classifier model of the policy is loaded from."""
    found = []
    for name, definition in sorted(policy.get("recognizer_definitions", {}).items()):
        if str(definition.get("type", "")).lower() != "token_classifier":
            continue
        model = str(definition.get("params", {}).get("model_name", "scanpatch/pii-ner-nemotron"))
        local = os.path.join(model_dir or "", "token_classifier", model.replace("/", "__"))
        if not model_dir or not os.path.isdir(local):
            raise FileNotFoundError("Token classifier model not found in model_dir: %s%s" % (local, " (offline)" if offline else ""))
        found.append((model, local))
    return found


def load_detectors(dirs):
    detectors = []
    for model, local in dirs:
        with open(os.path.join(local, "detector.json"), encoding="utf-8") as handle:
            spec = json.load(handle)
        detectors.append({"name": model, "patterns": {label: re.compile(p) for label, p in spec["patterns"].items()}})
    if not detectors:
        raise RuntimeError("the policy lists no token_classifier model")
    return detectors


def write_indices(root, dataset_id, split, fingerprint, count):
    """The sampled indices, cached under <root>/_eval/ as the real CLI caches them."""
    slug = re.sub(r"[^a-zA-Z0-9._-]+", "_", dataset_id).strip("_").lower()
    key = hashlib.sha256(json.dumps([dataset_id, split, fingerprint or ""]).encode()).hexdigest()[:20]
    folder = os.path.join(root, "_eval", "splits", slug)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "%s__all__none__seed42__%s.json" % (split, key))
    if not os.path.isfile(path):
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"dataset_id": dataset_id, "split": split, "indices": list(range(count))}, handle)
    return path


def detect(detectors, text):
    for detector in detectors:
        for label, pattern in detector["patterns"].items():
            if pattern.search(text):
                return label
    return "NONE"


def score(rows, predictions):
    """Precision, recall, f1 of the predicted label against the gold label: over all labels, and per label."""
    counts = {}
    for row, predicted in zip(rows, predictions):
        gold = row["label"]
        for label in {predicted, gold} - {"NONE"}:
            c = counts.setdefault(label, [0, 0, 0])
            c[0 if predicted == gold else (1 if predicted == label else 2)] += 1
    per_label = {label: scores(*c) for label, c in sorted(counts.items())}
    overall = scores(*(sum(c[i] for c in counts.values()) for i in range(3)))
    return overall, per_label


def dataset_seconds():
    """GR_MINI_DATASET_SECONDS="ru_pii_chat=3,ru_pii_forms=1": seconds each dataset's scoring takes."""
    costs = {}
    for item in os.environ.get("GR_MINI_DATASET_SECONDS", "").split(","):
        name, _, seconds = item.partition("=")
        if name.strip() and seconds.strip():
            costs[name.strip()] = float(seconds)
    return costs


def scores(tp, fp, fn):
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"true_positives": tp, "false_positives": fp, "false_negatives": fn,
            "precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6),
            "residual_miss_ratio": round(1.0 - recall, 6)}


def stable_run_tag(payload):
    """Two runs at once (other GPUs, other ports) get other run ids, as in the real CLI."""
    return hashlib.sha1(json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()[:10]


def write_outputs(report, output_dir, run_id):
    out = os.path.join(os.path.realpath(output_dir), run_id)
    os.makedirs(out, exist_ok=True)
    paths = {"report_json": os.path.join(out, "report.json"), "report_md": os.path.join(out, "report.md"),
             "metrics_csv": os.path.join(out, "metrics.csv"), "run_dir": out}
    with open(paths["report_json"], "w", encoding="utf-8") as handle:
        json.dump(report, handle, ensure_ascii=False, indent=2)
    rows = metric_rows(report)
    fields = sorted({key for row in rows for key in row})
    with open(paths["metrics_csv"], "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        if fields:
            writer.writeheader()
        writer.writerows(rows)
    with open(paths["report_md"], "w", encoding="utf-8") as handle:
        handle.write("# %s / %s\n\n| scope | dataset | label | precision | recall | f1 |\n| --- | --- | --- | --- | --- | --- |\n" % (report["run"]["suite"], report["run"]["split"]))
        for row in rows:
            handle.write("| %s | %s | %s | %s | %s | %s |\n" % (row["scope"], row["dataset"], row["label"], row["precision"], row["recall"], row["f1"]))
    return paths


def metric_rows(report):
    """The rows of metrics.csv, from report.json's tasks as the real write_outputs reads them."""
    combined = report["tasks"].get("span_detection", {}).get("metrics", {}).get("combined", {})
    rows = [{"task": "span_detection", "scope": "combined", "dataset": "", "label": "", "metric_family": family, **combined[family]}
            for family in ("exact_canonical", "overlap_canonical", "char_canonical", "token_canonical") if family in combined]
    rows += [{"task": "span_detection", "scope": "label", "dataset": "", "label": label, "metric_family": "per_label_char", **metric}
             for label, metric in combined.get("per_label_char", {}).items()]
    return rows


def main(argv=None):
    args = parse_args(argv)
    load_env_file(args.env_file)
    started_at = datetime.datetime.now(datetime.timezone.utc)
    registry = read_config(args.registry_path)
    suite = registry["suites"].get(args.suite)
    if suite is None:
        raise ValueError("unknown suite: %s (known: %s)" % (args.suite, sorted(registry["suites"])))
    dataset_ids = list(args.dataset) if args.dataset else list(suite["datasets"])
    for dataset_id in dataset_ids:
        if dataset_id not in registry["datasets"]:
            raise ValueError("unknown dataset id in selection: %s" % dataset_id)
    split = str(args.split or suite.get("default_split", "fast"))
    tasks = ["span_detection"] if args.tasks == "all" else [t.strip() for t in args.tasks.split(",") if t.strip()]

    force_cache = args.cache_dir != DEFAULT_CACHE_DIR
    configure_hf_cache(args.cache_dir, force_cache)
    offline = args.offline or os.environ.get("GR_OFFLINE_MODE", "").lower() in TRUE
    if offline:
        os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    cache_root = args.cache_dir
    if not force_cache and os.environ.get("HF_HOME"):
        cache_root = os.path.realpath(os.path.expanduser(os.environ["HF_HOME"]))
    if args.runtime is not None:
        os.environ["GR_RUNTIME_MODE"] = args.runtime
    runtime = os.environ.get("GR_RUNTIME_MODE", "cpu")

    policy = read_config(args.policy_path)
    policy_name = args.policy_name or policy.get("default_policy")
    if policy_name not in policy.get("policies", {}):
        raise RuntimeError("unknown policy '%s'" % policy_name)

    enable_nemotron = os.environ.get("GR_ENABLE_NEMOTRON", "true").lower() in TRUE
    run_tag = stable_run_tag({
        "suite": args.suite, "split": split, "datasets": sorted(dataset_ids), "policy_name": policy_name, "tasks": tasks,
        "runtime": runtime, "enable_nemotron": enable_nemotron, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "pytriton_url": os.environ.get("GR_PYTRITON_URL"), "pytriton_grpc_port": os.environ.get("GR_PYTRITON_GRPC_PORT"),
        "pytriton_metrics_port": os.environ.get("GR_PYTRITON_METRICS_PORT"),
    })
    run_id = "eval_%s_%s_%s_%s" % (args.suite, split, started_at.strftime("%Y%m%dT%H%M%SZ"), run_tag)

    token_from_env = os.environ.get(args.hf_token_env)
    offline_effective = offline or os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
    # Without HF_TOKEN, online: the token `hf auth login` stored (token=True), as in the real CLI.
    hf_token = token_from_env if token_from_env else (True if not offline_effective else None)
    if args.print_token:
        shown = token_from_env
        if hf_token is True:
            path = os.environ.get("HF_TOKEN_PATH") or os.path.join(os.environ.get("HF_HOME", ""), "token")
            shown = open(path, encoding="utf-8").read().strip() if os.path.isfile(path) else "(no stored token at %s)" % path
        log("token in use: %s" % (shown or "(none)"))

    # As apply_model_env: a models dir gets its own hf_cache when it can be written.
    model_dir = os.environ.get("GR_MODEL_DIR")
    if model_dir:
        try:
            os.makedirs(os.path.join(model_dir, "hf_cache"), exist_ok=True)
        except OSError:
            pass

    server = pytriton.start() if runtime == "cuda" and enable_nemotron else None
    if server:
        log("embedded PyTriton on %s (grpc %d, metrics %d)" % (server["url"], server["ports"]["grpc"], server["ports"]["metrics"]))

    loaded, load_meta = [], []
    for dataset_id in dataset_ids:
        hf_id = registry["datasets"][dataset_id]["hf_id"]
        rows, fingerprint = data.load_split(hf_id, split, cache_root, hf_token)
        if args.max_samples is not None:
            rows = rows[: args.max_samples]
        indices = write_indices(cache_root, dataset_id, split, fingerprint, len(rows))
        loaded.append((dataset_id, hf_id, rows))
        load_meta.append({"dataset_id": dataset_id, "hf_id": hf_id, "split": split, "sample_count": len(rows), "dataset_fingerprint": fingerprint, "indices_cache_path": indices})
        log("[loaded] dataset=%s split=%s samples=%d" % (dataset_id, split, len(rows)))

    report = {
        "report_version": REPORT_VERSION,
        "generated_at_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "run": {
            "run_id": run_id, "started_at_utc": started_at.isoformat(), "suite": args.suite, "split": split,
            "datasets": dataset_ids, "tasks": tasks, "policy_name": policy_name, "max_samples": args.max_samples,
            "cache_dir": os.path.realpath(cache_root), "offline": bool(args.offline), "model_dir": model_dir, "workers": args.workers,
            "runtime": {"mode": runtime},
            "settings": {"pytriton_url": server["url"] if server else os.environ.get("GR_PYTRITON_URL", "127.0.0.1:8000"),
                         "pytriton_ports": server["ports"] if server else None},
            "env": {k: os.environ.get(k) for k in ("GR_RUNTIME_MODE", "GR_ENABLE_NEMOTRON", "CUDA_VISIBLE_DEVICES", "GR_OFFLINE_MODE")},
            "dataset_load": load_meta,
        },
        "tasks": {},
    }
    fatal = None
    try:
        if args.sleep:
            log("sleeping %.1f s" % args.sleep)
            time.sleep(args.sleep)
        detectors = load_detectors(model_dirs(policy, model_dir, offline))
        log("runtime %s, offline %s, %d detector(s), CUDA_VISIBLE_DEVICES=%s" % (
            runtime, str(offline).lower(), len(detectors), os.environ.get("CUDA_VISIBLE_DEVICES", "")))
        everything, predicted_all, per_dataset = [], [], []
        costs = dataset_seconds()
        task_started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
            for dataset_id, hf_id, rows in loaded:
                dataset_started = time.perf_counter()
                # GR_MINI_DATASET_SECONDS: how long scoring a dataset takes (a GPU's work, for sharding tests).
                time.sleep(costs.get(dataset_id, 0))
                predicted = list(pool.map(lambda row: detect(detectors, row["text"]), rows))
                everything.extend(rows)
                predicted_all.extend(predicted)
                overall_ds, per_label_ds = score(rows, predicted)
                per_dataset.append({
                    "dataset_id": dataset_id, "split": split, "sample_count": len(rows),
                    "elapsed_seconds": round(time.perf_counter() - dataset_started, 6),
                    "metrics": {"exact_canonical": overall_ds, "per_label_char": per_label_ds},
                })
        overall, per_label = score(everything, predicted_all)
        # The real report's shape (tasks.span_detection.metrics.combined and .datasets), which
        # metrics.csv and the merger read.
        report["tasks"]["span_detection"] = {
            "elapsed_seconds": round(time.perf_counter() - task_started, 6),
            "sample_count": len(everything),
            "metrics": {"combined": {"exact_canonical": overall, "per_label_char": per_label}, "datasets": per_dataset},
            "headline": {"risk_weighted_char_recall": overall["recall"]},
            "models": [d["name"] for d in detectors],
        }
        if args.fail_after_report:
            raise RuntimeError("failing on purpose after scoring (--fail-after-report)")
        doomed = set(filter(None, os.environ.get("GR_MINI_FAIL_DATASETS", "").split(","))) & {d["dataset_id"] for d in per_dataset}
        if doomed:
            raise RuntimeError("failing on purpose after scoring %s (GR_MINI_FAIL_DATASETS)" % ", ".join(sorted(doomed)))
    except BaseException as error:  # the report is still written, as in the real CLI
        fatal = error
        log("failed: %s" % error)
    report["run"]["finished_at_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    outputs = write_outputs(report, args.output_dir, run_id)
    if args.claim_run_dir is not None:
        outputs["run_dir"] = args.claim_run_dir
    print(json.dumps(outputs, ensure_ascii=False))
    sys.stdout.flush()
    if server:
        pytriton.stop(server)
    if fatal is not None:
        raise fatal
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
