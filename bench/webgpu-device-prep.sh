#!/bin/sh
# Prepares what bench/webgpu-device.sh needs on a GPU machine that has PyTorch but no Node, no Dawn
# and no Vulkan loader, and from which nothing can be downloaded. Run here, in the repository root;
# it fills two folders that git ignores, to be copied there with the checkout (64 MiB in all: ~24 MB
# node.xz, ~21 MB dawn.node, the bench bundle, a few .debs):
#   .gpu/  node (xz-compressed, to keep the copy under 64 MiB: the binary is 99 MB), the `webgpu` package's
#          loader and linux-x64 dawn.node, and bench/webgpu.ts bundled into one file (no tsx there)
#   .gl/   Vulkan's loader (libvulkan1) as a Debian package, unpacked there before the run
# Then, on the GPU machine, in the copied checkout: sh bench/webgpu-device.sh (about 5 minutes).
set -e
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> "$(git rev-parse --git-common-dir)/info/exclude"
grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo /.gl/ >> "$(git rev-parse --git-common-dir)/info/exclude"
mkdir -p .gpu/node_modules/webgpu/dist/linux-x64 .gl /tmp/amd64/partial
xz -T0 -6 -c "$(command -v node)" > .gpu/node.xz
cp node_modules/webgpu/index.js node_modules/webgpu/package.json .gpu/node_modules/webgpu/
cp node_modules/webgpu/dist/linux-x64/dawn.node .gpu/node_modules/webgpu/dist/linux-x64/
node_modules/.bin/esbuild bench/webgpu.ts --bundle --platform=node --format=esm --external:webgpu \
  --outfile=.gpu/webgpu-bench.mjs --log-level=warning
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update -qq
(cd .gl && apt-get $o download libvulkan1)
du -sh .gpu .gl
