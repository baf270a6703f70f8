// conv backend names and LOWPASS_CUDA_CONV parsing (kernels/cuda/conv_backend.h): plain C++, built with and
// without CUDA so the parser is tested everywhere. Test: build/tests/lowpass_tests -ts=cuda -sf='*cudnn*'
#include "kernels/cuda/conv_backend.h"

#include <cstdlib>
#include <optional>

#include "engine/error.h"

namespace lowpass::cuda {

const char* conv_backend_name(ConvBackend b) {
  switch (b) {
    case ConvBackend::Cudnn: return "cudnn";
    case ConvBackend::Direct: return "direct";
    case ConvBackend::Tiled: return "tiled";
    case ConvBackend::Auto: return "auto";
    case ConvBackend::Tune: return "tune";
    case ConvBackend::Im2col: break;
  }
  return "im2col";
}

ConvBackend parse_conv_backend(std::string_view s, const char* what) {
  if (s == "auto") return ConvBackend::Auto;
  if (s == "im2col") return ConvBackend::Im2col;
  if (s == "direct") return ConvBackend::Direct;
  if (s == "cudnn") return ConvBackend::Cudnn;
  if (s == "tiled") return ConvBackend::Tiled;
  if (s == "tune") return ConvBackend::Tune;
  throw Error(detail::concat(what, ": unknown CUDA convolution backend '", s,
                             "' (expected auto, direct, tiled, im2col, cudnn or tune)"));
}

ConvBackend conv_backend_from_env_value(const char* value) {
  if (!value || !*value) return ConvBackend::Auto;  // the default since the second H200 run (docs/cuda.md)
  return parse_conv_backend(value, "LOWPASS_CUDA_CONV");
}

ConvBackend default_conv_backend() {
  // Read once; a bad value is remembered as such and reported at every call (each new Context's first CUDA use).
  static const std::optional<std::string> env = [] {
    const char* e = std::getenv("LOWPASS_CUDA_CONV");
    return e ? std::optional<std::string>(e) : std::nullopt;
  }();
  return conv_backend_from_env_value(env ? env->c_str() : nullptr);
}

void require_cudnn(const char* who) {
  LP_CHECK(cudnn_compiled(), who, ": the cuDNN convolution backend was requested, but lowpass was built without "
           "cuDNN (configure with -Dcuda=enabled -Dcudnn=enabled where cudnn.h and libcudnn are installed; "
           "LOWPASS_CUDA_CONV=auto or unset selects the default path, im2col the im2col + cuBLAS path alone)");
}

}  // namespace lowpass::cuda
