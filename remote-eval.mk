# guardrails remote eval: make targets for the eval repo. Include it from the repo's own Makefile
# (`include remote-eval.mk`); no target here shares a name with the repo's (sync, download-models,
# check-models, eval-all, ...), and every default below yields to the repo's own (?=).
#
#   make remote-sync HOST=gpu-box REMOTE_DIR=/srv/eval/guardrails    push the code only
#   make assets-download-models   [MODELS_DIR=./.models]               fetch the policy's models + manifest
#   make assets-download-datasets [DATASETS_DIR=./.datasets]           prepare the suite's splits + manifest
#   make assets-check-models      [MODELS_DIR=...] [CHECKSUMS=1]       verify against manifest.json
#   make assets-check-datasets    [DATASETS_DIR=...] [AGAINST_HUB=1]   (AGAINST_HUB: stale vs the Hub?)
#
# Variables: PROJECT_DIR (the eval repo, default .), MODELS_DIR, DATASETS_DIR, POLICY_PATH, SUITE,
# SPLITS, VENV (a prebuilt venv instead of uv), CHECKSUMS=1, and for SSH: SSH_CONFIG (a config
# file) and SSH_OPTIONS (ssh -o options, space-separated Key=Value, e.g. "Port=2222 User=me").
# A failure makes make exit 2 and print the script's own exit code ("Error 10").

REMOTE_EVAL_HOME := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

PROJECT_DIR ?= .
MODELS_DIR ?= ./.models
DATASETS_DIR ?= ./.datasets
POLICY_PATH ?= ./configs/policy.yaml
SUITE ?= guardrails_ru
SPLITS ?= fast,full
SSH_CONFIG ?=
SSH_OPTIONS ?=

remote_eval_venv = $(if $(VENV),--venv "$(VENV)")
remote_eval_ssh = $(if $(SSH_CONFIG),--ssh-config "$(SSH_CONFIG)") $(foreach option,$(SSH_OPTIONS),--ssh-option "$(option)")

.PHONY: remote-sync assets-download-models assets-download-datasets assets-check-models assets-check-datasets

remote-sync:
	@test -n "$(HOST)" -a -n "$(REMOTE_DIR)" || { echo "usage: make remote-sync HOST=host REMOTE_DIR=/abs/dir [PROJECT_DIR=.] [SSH_CONFIG=file] [SSH_OPTIONS='Key=Value ...']" >&2; exit 2; }
	"$(REMOTE_EVAL_HOME)/scripts/remote_eval/sync_code.ts" --host "$(HOST)" --remote-dir "$(REMOTE_DIR)" --project-dir "$(PROJECT_DIR)" $(remote_eval_ssh)

assets-download-models:
	"$(REMOTE_EVAL_HOME)/scripts/download_models.ts" --models-dir "$(MODELS_DIR)" --policy "$(POLICY_PATH)" --project-dir "$(PROJECT_DIR)" $(remote_eval_venv)

assets-download-datasets:
	"$(REMOTE_EVAL_HOME)/scripts/download_datasets.ts" --datasets-dir "$(DATASETS_DIR)" --suite "$(SUITE)" --splits "$(SPLITS)" --project-dir "$(PROJECT_DIR)" $(remote_eval_venv)

assets-check-models:
	"$(REMOTE_EVAL_HOME)/scripts/download_models.ts" --check --models-dir "$(MODELS_DIR)" --policy "$(POLICY_PATH)" --project-dir "$(PROJECT_DIR)" $(if $(CHECKSUMS),--verify-checksums)

assets-check-datasets:
	"$(REMOTE_EVAL_HOME)/scripts/download_datasets.ts" --check --datasets-dir "$(DATASETS_DIR)" --suite "$(SUITE)" --splits "$(SPLITS)" --project-dir "$(PROJECT_DIR)" $(if $(CHECKSUMS),--verify-checksums) $(if $(AGAINST_HUB),--against-hub $(remote_eval_venv))
