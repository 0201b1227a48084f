# packaging/deb.mk: build the relaymesh .deb with nfpm.
#
#   make deb                  dist/relaymesh_$(DEB_VERSION)_amd64.deb
#   make deb-version          print the Debian version that `make deb` uses
#   make deb-test             build, lint, install it into a Debian 12
#                             chroot and run it under systemd in a booted
#                             container (root; packaging/test-deb.sh)
#   make deb-clean            remove dist/*.deb and the staging dir
#
# Works on its own too: `make -f packaging/deb.mk deb`.
# Knobs: DEB_BIN=path (package this binary instead of building
# ./cmd/relaymesh), DEB_CONFIGS=dir (where standalone/edge/center.toml are),
# DEB_REVISION (Debian revision, default 1).

NFPM_VERSION := v2.45.2
DEB_CACHE ?= .cache
# GOBIN must be absolute; the version is in the path so a bump reinstalls.
NFPM_DIR := $(abspath $(DEB_CACHE))/nfpm-$(NFPM_VERSION)
NFPM := $(NFPM_DIR)/nfpm

DEB_UPSTREAM_VERSION := $(shell sh packaging/version.sh)
DEB_REVISION ?= 1
DEB_VERSION := $(DEB_UPSTREAM_VERSION)-$(DEB_REVISION)
DEB_FILE := dist/relaymesh_$(DEB_VERSION)_amd64.deb
DEB_STAGE := $(DEB_CACHE)/deb-stage
DEB_CONFIGS ?= configs
DEB_BIN ?=
# Dates inside the package come from the last commit, so rebuilding the same
# commit gives the same bytes.
DEB_EPOCH := $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

.PHONY: deb deb-version deb-test deb-clean

$(NFPM):
	@mkdir -p $(NFPM_DIR)
	GOBIN=$(NFPM_DIR) GOFLAGS= go install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

deb: $(NFPM) ## build dist/relaymesh_VERSION_amd64.deb with nfpm
	@test -f $(DEB_CONFIGS)/standalone.toml || { echo "deb: $(DEB_CONFIGS)/standalone.toml is missing (it becomes /etc/relaymesh/relaymesh.toml)" >&2; exit 1; }
	rm -rf $(DEB_STAGE) && mkdir -p $(DEB_STAGE)/examples dist
ifeq ($(DEB_BIN),)
	@if [ -d cmd/relaymesh ]; then \
		sh packaging/build-deps.sh || exit 1; \
		echo "CGO_ENABLED=1 GOOS=linux GOARCH=amd64 go build -buildmode=pie -trimpath ... -o $(DEB_STAGE)/relaymesh ./cmd/relaymesh"; \
		CGO_ENABLED=1 GOOS=linux GOARCH=amd64 go build -buildmode=pie -trimpath \
			-ldflags "-s -w -X github.com/relaymesh/relaymesh/agent.Version=$(DEB_UPSTREAM_VERSION)" \
			-o $(DEB_STAGE)/relaymesh ./cmd/relaymesh; \
	elif [ -x bin/relaymesh ]; then \
		echo "deb: no ./cmd/relaymesh yet, packaging bin/relaymesh as it is" >&2; \
		cp bin/relaymesh $(DEB_STAGE)/relaymesh; \
	else \
		echo "deb: no ./cmd/relaymesh and no bin/relaymesh to package (or set DEB_BIN=)" >&2; exit 1; \
	fi
else
	cp $(DEB_BIN) $(DEB_STAGE)/relaymesh
endif
	cp $(DEB_CONFIGS)/standalone.toml $(DEB_STAGE)/relaymesh.toml
	for f in standalone edge center; do \
		if [ -f $(DEB_CONFIGS)/$$f.toml ]; then cp $(DEB_CONFIGS)/$$f.toml $(DEB_STAGE)/examples/; \
		else echo "deb: warning: $(DEB_CONFIGS)/$$f.toml is missing, not shipped as an example" >&2; fi; \
	done
	gzip -9n < packaging/relaymesh.8 > $(DEB_STAGE)/relaymesh.8.gz
	sed -e 's/@VERSION@/$(DEB_VERSION)/' \
		-e "s/@DATE@/$$(LC_ALL=C date -u -R -d @$(DEB_EPOCH))/" \
		packaging/changelog | gzip -9n > $(DEB_STAGE)/changelog.Debian.gz
	rm -f dist/relaymesh_*_amd64.deb
	DEB_STAGE=$(DEB_STAGE) DEB_UPSTREAM_VERSION=$(DEB_UPSTREAM_VERSION) \
	DEB_REVISION=$(DEB_REVISION) SOURCE_DATE_EPOCH=$(DEB_EPOCH) \
		$(NFPM) package --config packaging/nfpm.yaml --packager deb --target $(DEB_FILE)
	@echo "deb: built $(DEB_FILE)"

deb-version: ## print the Debian version `make deb` uses
	@echo $(DEB_VERSION)

deb-test: ## build and lint the .deb, install-test it in a Debian 12 chroot and under systemd in a booted container (root)
	bash packaging/test-deb.sh

deb-clean: ## remove the .deb and its staging dir
	rm -rf $(DEB_STAGE) dist/relaymesh_*_amd64.deb
