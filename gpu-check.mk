# `make gpu-check`: measure a Llama-3-8B-shaped decoder's step time and energy on a real NVIDIA GPU
# with gridshift's NVML sampler, check the energy counter against integrated power and the fitted
# profile against the measured step times, and write a GPUProfile. Needs PyTorch and nvidia-ml-py
# in $(GPU_CHECK_PYTHON); results land in $(GPU_CHECK_OUT). Not part of CI (no GPU there).
GPU_CHECK_PYTHON ?= python3
GPU_CHECK_OUT ?= out/gpu-check
GPU_CHECK_ARGS ?=

.PHONY: gpu-check gpu-check-contract gpu-check-decode

gpu-check: gpu-check-contract gpu-check-decode ## NVML sampler contract on the real GPU, then the decode energy check

gpu-check-contract: ## the PowerSampler contract tests against NVML (fail, not skip, without a GPU)
	GRIDSHIFT_REQUIRE_GPU=1 PYTHONPATH=operator$${PYTHONPATH:+:$$PYTHONPATH} \
	  $(GPU_CHECK_PYTHON) -m pytest -q -p no:cacheprovider -rs tests/nvml -k real_gpu

gpu-check-decode: ## decode step time and energy per batch and context; writes gpuprofile.yaml, gpu_check.json, gpu_check.log
	$(GPU_CHECK_PYTHON) e2e/gpu/gpu_check.py --out $(GPU_CHECK_OUT) $(GPU_CHECK_ARGS)
