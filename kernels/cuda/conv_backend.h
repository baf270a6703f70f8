// Which implementation CUDA conv1d uses for its dense correlations:
// - `auto` (the default): the direct kernels for layers with at most 16 inputs or outputs per group
//   (kernels/cuda/conv_direct.h), the tiled implicit-GEMM float32 kernels (kernels/cuda/conv_tiled.h) for wide
//   layers whose reduction C·K (inputs per group × taps) is at least kTiledAutoMinCK, im2col + cuBLAS for the rest
//   (the wide layers with short kernels, where cuBLAS was faster on an H200; docs/cuda.md);
// - `direct`: the direct kernels for the narrow layers, im2col + cuBLAS for every wide one (the default of the
//   first H200 run);
// - `tiled`: the tiled kernels for every wide layer they take (in their pipelined, two-stage cp.async variants), and for the layers with few outputs the narrow tiled kernels (kernels/cuda/conv_narrow.h), then the
//   direct ones: where kernels not yet run on a GPU wait to be timed against `auto`;
// (`auto` and `tiled` also send correlations with few inputs and many outputs, a first conv on DNA or a head's input
// grad, to the tiled kernels first, kTiledNarrowMinO; where those decline, `auto` runs them on im2col + cuBLAS and
// `tiled` on the direct kernels);
// - `im2col`: im2col + cuBLAS alone, with the one-hot gather for a DNA first layer (the first default);
// - `cudnn`: cuDNN's legacy convolution API (opt-in, kernels/cuda/conv_cudnn.cu);
// - `tune`: each shape timed on its first use on every route that takes it (im2col, direct, tiled, tiled-pipelined,
//   narrow, taps, cudnn), each checked against im2col's output, and the fastest kept for the process
//   (kernels/cuda/conv_tune.h; as PyTorch's cudnn.benchmark). Inside a CUDA-graph capture a shape not yet timed
//   runs as under `auto`.
// Chosen per Context with cuda::set_conv_backend, or for every Context by
// LOWPASS_CUDA_CONV=auto|direct|tiled|im2col|cudnn|tune (read once).
// Test: build-cuda/tests/lowpass_tests -ts=cuda -sf='*test_cuda_cudnn.cpp'  (the parser's case runs without a GPU).
#pragma once
#include <string>
#include <string_view>

namespace lowpass {
class Context;
}

namespace lowpass::cuda {

enum class ConvBackend { Im2col, Direct, Cudnn, Tiled, Auto, Tune };

// `auto` sends a wide layer to the tiled kernels when C·K >= this: on an H200 they ran binary's C64 K15 layer
// (C·K = 960) 1.26-1.37x faster than im2col + cuBLAS, BPNet's C64 K3 layers (192) 1.3-1.5x slower.
inline constexpr long long kTiledAutoMinCK = 512;
// `auto` and `tiled` send a layer with at most 16 inputs per group to the tiled kernels first when it has at least
// this many outputs per group (a first conv on DNA, 4 -> 64), where they fit.
inline constexpr long long kTiledNarrowMinO = 32;

const char* conv_backend_name(ConvBackend b);  // "im2col" | "direct" | "cudnn" | "tiled" | "auto" | "tune"
// "auto", "im2col", "direct", "cudnn", "tiled" or "tune" (exactly); anything else throws lowpass::Error naming `what` (a flag or
// variable), the value and the choices.
ConvBackend parse_conv_backend(std::string_view s, const char* what);
// LOWPASS_CUDA_CONV's value as the default backend: Auto when unset (nullptr) or empty, else parsed.
ConvBackend conv_backend_from_env_value(const char* value);
// The process default: LOWPASS_CUDA_CONV read once (the first call; later changes are not seen). Throws on a bad
// value, every call. Each new Context's CUDA state starts with this backend.
ConvBackend default_conv_backend();

// Whether the cuDNN path was compiled in (meson -Dcudnn, LOWPASS_HAVE_CUDNN). False without CUDA.
bool cudnn_compiled();
// Throws lowpass::Error "<who>: ... built without cuDNN ..." unless cudnn_compiled().
void require_cudnn(const char* who);
// cuDNN's run-time version from cudnnGetVersion(), e.g. "9.19.0"; "" when not compiled in. Needs no GPU.
std::string cudnn_version();

// The conv backend of ctx's CUDA state on `device` (creates the state: needs a usable GPU). Cudnn in a build
// without cuDNN throws "built without cuDNN".
void set_conv_backend(Context& ctx, int device, ConvBackend b);
ConvBackend conv_backend(Context& ctx, int device);

}  // namespace lowpass::cuda
