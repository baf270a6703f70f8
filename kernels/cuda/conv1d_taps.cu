// The "taps" route of the CUDA correlation (kernels/cuda/conv_taps.h): the weights laid out per tap, y set to the
// bias, then one cuBLAS strided-batched GEMM per (group, tap) on shifted views of x. A `tune` candidate, and
// `auto`'s weight grad for wide layers with long reductions (conv_backend.h). Test: tests/test_cuda_taps.cpp (the
// plan on the host), build/tests/lowpass_tests -ts=cuda (GPU).
#include "kernels/cuda/conv1d.h"
#include "kernels/cuda/conv_taps.h"
#include "kernels/cuda/cuda_state.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/gemm.h"

namespace lowpass::cuda {
namespace {
constexpr int kThreads = 256;

template <typename T>
__global__ void taps_weights_kernel(const T* __restrict__ w, T* __restrict__ wp, int64_t n, const CorrGeom g) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    wp[e] = w[taps_weight_source(g, e)];
}

// y[b, go, t] = bias[go] (0 without a bias): rows along grid y, positions along x.
template <typename T>
__global__ void taps_init_kernel(T* __restrict__ y, const T* __restrict__ bias, int64_t rows, int64_t GO,
                                 int64_t Lout) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const T v = bias ? bias[r % GO] : T(0);
    T* row = y + r * Lout;
    for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < Lout;
         t += static_cast<int64_t>(gridDim.x) * blockDim.x)
      row[t] = v;
  }
}
// dw[e] = Σ_b part[b·n + taps_part_index(e)] in double, in batch order; 0 for a tap that reaches no position.
template <typename T>
__global__ void taps_wgrad_sum_kernel(const T* __restrict__ part, T* __restrict__ dw, int64_t n, const CorrGeom g) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double v = 0;
    if (taps_reaches(g, e % g.K)) {
      const int64_t j = taps_part_index(g, e);
      for (int64_t b = 0; b < g.B; ++b) v += static_cast<double>(part[b * n + j]);
    }
    dw[e] = static_cast<T>(v);
  }
}
}  // namespace

bool conv1d_corr_wgrad_taps(const Tensor& x, const Tensor& dy, Tensor& dw, const CorrGeom& g) {
  if (!taps_fit(g)) return false;
  const CudaState& st = state_of(x);
  // the per-item workspace within the im2col path's budget (binary's K 15 layer at batch 256: 63 MB)
  if (g.B * g.G * g.O * g.C * g.K * static_cast<int64_t>(dtype_size(x.dtype())) > st.conv_workspace_bytes) return false;
  const int dev = x.device().index;
  const int64_t n = g.G * g.O * g.C * g.K;
  const std::vector<TapGemm> plan = taps_plan(g);
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    DeviceBuffer<T> part(static_cast<size_t>(g.B * n), dev);
    for (const TapGemm& e : plan)  // part_{b,gi,k} (C × O) = (x_b shifted)ᵀ (C × m) · dy_b (m × O)
      gemm_strided_batched<T>(st, true, false, g.C, g.O, e.m, x.data<T>() + e.a_off, g.Lin, g.G * g.C * g.Lin,
                              dy.data<T>() + e.c_off, g.Lout, g.G * g.O * g.Lout, T(0),
                              part.get() + (e.gi * g.K + e.k) * g.O * g.C, g.C, n, g.B);
    taps_wgrad_sum_kernel<T><<<grid_1d(st, n, kThreads), kThreads, 0, st.stream>>>(part.get(), dw.data<T>(), n, g);
    LP_CUDA_LAUNCH_CHECK();
  });
  return true;
}

bool conv1d_corr_taps(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g) {
  if (!taps_fit(g)) return false;
  const CudaState& st = state_of(x);
  const int dev = x.device().index;
  const std::vector<TapGemm> plan = taps_plan(g);
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    const int64_t nw = g.G * g.K * g.O * g.C, rows = g.B * g.G * g.O;
    DeviceBuffer<T> wp(static_cast<size_t>(nw), dev);
    taps_weights_kernel<T><<<grid_1d(st, nw, kThreads), kThreads, 0, st.stream>>>(w.data<T>(), wp.get(), nw, g);
    LP_CUDA_LAUNCH_CHECK();
    taps_init_kernel<T><<<rows_grid(rows, g.Lout, kThreads), kThreads, 0, st.stream>>>(y.data<T>(), bias.defined() ? bias.data<T>() : nullptr,
                                                          rows, g.G * g.O, g.Lout);
    LP_CUDA_LAUNCH_CHECK();
    for (const TapGemm& e : plan)  // y_b[t0.., go] (m × O) += x_b shifted (m × C) · wp_{gi,k} (C × O)
      gemm_strided_batched<T>(st, false, false, e.m, g.O, g.C, x.data<T>() + e.a_off, g.Lin, g.G * g.C * g.Lin,
                              wp.get() + e.b_off, g.C, 0, T(1), y.data<T>() + e.c_off, g.Lout, g.G * g.O * g.Lout,
                              g.B);
  });
  return true;
}

}  // namespace lowpass::cuda
