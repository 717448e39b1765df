# This repo's own entry points. The targets for an eval repo live in remote-eval.mk, which an eval
# repo includes from its own Makefile (README, "Use it in your eval repo"); this one includes it too.
.PHONY: help install test lint demo bench-sync download-models download-datasets check-models check-datasets

help:
	@echo "make install      install dependencies (npm ci)"
	@echo "make test         run the test suite (starts its own sshd and pod sandboxes; needs root)"
	@echo "make lint         type check and lint"
	@echo "make demo         run the example eval over SSH on a throwaway local sshd (no network, no uv)"
	@echo "make bench-sync   our push against plain rsync on a 5,000-file tree (needs root)"
	@echo "make remote-sync HOST=gpu-box REMOTE_DIR=/home/me/guardrails [PROJECT_DIR=.] [SSH_CONFIG=...] [SSH_OPTIONS=...]   push the code only"
	@echo "make download-models MODELS_DIR=/data/models [PROJECT_DIR=.] [POLICY_PATH=...] [VENV=...]   fetch the policy's models + manifest"
	@echo "make download-datasets DATASETS_DIR=/data/datasets [PROJECT_DIR=.] [SUITE=...] [SPLITS=...] [VENV=...]"
	@echo "make check-models MODELS_DIR=... [CHECKSUMS=1]   make check-datasets DATASETS_DIR=... [CHECKSUMS=1] [AGAINST_HUB=1]   verify against the manifest"
	@echo "  PROJECT_DIR: the eval repo (default .); VENV: a prebuilt venv instead of uv; CHECKSUMS=1: sha256 of every file, not only sizes"
	@echo "(in an eval repo with its own download-* targets, the same are assets-download-models, ...)"

include $(dir $(realpath $(lastword $(MAKEFILE_LIST))))remote-eval.mk

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

# Here, with no eval repo Makefile to clash with, the asset targets also go by their short names.
download-models: assets-download-models
download-datasets: assets-download-datasets
check-models: assets-check-models
check-datasets: assets-check-datasets
