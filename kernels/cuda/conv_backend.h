// Which implementation CUDA conv1d uses for its dense correlations:
// - `auto` (the default): per geometry, the route `tune` chose on an H200 (docs/cuda.md, "What auto runs"):
//   few inputs and many outputs per group (a first conv on DNA, a head's input grad) on im2col + cuBLAS, their
//   weight grad on the tiled kernel; few outputs (a head, a first conv's input grad) on the narrow tiled kernels
//   (kernels/cuda/conv_narrow.h); wide layers on the pipelined tiled kernels (kernels/cuda/conv_tiled.h), their
//   weight grad on the taps route (kernels/cuda/conv_taps.h) when B·Lout >= kTapsWgradMinN, else im2col + cuBLAS;
//   the direct kernels (kernels/cuda/conv_direct.h) and im2col where these decline (float64, TF32/bf16, shared
//   memory);
// - `direct`: the direct kernels for the layers with at most 16 inputs or outputs per group, im2col + cuBLAS for
//   every wide one (the default of the first H200 run);
// - `tiled`: the tiled kernels (pipelined) for every wide layer they take and first for few inputs and many
//   outputs, the narrow tiled kernels for few outputs, then the direct ones;
// - `im2col`: im2col + cuBLAS alone, with the one-hot gather for a DNA first layer (the first default);
// - `cudnn`: cuDNN's legacy convolution API (opt-in, kernels/cuda/conv_cudnn.cu);
// - `tune`: each shape timed on its first use on every route that takes it (im2col, direct, tiled, tiled-pipelined,
//   narrow, taps, cudnn), each checked against im2col's output, and the fastest kept for the process
//   (kernels/cuda/conv_tune.h; as PyTorch's cudnn.benchmark). Inside a CUDA-graph capture a shape not yet timed
//   runs as under `auto`.
// Chosen per Context with cuda::set_conv_backend, or for every Context by
// LOWPASS_CUDA_CONV=auto|direct|tiled|im2col|cudnn|tune (read once).
// Test: build/tests/lowpass_tests -ts=cuda -sf='*test_cuda_cudnn.cpp'  (the parser's case runs without a GPU).
#pragma once
#include <string>
#include <string_view>

namespace lowpass {
class Context;
}

namespace lowpass::cuda {

enum class ConvBackend { Im2col, Direct, Cudnn, Tiled, Auto, Tune };

// A layer with at most 16 inputs per group and at least this many outputs per group (a first conv on DNA, 4 -> 64)
// counts as "few inputs, many outputs" (`auto`: im2col + cuBLAS; `tiled`: the tiled kernels first).
inline constexpr long long kTiledNarrowMinO = 32;
// `auto` runs a wide layer's weight grad on the taps route when its reduction B·Lout is at least this. On an H200
// (tune, 2026-11-26): taps won at B·Lout = 172k (BPNet K 3, 0.247 vs 0.286 ms) and 249k (binary K 15, 1.06 vs
// 1.48 ms), im2col + cuBLAS at 86k (BPNet K 3 at batch 64, 0.169 vs 0.180 ms) and 128k (K 15 at batch 128, 0.74 vs
// 0.89 ms).
inline constexpr long long kTapsWgradMinN = 150000;

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
