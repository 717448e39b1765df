"""Fetches one model or one dataset with Hugging Face's own clients, on the target.

Sent on stdin to `python -` in the eval repo's environment (uv run, or a prebuilt venv):
  python - model   REPO_ID REVISION DEST_DIR KNOWN_SHA
  python - dataset HF_ID   REVISION SPLITS   HF_HOME  KNOWN_SHA
  python - head    model|dataset REPO_ID REVISION       (the commit the revision is at now; nothing fetched)
Prints one JSON object on stdout: {"status": "fetched" | "skipped", "sha": ..., ...} or
{"status": "error", "kind": ..., "message": ...}, and progress lines "@@progress {"bytes": N,
"total": T or null}" on stderr. The token comes from HF_TOKEN in the environment (the caller exports it from the target's
.env.eval when needed), else from HF_TOKEN_PATH, never from the command line, and is never printed. KNOWN_SHA is the commit a complete earlier download has: when the revision still
resolves to it, nothing is fetched.
"""

import hashlib
import json
import os
import shutil
import sys
import threading
import time

PROGRESS_EVERY_S = 1.0
SKIP_DIRS = {".cache", ".remote-eval"}


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def tree_bytes(root):
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


def report_progress(root, stop, total):
    """Prints the bytes under root every second until stopped (downloads land there as they go),
    with the bytes expected in all when the Hub said (a model's files), for an ETA."""
    start = tree_bytes(root)
    while not stop.wait(PROGRESS_EVERY_S):
        sys.stderr.write("@@progress %s\n" % json.dumps({"bytes": max(0, tree_bytes(root) - start), "total": total}))
        sys.stderr.flush()


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_files(root, keep=lambda rel: True):
    """Regular files under root (not our own dirs, not lock files), with size and sha256."""
    found = []
    for folder, dirs, files in os.walk(root):
        rel_folder = os.path.relpath(folder, root)
        if rel_folder == ".":
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for name in files:
            full = os.path.join(folder, name)
            rel = os.path.normpath(os.path.join(rel_folder, name)).replace(os.sep, "/")
            if name.endswith(".lock") or not os.path.isfile(full) or os.path.islink(full) or not keep(rel):
                continue
            found.append({"path": rel, "size": os.path.getsize(full), "sha256": sha256_of(full)})
    return sorted(found, key=lambda f: f["path"])


def classify(error):
    """The kind of failure, for the caller's message: auth, gated, not_found, revision, network, other."""
    name = type(error).__name__
    text = str(error)
    status = getattr(getattr(error, "response", None), "status_code", None)
    if name == "GatedRepoError" or "gated" in text.lower():
        return "gated"
    if name == "RevisionNotFoundError":
        return "revision"
    if name in ("RepositoryNotFoundError", "DatasetNotFoundError"):
        return "not_found"
    if status == 401:
        return "auth"
    if name in ("ConnectError", "ConnectionError", "ConnectTimeout", "ReadTimeout", "RemoteProtocolError", "ReadError",
                "OfflineModeIsEnabled", "LocalEntryNotFoundError") or "connect" in text.lower():
        return "network"
    return "other"


def with_progress(root, work, total=None):
    os.makedirs(root, exist_ok=True)
    stop = threading.Event()
    thread = threading.Thread(target=report_progress, args=(root, stop, total), daemon=True)
    thread.start()
    try:
        return work()
    finally:
        stop.set()
        thread.join()


def fetch_model(repo_id, revision, dest, known_sha):
    from huggingface_hub import HfApi, snapshot_download

    info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    if info.sha == known_sha:
        return {"status": "skipped", "sha": info.sha}
    started = time.time()
    # What is to come: the commit's files not already there at their size (an update fetches only those).
    siblings = info.siblings or []
    have = {}
    for folder, _, files in os.walk(dest):
        for name in files:
            full = os.path.join(folder, name)
            if os.path.isfile(full) and not os.path.islink(full):
                have[os.path.relpath(full, dest).replace(os.sep, "/")] = os.path.getsize(full)
    total = None
    if siblings and all(s.size is not None for s in siblings):
        total = sum(s.size for s in siblings if have.get(s.rfilename) != s.size)
    with_progress(dest, lambda: snapshot_download(repo_id, revision=info.sha, local_dir=dest), total)
    # Only this commit's files: an older commit fetched into the same folder may have left others.
    names = {sibling.rfilename for sibling in info.siblings or []}
    files = list_files(dest, lambda rel: rel in names)
    return {"status": "fetched", "sha": info.sha, "seconds": round(time.time() - started, 3), "files": files}


def dataset_cache_dirs(hf_home, hf_id):
    """Where one dataset lives under the cache root: its Arrow cache and its Hub files (and their locks)."""
    org, _, name = hf_id.rpartition("/")
    hub = "datasets--%s--%s" % (org, name) if org else "datasets--%s" % name
    return [os.path.join(hf_home, "%s___%s" % (org, name) if org else name),
            os.path.join(hf_home, hub), os.path.join(hf_home, "hub", hub), os.path.join(hf_home, "hub", ".locks", hub)]


def drop_dataset_cache(hf_home, hf_id):
    """Removes one dataset's cache (nothing else under the root); True when there was some."""
    found = [path for path in dataset_cache_dirs(hf_home, hf_id) if os.path.lexists(path)]
    for path in found:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    return bool(found)


def fetch_dataset(hf_id, revision, splits, hf_home, known_sha):
    import datasets
    from huggingface_hub import HfApi

    sha = HfApi().dataset_info(hf_id, revision=revision).sha
    if sha == known_sha:
        return {"status": "skipped", "sha": sha}
    started = time.time()
    rows, fingerprints = {}, {}

    def load_all():
        for split in splits:
            # Loaded by repo id with cache_dir=<root>, as the eval loads it (the Arrow cache lands in
            # <root>/<org>___<name>/), at the revision asked for.
            loaded = datasets.load_dataset(hf_id, split=split, revision=None if revision == "main" else revision, cache_dir=hf_home)
            rows[split] = loaded.num_rows
            fingerprints[split] = getattr(loaded, "_fingerprint", None)

    try:
        with_progress(hf_home, load_all)
    except Exception as error:
        # A cache that no longer loads (a truncated Arrow file, a half-written download) would fail
        # the same way every time: it is this dataset's own, so it is dropped and prepared once more.
        if classify(error) != "other" or not drop_dataset_cache(hf_home, hf_id):
            raise
        first = (str(error).strip().splitlines() or [""])[0][:300]
        print("its cache did not load (%s: %s); removed it and preparing it again from scratch" % (type(error).__name__, first), file=sys.stderr, flush=True)
        rows.clear()
        fingerprints.clear()
        with_progress(hf_home, load_all)
    org, _, name = hf_id.rpartition("/")
    markers = ("datasets--%s--%s/" % (org, name) if org else "datasets--%s/" % name, "%s___%s/" % (org, name) if org else "%s/" % name)
    mine = lambda rel: any(marker in rel + "/" for marker in markers)
    return {"status": "fetched", "sha": sha, "rows": rows, "fingerprints": fingerprints, "seconds": round(time.time() - started, 3), "files": list_files(hf_home, mine)}


def main(argv):
    mode = argv[0] if argv else ""
    try:
        if mode == "model" and len(argv) == 5:
            say(fetch_model(argv[1], argv[2], argv[3], argv[4]))
        elif mode == "head" and len(argv) == 4 and argv[1] in ("model", "dataset"):
            from huggingface_hub import HfApi

            info = (HfApi().model_info if argv[1] == "model" else HfApi().dataset_info)(argv[2], revision=argv[3])
            say({"status": "skipped", "sha": info.sha})
        elif mode == "dataset" and len(argv) == 6:
            say(fetch_dataset(argv[1], argv[2], [s for s in argv[3].split(",") if s], argv[4], argv[5]))
        else:
            say({"status": "error", "kind": "usage", "message": "usage: model REPO REV DEST SHA | dataset ID REV SPLITS HF_HOME SHA | head KIND REPO REV"})
            return 2
    except ImportError as error:
        say({"status": "error", "kind": "missing_package", "message": "%s (the eval environment needs huggingface_hub and datasets)" % error})
        return 3
    except Exception as error:  # reported to the caller, which turns it into a message and an exit code
        say({"status": "error", "kind": classify(error), "message": "%s: %s" % (type(error).__name__, str(error).strip().splitlines()[0] if str(error).strip() else "")})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
