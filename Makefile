# Entry points. Every target is a thin wrapper: the README says what each does.
.PHONY: help install test lint demo bench-sync sync

help:
	@echo "make install      install dependencies (npm ci)"
	@echo "make test         run the test suite (starts its own sshd and pod sandboxes; needs root)"
	@echo "make lint         type check and lint"
	@echo "make demo         push this repository to a throwaway local sshd, twice"
	@echo "make bench-sync   our push against plain rsync on a 5,000-file tree (needs root)"
	@echo "make sync HOST=gpu-box REMOTE_DIR=/home/me/guardrails   push the code only"

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
