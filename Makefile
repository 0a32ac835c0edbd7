# The two commands a user needs are `make demo` and `make test`; the rest are their parts.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Size knob of each seeded lab database, in megabytes (tests: tens; benchmarks: thousands).
LAB_SCALE_MB ?= 30
# Legacy VMs in the lab (2 to 8; the two built in plus packaged copies of legacy-vm-1).
LAB_VMS ?= 2
COLLECTION_LINK := .build/collections/ansible_collections/sysgenpro/odoo_migration
PLAYBOOK := ansible-playbook -i inventories/lab

.PHONY: demo test setup engine lab-up lab-down lab-clean lab-report discover wave lint sanity unit integration molecule build clean

demo: lab-up lab-report wave

test: lint sanity unit build integration molecule

setup: engine $(COLLECTION_LINK)
	bash lab/bootstrap.sh python

engine:
	bash lab/bootstrap.sh engine

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn $(CURDIR) $@

lab-up: setup
	python lab/scale_inventory.py $(LAB_VMS)
	$(PLAYBOOK) lab/playbooks/up.yml -e lab_legacy_seed_scale_mb=$(LAB_SCALE_MB)

lab-down: setup
	$(PLAYBOOK) lab/playbooks/down.yml

lab-clean: setup
	$(PLAYBOOK) lab/playbooks/down.yml -e '{"lab_host_remove_images": true}'

lab-report: setup
	$(PLAYBOOK) lab/playbooks/report.yml
	@cat lab/.state/lab-report.md

# Discovery of every legacy VM (or WAVE=<group>): migration-state/<host>/ and the wave report.
WAVE ?=
discover: setup
	$(PLAYBOOK) playbooks/discover.yml $(if $(WAVE),-e wave=$(WAVE))
	@cat migration-state/reports/discover-*.md

# A whole wave (default wave1): discover, containerize, replicate, cut over; the wave report printed.
# The lab consents to the one restart of each VM's PostgreSQL that archiving and wal_level=logical need.
DEMO_WAVE ?= wave1
wave: setup
	$(PLAYBOOK) playbooks/wave.yml -e wave=$(DEMO_WAVE) -e odoo_migration_allow_restart=true
	@cat migration-state/reports/wave-$(DEMO_WAVE).md

lint: setup
	yamllint -s .
	ruff check .
	ruff format --check .
	ansible-lint

sanity: setup
	bash tests/sanity/run.sh

unit: setup
	pytest -q tests/unit

build: setup
	bash tests/build_collection.sh

integration: setup lab-up
	pytest -q --durations=30 tests/integration

# The whole wave under a JSON-RPC writer, then idempotence, check mode, verify; cleanup moves the VMs back.
molecule: setup lab-up
	molecule test -s default

clean:
	rm -rf .build sysgenpro-odoo_migration-*.tar.gz
