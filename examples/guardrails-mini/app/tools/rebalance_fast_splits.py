"""Rebuilds the `fast` split of each dataset of a suite on the Hub from its `full` split.

The guardrails-mini counterpart of the real repo's tool of the same name, with its flags:
  python -m app.tools.rebalance_fast_splits [--suite S] [--registry-path P] [--cache-dir D]
      [--seed N] [--size N] [--dry-run | --no-dry-run] [--push | --no-push] [--commit-message M]
A dry run (the default) prints the plan, one JSON line per dataset on stdout. With --no-dry-run
--push it commits data/fast-00000-of-00001.jsonl and the dataset card's split size (README.md
front matter) together, so that `datasets` still finds the sizes it verifies. The token is
$HF_TOKEN, else the one `hf auth login` stored. A cache prepared from the old commit is stale
afterwards: prepare it again.
"""

import argparse
import json
import os
import random
import re
import sys

from app.eval.cli import DEFAULT_CACHE_DIR, read_config
from app.eval.data import load_split


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m app.tools.rebalance_fast_splits")
    p.add_argument("--registry-path", default=os.path.join("configs", "eval", "suites.yaml"))
    p.add_argument("--suite", default="guardrails_ru")
    p.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--size", type=int, default=None, help="rows of the new fast split (default: the current one's)")
    p.add_argument("--dry-run", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--push", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--commit-message", default=None)
    return p.parse_args(argv)


def balanced(rows, size, seed):
    """Round-robin over labels (each shuffled with the seed), up to size rows."""
    by_label = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    rng = random.Random(seed)
    for label in sorted(by_label):
        rng.shuffle(by_label[label])
    picked, queues = [], [by_label[label] for label in sorted(by_label)]
    while len(picked) < size and any(queues):
        for queue in queues:
            if queue and len(picked) < size:
                picked.append(queue.pop())
    return sorted(picked, key=lambda row: row["id"])


def main(argv=None):
    args = parse_args(argv)
    registry = read_config(args.registry_path)
    suite = registry["suites"][args.suite]
    root = os.environ["HF_HOME"] if args.cache_dir == DEFAULT_CACHE_DIR and os.environ.get("HF_HOME") else args.cache_dir
    token = os.environ.get("HF_TOKEN") or True
    if args.push and not args.dry_run:
        from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
    for dataset_id in suite["datasets"]:
        hf_id = registry["datasets"][dataset_id]["hf_id"]
        full, _ = load_split(hf_id, "full", root, token)
        fast, _ = load_split(hf_id, "fast", root, token)
        rows = balanced(full, args.size or len(fast), args.seed)
        labels = {}
        for row in rows:
            labels[row["label"]] = labels.get(row["label"], 0) + 1
        print(json.dumps({"dataset_id": dataset_id, "hf_id": hf_id, "full_rows": len(full), "fast_rows": len(rows), "labels": labels}), flush=True)
        if args.dry_run or not args.push:
            continue
        card = open(hf_hub_download(hf_id, "README.md", repo_type="dataset", token=token), encoding="utf-8").read()
        card = re.sub(r"(- name: fast\n\s+num_examples: )\d+", lambda m: m.group(1) + str(len(rows)), card)
        data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
        commit = HfApi().create_commit(hf_id, repo_type="dataset", token=token, commit_message=args.commit_message or "Rebalance the fast split",
                                       operations=[CommitOperationAdd("data/fast-00000-of-00001.jsonl", data), CommitOperationAdd("README.md", card.encode("utf-8"))])
        sys.stderr.write("[push] %s: fast split of %d rows at %s\n" % (hf_id, len(rows), commit.oid))
    if args.dry_run:
        sys.stderr.write("[dry-run] nothing pushed; pass --push --no-dry-run to commit the new fast splits\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
