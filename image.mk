# The operator image and its publication (issue 17). Included from the top-level Makefile.
#   make image        build the OCI image from Debian packages and the project's wheel, without a container
#                     engine (mmdebstrap + umoci, as root): build/image/oci, tag = the project version; layers
#                     cached in ~/.cache/gridshift/image (cold about 1-2 min, then seconds); prints digest and size
#   make image-lock   re-resolve requirements-image.txt (the image's runtime wheels, pinned by hash)
#   make release REGISTRY=host[:port] [PLAIN_HTTP=1]
#                     push the image (skopeo) and both charts (helm push, the hub chart pinned to the image's
#                     digest) to an OCI registry
#   make image-deps   Debian's mmdebstrap, umoci, skopeo, runc and docker-registry (tests run the image with runc
#                     and push to a private docker-registry)
# The Containerfile builds the same image with a container engine.
REGISTRY ?=
PLAIN_HTTP ?=

.PHONY: image image-deps image-lock release

image-deps: ## mmdebstrap, umoci, skopeo, runc, docker-registry from Debian
	@if command -v mmdebstrap >/dev/null && command -v umoci >/dev/null && command -v skopeo >/dev/null \
	  && command -v runc >/dev/null && command -v docker-registry >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing mmdebstrap umoci skopeo runc docker-registry"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    mmdebstrap umoci skopeo runc docker-registry >/dev/null && \
	  { systemctl disable --now docker-registry >/dev/null 2>&1 || service docker-registry stop >/dev/null 2>&1 || true; }; \
	else echo "image tools missing: run 'sudo apt-get install mmdebstrap umoci skopeo runc docker-registry'"; fi

image: setup image-deps ## the operator's OCI image in build/image/oci (needs root: chroot, mmdebstrap)
	$(PYTHON) -m gridshift_dev image

image-lock: setup ## re-resolve requirements-image.txt from pyproject.toml's runtime dependencies
	$(PYTHON) -m gridshift_dev image --lock

release: image ## push image and charts to REGISTRY (PLAIN_HTTP=1 for a local HTTP registry)
	@test -n "$(REGISTRY)" || { echo "usage: make release REGISTRY=host[:port] [PLAIN_HTTP=1]"; exit 2; }
	python3 $(CLUSTER_PY) build --only helm >/dev/null
	$(PYTHON) -m gridshift_dev release --registry $(REGISTRY) --helm "$$(python3 $(CLUSTER_PY) bin-dir)/helm" \
	  $(if $(PLAIN_HTTP),--plain-http)
