# Everything a fresh machine needs comes from these targets: the components
# are built from pinned Go modules into bin/ (hack/tools.sh), nothing is
# downloaded but Go modules.
SHELL := /usr/bin/env bash
GO ?= go
GOTEST_FLAGS ?= -count=1 -timeout 80m
PKGS ?= ./...
VERSION := $(shell cat VERSION)

.PHONY: all build tools images generate verify vet fmt-check test test-unit bench bench-system demo dev-env-up dev-env-down dev-env-status clean

all: build

## build: compile this project's commands into bin/
build:
	@mkdir -p bin
	$(GO) build -o bin/ ./hack/devenv $(addprefix ./,$(wildcard cmd/*))

## tools: build etcd, kube-*, kubelet, kubectl, containerd, crictl, CNI plugins, MinIO and restic into bin/ (cached)
tools:
	hack/tools.sh

## images: container images FROM scratch as OCI tarballs in bin/images/ (ghcr.io/kubestash-catalog/*:$(VERSION); builds restic with hack/tools.sh if missing)
images:
	hack/images.sh

## push: push the images of bin/images to REGISTRY (build them with the same REGISTRY: make images push REGISTRY=registry.example.com/kubestash)
# hack/push reads $(OUT)/images.txt (OUT as hack/images.sh takes it), refuses
# names not under REGISTRY, logs in with the docker config; INSECURE=1 allows
# a plain-HTTP registry. After images when both are asked for, even with -j.
.PHONY: push
push: | $(filter images,$(MAKECMDGOALS))
	$(GO) run ./hack/push -list "$${OUT:-bin/images}/images.txt" $(if $(REGISTRY),-registry "$(REGISTRY)") $(if $(filter-out 0 false no,$(INSECURE)),-insecure)

## generate: regenerate deepcopy, conversion, defaults, openapi, clients and CRDs
generate:
	hack/update-codegen.sh

## verify: generated code current, gofmt clean, go vet clean
verify: fmt-check vet
	hack/verify-codegen.sh

fmt-check:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*') ); \
	  if [[ -n "$$bad" ]]; then echo "not gofmt-clean:"; echo "$$bad"; exit 1; fi; echo "gofmt clean"

vet:
	$(GO) vet ./...

## chart-lint: helm lint --strict of charts/kubestash-catalog with the default values and with ci/full-values.yaml
.PHONY: chart-lint
chart-lint:
	hack/tools.sh helm
	bin/helm lint --strict charts/kubestash-catalog
	bin/helm lint --strict charts/kubestash-catalog -f charts/kubestash-catalog/ci/full-values.yaml

## test: build the components and images, verify, then run every test (unit and end-to-end; the node tests need root)
test: tools images verify
	$(GO) test $(GOTEST_FLAGS) $(PKGS)

## test-unit: tests that need no control plane
test-unit:
	$(GO) test -short ./pkg/...

## bench: benchmarks of the catalog store over MinIO (figures go in issue notes)
bench: tools
	$(GO) test -run '^$$' -bench . -benchtime 3x ./test/catalogstore/

## bench-system: ~500 MB backup and restore through the whole system vs restic by hand (several minutes)
bench-system: tools images
	$(GO) test -run '^$$' -bench BackupRestore -benchtime 1x -timeout 40m ./test/e2e/backup/

## demo: the main job on the embedded default (see README)
demo: tools build images
	hack/demo.sh

dev-env-up:
	hack/dev-env.sh up
dev-env-down:
	hack/dev-env.sh down
dev-env-status:
	hack/dev-env.sh status

clean:
	-hack/dev-env.sh down
	rm -rf bin .dev
