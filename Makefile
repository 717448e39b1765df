# Entry points. Every target is a thin wrapper: the README says what each does.
.PHONY: help install test lint demo bench-sync sync download-models download-datasets check-models check-datasets

# The eval repo (where configs/ and pyproject.toml are) and an optional prebuilt venv.
PROJECT_DIR ?= .
VENV_FLAG = $(if $(VENV),--venv "$(VENV)")

help:
	@echo "make install      install dependencies (npm ci)"
	@echo "make test         run the test suite (starts its own sshd and pod sandboxes; needs root)"
	@echo "make lint         type check and lint"
	@echo "make demo         run the example eval over SSH on a throwaway local sshd (no network, no uv)"
	@echo "make bench-sync   our push against plain rsync on a 5,000-file tree (needs root)"
	@echo "make sync HOST=gpu-box REMOTE_DIR=/home/me/guardrails   push the code only"
	@echo "make download-models MODELS_DIR=/data/models [VENV=...]   fetch the policy's models + manifest"
	@echo "make download-datasets DATASETS_DIR=/data/datasets [SUITE=...] [VENV=...]"
	@echo "make check-models MODELS_DIR=...   make check-datasets DATASETS_DIR=...   verify against the manifest"

install:
	npm ci

test:
	npm test

lint:
	npm run lint

demo:
	./examples/demo.ts

bench-sync:
	npm run bench:sync

sync:
	@test -n "$(HOST)" -a -n "$(REMOTE_DIR)" || { echo "usage: make sync HOST=host REMOTE_DIR=/abs/dir"; exit 2; }
	./scripts/remote_eval/sync_code.ts --host "$(HOST)" --remote-dir "$(REMOTE_DIR)"

download-models:
	@test -n "$(MODELS_DIR)" || { echo "usage: make download-models MODELS_DIR=/abs/dir [VENV=/path/to/venv]"; exit 2; }
	./scripts/download_models.ts --models-dir "$(MODELS_DIR)" --project-dir "$(PROJECT_DIR)" $(VENV_FLAG)

download-datasets:
	@test -n "$(DATASETS_DIR)" || { echo "usage: make download-datasets DATASETS_DIR=/abs/dir [SUITE=name] [VENV=/path/to/venv]"; exit 2; }
	./scripts/download_datasets.ts --datasets-dir "$(DATASETS_DIR)" --project-dir "$(PROJECT_DIR)" $(if $(SUITE),--suite "$(SUITE)") $(VENV_FLAG)

check-models:
	@test -n "$(MODELS_DIR)" || { echo "usage: make check-models MODELS_DIR=/abs/dir"; exit 2; }
	./scripts/download_models.ts --check --models-dir "$(MODELS_DIR)" --project-dir "$(PROJECT_DIR)" $(if $(CHECKSUMS),--verify-checksums)

check-datasets:
	@test -n "$(DATASETS_DIR)" || { echo "usage: make check-datasets DATASETS_DIR=/abs/dir [SUITE=name]"; exit 2; }
	./scripts/download_datasets.ts --check --datasets-dir "$(DATASETS_DIR)" --project-dir "$(PROJECT_DIR)" $(if $(SUITE),--suite "$(SUITE)") $(if $(CHECKSUMS),--verify-checksums)
