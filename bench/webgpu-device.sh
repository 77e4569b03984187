#!/bin/sh
# One shot on a GPU machine without Node or network (prepared by bench/webgpu-device-prep.sh; see that
# file): the WebGPU bench (Dawn on the NVIDIA Vulkan driver) and PyTorch-CUDA's equivalent (fp32,
# TF32 off), one after the other on the same machine, each JSON line kept in $OUT. ~5 minutes.
set -u
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
# where the NVIDIA driver's Vulkan ICD lives on the GPU machines this was written for, if the loader finds none
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
xz -dc .gpu/node.xz > /tmp/node && chmod +x /tmp/node
out=${OUT:-/tmp/webgpu-bench}
mkdir -p "$out"
{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; /tmp/node --version; } > "$out/machine.txt" 2>&1
cat "$out/machine.txt"
# the WebGPU side first: a failure there (no adapter) still leaves time for PyTorch's
timeout 300 /tmp/node .gpu/webgpu-bench.mjs 2>&1 | tee "$out/webgpu.jsonl"
PYTHONUNBUFFERED=1 timeout 240 python3 bench/webgpu_torch.py 2>&1 | tee "$out/torch.jsonl"
