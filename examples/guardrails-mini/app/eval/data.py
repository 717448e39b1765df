"""Loading a split the way the real eval does: `load_dataset(hf_id, split=..., token=...,
cache_dir=<cache root>)`, which reads (offline) or prepares (online) the Arrow cache at
`<root>/<org>___<name>/` and writes lock files into `<root>` even offline.

Without the `datasets` package (the demo's bare venv), the same cache root is read from a JSONL
export at `<root>/<org>___<name>/default/jsonl/<name>-<split>.jsonl`, with the same rules: a lock
file is written into the root, and a split that is not there fails as `datasets` fails offline.
"""

import json
import os


def cache_folder(root, hf_id):
    org, _, name = hf_id.rpartition("/")
    return os.path.join(root, "%s___%s" % (org, name) if org else name)


def _jsonl_rows(root, hf_id, split):
    name = hf_id.rpartition("/")[2]
    path = os.path.join(cache_folder(root, hf_id), "default", "jsonl", "%s-%s.jsonl" % (name, split))
    # datasets locks the cache while it reads it: a root that cannot be written fails here too.
    lock = os.path.join(root, "_%s_%s.lock" % (os.path.basename(cache_folder(root, hf_id)), split))
    with open(lock, "a", encoding="utf-8"):
        pass
    if not os.path.isfile(path):
        raise ConnectionError("Couldn't reach '%s' on the Hub (OfflineModeIsEnabled): split %s is not in the cache %s" % (hf_id, split, root))
    with open(path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return rows, "jsonl-%d" % len(rows)


def load_split(hf_id, split, cache_dir, token):
    """(rows, fingerprint) of one split."""
    try:
        import datasets  # noqa: PLC0415 (optional, as the eval extra makes it)
    except ImportError:
        return _jsonl_rows(cache_dir, hf_id, split)
    datasets.disable_progress_bars()
    ds = datasets.load_dataset(hf_id, split=split, token=token, cache_dir=cache_dir)
    return [dict(row) for row in ds], str(getattr(ds, "_fingerprint", "")) or None
