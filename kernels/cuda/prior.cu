// CUDA twin of the fused Fourier-prior chain (kernels/cpu/prior.h): one kernel for |a| summed over bases and
// Gaussian smoothing (tiled: kernels/cuda/prior_tiles.h), batched R2C cuFFT over every row of the batch (plans
// depend on B and L only), one block per row for |X|, D and N; backward: one kernel for dX (packed for C2R), C2R,
// one kernel for smoothing-adjoint × sign.
// Test: build-cuda/tests/lowpass_tests -ts=cuda. Legend: B rows of the batch, C bases, F = L/2 + 1.
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <vector>

#include "kernels/cpu/prior.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_state.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/prior_tiles.h"
#include "kernels/cuda/spectral_common.cuh"

namespace lowpass::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kRowThreads = 128;
constexpr int kMaxPriorTaps = kPriorMaxTaps;

#define LP_GRID_STRIDE(i, n)                                                                    \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)


// s[b, l] = Σ_j taps[j]·Σ_c |a[b, c, l + j − r]| (0 outside [0, L)), bases summed first as the CPU does. Grid
// (position tiles, rows), rows strided by gridDim.y; the window and the taps staged in shared memory
// (kernels/cuda/prior_tiles.h). signs (not null, C <= 4): the attributions' sign codes for the backward.
template <typename T>
__global__ void __launch_bounds__(kPriorTile)
    prior_smooth_kernel(const T* __restrict__ a, T* __restrict__ s, uint8_t* __restrict__ signs, int64_t B, int64_t C,
                        int64_t L, const Taps<T> taps) {
  __shared__ T tp[kPriorMaxTaps];
  __shared__ T u[kPriorWindow];
  const int r = taps.n / 2, tid = static_cast<int>(threadIdx.x);
  if (tid < taps.n) tp[tid] = taps.v[tid];
  const int64_t l0 = static_cast<int64_t>(blockIdx.x) * kPriorTile, l = l0 + tid;
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    __syncthreads();  // the previous row's window has been read
    prior_sum_abs_load(a, u, signs, b, l0, C, L, r, tid);
    __syncthreads();
    if (l < L) s[b * L + l] = prior_smooth_at(u, tp, taps.n, tid);
  }
}

// One block per row b: D = Σ_f |X_f| (1 when 0), N = Σ_f w_f|X_f|; out[pos[b]] = 1 − N/D for selected rows.
template <typename T>
__global__ void prior_score_kernel(const typename Cx<T>::type* __restrict__ z, const T* __restrict__ wf,
                                   const int64_t* __restrict__ pos, T* __restrict__ nd, T* __restrict__ out,
                                   int64_t F) {
  __shared__ T scratch[32];
  const int64_t b = blockIdx.x;
  T d = 0, n = 0;
  for (int64_t f = threadIdx.x; f < F; f += blockDim.x) {
    const auto x = z[b * F + f];
    const T m = sqrt(x.x * x.x + x.y * x.y);
    d += m;
    n += wf[f] * m;
  }
  d = block_sum(d, scratch);
  __syncthreads();
  n = block_sum(n, scratch);
  if (threadIdx.x == 0) {
    if (d == T(0)) d = T(1);
    nd[2 * b] = n, nd[2 * b + 1] = d;
    if (pos[b] >= 0) out[pos[b]] = T(1) - n / d;
  }
}

// dX_f = dm_f·X_f/|X_f| with dm_f = −g_p (w_f/D − N/D²), packed for C2R as the rfft adjoint needs
// (middle bins halved, imaginary parts of DC and Nyquist dropped); rows not selected get 0.
template <typename T>
__global__ void prior_dspec_kernel(const typename Cx<T>::type* __restrict__ z, const T* __restrict__ wf,
                                   const int64_t* __restrict__ pos, const T* __restrict__ nd,
                                   const T* __restrict__ g, typename Cx<T>::type* __restrict__ dz, int64_t total,
                                   int64_t F, bool even) {
  LP_GRID_STRIDE(e, total) {
    const int64_t f = e % F, b = e / F, p = pos[b];
    T gx = 0, gy = 0;
    if (p >= 0) {
      const T N = nd[2 * b], D = nd[2 * b + 1];
      const auto x = z[e];
      const T m = sqrt(x.x * x.x + x.y * x.y);
      const T dm = -g[p] * (wf[f] / D - N / (D * D));
      const T k = m > T(0) ? dm / m : T(0);
      const bool edge = f == 0 || (even && f == F - 1);
      const T h = edge ? T(1) : T(0.5);
      gx = k * x.x * h;
      gy = edge ? T(0) : k * x.y * h;
    }
    dz[e].x = gx;
    dz[e].y = gy;
  }
}

// da[b, c, l] = sign(a)·Σ_j taps[j]·ds[b, l + j − r] (symmetric taps: the smoothing is self-adjoint), the
// smoothed value computed once per position for all bases; 0 for rows not selected. The signs from the forward's
// codes where it wrote them (signs not null: one byte per position instead of C values of a), else from a. Grid as
// prior_smooth_kernel.
template <typename T>
__global__ void __launch_bounds__(kPriorTile)
    prior_dattr_kernel(const T* __restrict__ a, const uint8_t* __restrict__ signs, const T* __restrict__ ds,
                       const int64_t* __restrict__ pos, T* __restrict__ da, int64_t B, int64_t C, int64_t L,
                       const Taps<T> taps) {
  __shared__ T tp[kPriorMaxTaps];
  __shared__ T v[kPriorWindow];
  const int r = taps.n / 2, tid = static_cast<int>(threadIdx.x);
  if (tid < taps.n) tp[tid] = taps.v[tid];
  const int64_t l0 = static_cast<int64_t>(blockIdx.x) * kPriorTile, l = l0 + tid;
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    const bool selected = pos[b] >= 0;  // the same for the whole block
    __syncthreads();
    if (selected) prior_row_load(ds, v, b, l0, L, r, tid);
    __syncthreads();
    if (l < L)
      prior_dattr_store(a, signs, da, selected ? prior_smooth_at(v, tp, taps.n, tid) : T(0), selected, b, l, C, L);
  }
}

// Grid of the tiled smoothing kernels: position tiles × rows (at most 65535; the kernels stride over the rest).
dim3 prior_tile_grid(int64_t B, int64_t L) {
  return dim3(static_cast<unsigned>((L + kPriorTile - 1) / kPriorTile), static_cast<unsigned>(B < 65535 ? B : 65535));
}

template <typename T>
Taps<T> make_taps(const std::vector<double>& taps) {
  LP_CHECK(!taps.empty() && taps.size() % 2 == 1 && static_cast<int>(taps.size()) <= kMaxPriorTaps,
           "CUDA Fourier prior: ", taps.size(), " smoothing taps (an odd count up to ", kMaxPriorTaps,
           " is supported; smooth_sigma <= 31)");
  return to_taps<T>(taps);
}

std::vector<int64_t> positions(int64_t B, const std::vector<int64_t>& rows) {
  std::vector<int64_t> pos(static_cast<size_t>(B), -1);
  for (size_t p = 0; p < rows.size(); ++p) pos[static_cast<size_t>(rows[p])] = static_cast<int64_t>(p);
  return pos;
}

// The bin weights on the device, uploaded once per (device, dtype, weights) and kept: they depend only on L, the
// frequency limit and the softness, so a training run uploads them once instead of twice per step (each upload
// from pageable memory synchronises the host with the stream). Never freed (a CUDA graph may hold the pointer): an
// entry of a few KB per geometry a process uses.
template <typename T>
const T* device_weights(const std::vector<double>& wf, int dev) {
  static std::mutex mu;
  static auto* cache = new std::map<std::tuple<int, size_t, std::vector<double>>, std::unique_ptr<DeviceBuffer<T>>>;
  std::lock_guard<std::mutex> lock(mu);
  auto key = std::make_tuple(dev, sizeof(T), wf);
  auto it = cache->find(key);
  if (it == cache->end()) {
    it = cache->emplace(key, std::make_unique<DeviceBuffer<T>>(std::vector<T>(wf.begin(), wf.end()), dev)).first;
  }
  return it->second->get();
}

// The row positions of a launch. When every row is eligible (the prior over a whole batch, as a CUDA-graph step
// runs it: models/train/graph_step.h) they are 0..B-1, uploaded once per (device, B) and kept (never evicted, so a
// captured graph may hold the pointer); other row sets are uploaded per call.
std::shared_ptr<DeviceBuffer<int64_t>> device_positions(int64_t B, const std::vector<int64_t>& rows, int dev) {
  if (static_cast<int64_t>(rows.size()) != B) return std::make_shared<DeviceBuffer<int64_t>>(positions(B, rows), dev);
  static std::mutex mu;
  static auto* cache = new std::map<std::pair<int, int64_t>, std::shared_ptr<DeviceBuffer<int64_t>>>;
  std::lock_guard<std::mutex> lock(mu);
  auto& e = (*cache)[{dev, B}];
  if (!e) e = std::make_shared<DeviceBuffer<int64_t>>(positions(B, rows), dev);
  return e;
}

}  // namespace

void fourier_prior_fwd(const Tensor& attr, const std::vector<int64_t>& rows, const std::vector<double>& wf,
                       const std::vector<double>& taps, Tensor& out, PriorSaved& saved) {
  const int64_t B = attr.size(0), C = attr.size(1), L = attr.size(2), F = L / 2 + 1;
  CudaState& st = state_of(attr);
  const int dev = attr.device().index;
  saved.spec = Tensor::empty(attr.ctx(), {B, F, 2}, attr.dtype(), attr.device());
  saved.nd = Tensor::empty(attr.ctx(), {B, 2}, attr.dtype(), attr.device());
  if (B == 0 || L == 0) return;
  dispatch_dtype(attr.dtype(), [&]<typename T>() {
    using Z = typename Cx<T>::type;
    DeviceBuffer<T> s(static_cast<size_t>(B * L), dev);
    const T* w = device_weights<T>(wf, dev);
    auto pos = device_positions(B, rows, dev);
    saved.cuda_pos = pos;
    std::shared_ptr<DeviceBuffer<uint8_t>> signs;
    if (C <= kPriorSignMaxC) signs = std::make_shared<DeviceBuffer<uint8_t>>(static_cast<size_t>(B * L), dev);
    saved.cuda_signs = signs;
    prior_smooth_kernel<T><<<prior_tile_grid(B, L), kPriorTile, 0, st.stream>>>(
        attr.data<T>(), s.get(), signs ? signs->get() : nullptr, B, C, L, make_taps<T>(taps));
    LP_CUDA_LAUNCH_CHECK();
    Z* z = reinterpret_cast<Z*>(saved.spec.data<T>());
    if constexpr (std::is_same_v<T, float>) {
      LP_CUFFT_CHECK(cufftExecR2C(st.fft_plan(CUFFT_R2C, L, B), s.get(), z));
    } else {
      LP_CUFFT_CHECK(cufftExecD2Z(st.fft_plan(CUFFT_D2Z, L, B), s.get(), z));
    }
    prior_score_kernel<T><<<static_cast<unsigned>(B), kRowThreads, 0, st.stream>>>(z, w, pos->get(),
                                                                                  saved.nd.data<T>(), out.data<T>(), F);
    LP_CUDA_LAUNCH_CHECK();
  });
}

void fourier_prior_bwd(const Tensor& attr, const std::vector<int64_t>& rows, const std::vector<double>& wf,
                       const std::vector<double>& taps, const Tensor& g, const PriorSaved& saved, Tensor& dattr) {
  const int64_t B = attr.size(0), C = attr.size(1), L = attr.size(2), F = L / 2 + 1;
  if (B == 0 || L == 0) return;
  CudaState& st = state_of(attr);
  const int dev = attr.device().index;
  dispatch_dtype(attr.dtype(), [&]<typename T>() {
    using Z = typename Cx<T>::type;
    DeviceBuffer<Z> dz(static_cast<size_t>(B * F), dev);
    DeviceBuffer<T> ds(static_cast<size_t>(B * L), dev);
    const T* w = device_weights<T>(wf, dev);
    std::shared_ptr<DeviceBuffer<int64_t>> pos = std::static_pointer_cast<DeviceBuffer<int64_t>>(saved.cuda_pos);
    if (!pos || pos->size() != static_cast<size_t>(B)) pos = device_positions(B, rows, dev);
    const Z* z = reinterpret_cast<const Z*>(saved.spec.data<T>());
    prior_dspec_kernel<T><<<grid_1d(st, B * F, kThreads), kThreads, 0, st.stream>>>(
        z, w, pos->get(), saved.nd.data<T>(), g.data<T>(), dz.get(), B * F, F, L % 2 == 0);
    LP_CUDA_LAUNCH_CHECK();
    if constexpr (std::is_same_v<T, float>) {
      LP_CUFFT_CHECK(cufftExecC2R(st.fft_plan(CUFFT_C2R, L, B), dz.get(), ds.get()));
    } else {
      LP_CUFFT_CHECK(cufftExecZ2D(st.fft_plan(CUFFT_Z2D, L, B), dz.get(), ds.get()));
    }
    // the forward's sign codes, when it wrote them for this geometry
    const auto signs = std::static_pointer_cast<DeviceBuffer<uint8_t>>(saved.cuda_signs);
    const uint8_t* sg = signs && signs->size() == static_cast<size_t>(B * L) ? signs->get() : nullptr;
    prior_dattr_kernel<T><<<prior_tile_grid(B, L), kPriorTile, 0, st.stream>>>(
        attr.data<T>(), sg, ds.get(), pos->get(), dattr.data<T>(), B, C, L, make_taps<T>(taps));
    LP_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace lowpass::cuda
