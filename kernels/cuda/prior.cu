// CUDA twin of the fused Fourier-prior chain (kernels/cpu/prior.h): one kernel for |a| summed over bases and
// Gaussian smoothing (tiled: kernels/cuda/prior_tiles.h), batched R2C cuFFT, one block per row for |X|, D and N;
// the score kernel also writes the spectrum gradient for an upstream gradient of 1 (packed for C2R); backward: C2R of
// it, one kernel for smoothing-adjoint × sign × g (a repeated backward: a dX kernel for g first, from the
// spectrum). The spectrum side holds only the P rows the prior scores, compacted and padded with zero rows to
// Rp = prior_fft_rows(P, B) (at most 8 plan sizes per batch size); rows the prior does not score are never read, and
// their attribution gradient is written as 0.
// Test: build/tests/lowpass_tests -ts=cuda. Legend: B rows of the batch, C bases, F = L/2 + 1, P scored rows,
// Rp compact rows (P plus padding).
#include <cstdlib>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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

constexpr int kMaxPriorTaps = kPriorMaxTaps;

// s[p, l] = Σ_j taps[j]·Σ_c |a[b, c, l + j − r]| (0 outside [0, L)) for compact row p and its batch row
// b = rows[p], bases summed first as the CPU does; 0 for the padding rows (rows[p] < 0), which read nothing. Grid
// (position spans, compact rows), rows strided by gridDim.y; the window and the taps staged in shared memory
// (kernels/cuda/prior_tiles.h). signs (not null, C <= 4): the sign codes for the backward, at compact row p. kC: C
// at compile time (4, DNA), or 0 for any C. kMinBlocks: resident blocks per SM the registers must allow
// (prior_min_blocks).
template <typename T, int kC, int kMinBlocks>
__global__ void __launch_bounds__(kPriorThreads, kMinBlocks)
    prior_smooth_kernel(const T* __restrict__ a, T* __restrict__ s, uint8_t* __restrict__ signs,
                        const int32_t* __restrict__ rows, int64_t Rp, int64_t C, int64_t L, const Taps<T> taps) {
  __shared__ T tp[kPriorMaxTaps];
  __shared__ T u[kPriorWindow];
  const int r = taps.n / 2, tid = static_cast<int>(threadIdx.x);
  if (tid < taps.n) tp[tid] = taps.v[tid];
  const int64_t l0 = static_cast<int64_t>(blockIdx.x) * kPriorSpan;
  for (int64_t p = blockIdx.y; p < Rp; p += gridDim.y) {
    const int64_t b = rows[p];  // the same for the whole block
    __syncthreads();  // the previous row's window has been read
    if (b >= 0) prior_sum_abs_load<kC>(a, u, signs, b, p, l0, C, L, r, tid);
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kPriorPer; ++k) {
      const int i = tid + k * kPriorThreads;
      if (l0 + i < L) s[p * L + l0 + i] = b >= 0 ? prior_smooth_at(u, tp, taps.n, i) : T(0);
    }
  }
}

// d and n summed over the block at once (block_sum's order for each: warp trees, then the warps' partials in one
// warp); valid in thread 0. scratch: 64 values.
template <typename T>
__device__ __forceinline__ void block_sum2(T& d, T& n, T* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = (blockDim.x + 31) / 32;
  d = warp_sum(d), n = warp_sum(n);
  if (lane == 0) scratch[warp] = d, scratch[32 + warp] = n;
  __syncthreads();
  if (warp == 0) {
    d = warp_sum(lane < warps ? scratch[lane] : T(0));
    n = warp_sum(lane < warps ? scratch[32 + lane] : T(0));
  }
}

// One block per compact row p: D = Σ_f |X_f| (1 when 0), N = Σ_f w_f|X_f|; out[p] = 1 − N/D for the P scored
// rows. unit (not null): also the row's spectrum gradient for an upstream gradient of 1, packed for C2R
// (prior_unit_dspec), 0 for the padding rows (p >= P), which read nothing: the backward scales by g after its C2R
// (the chain is linear in g), so it runs no spectrum kernel of its own.
template <typename T>
__global__ void prior_score_kernel(const typename Cx<T>::type* __restrict__ z, const T* __restrict__ wf,
                                   T* __restrict__ nd, T* __restrict__ out, typename Cx<T>::type* __restrict__ unit,
                                   int64_t P, int64_t F, bool even) {
  __shared__ T scratch[64];
  __shared__ T row_nd[2];
  const int64_t p = blockIdx.x;
  const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  if (p >= P) {  // padding (only launched with unit)
    prior_unit_dspec(z + p * F, wf, unit + p * F, F, tid, nt, T(0), T(1), even, false);
    return;
  }
  const auto* zr = z + p * F;
  const bool one_pass = F <= static_cast<int64_t>(kPriorScoreBatch) * nt;  // every bin of the row in registers
  typename Cx<T>::type x[kPriorScoreBatch];
  T w[kPriorScoreBatch];
  T d = 0, n = 0;
  if (one_pass) {  // prior_score_partial's single round, its bins kept for the second pass
    prior_score_round_load(zr, wf, tid, nt, F, x, w);
    prior_score_round_sum(x, w, tid, nt, F, d, n);
  } else {
    prior_score_partial(zr, wf, F, tid, nt, d, n);
  }
  block_sum2(d, n, scratch);
  if (threadIdx.x == 0) {
    if (d == T(0)) d = T(1);
    nd[2 * p] = n, nd[2 * p + 1] = d;
    out[p] = T(1) - n / d;
    row_nd[0] = n, row_nd[1] = d;
  }
  if (!unit) return;
  __syncthreads();
  const T N = row_nd[0], D = row_nd[1];
  if (!one_pass) {
    prior_unit_dspec(zr, wf, unit + p * F, F, tid, nt, N, D, even, true);
    return;
  }
  prior_unit_round(x, w, tid, nt, F, D, N / D, even, unit + p * F);  // prior_unit_dspec from the registers
}

// dX of every bin (prior_dspec_at) of the P scored rows, packed for C2R; the padding rows up to Rp get 0 without
// reading their spectrum. Grid (bin spans of kPriorSpecThreads·kPriorSpecPer, compact rows), rows strided by
// gridDim.y; the row's constants read once.
template <typename T>
__global__ void __launch_bounds__(kPriorSpecThreads)
    prior_dspec_kernel(const typename Cx<T>::type* __restrict__ z, const T* __restrict__ wf,
                       const T* __restrict__ nd, const T* __restrict__ g, typename Cx<T>::type* __restrict__ dz,
                       int64_t P, int64_t Rp, int64_t F, bool even) {
  const int64_t f0 = static_cast<int64_t>(blockIdx.x) * (kPriorSpecThreads * kPriorSpecPer) + threadIdx.x;
  for (int64_t p = blockIdx.y; p < Rp; p += gridDim.y) {
    const auto* zr = z + p * F;
    auto* dr = dz + p * F;
    if (p >= P) {
#pragma unroll
      for (int k = 0; k < kPriorSpecPer; ++k) {
        const int64_t f = f0 + k * kPriorSpecThreads;
        if (f < F) dr[f] = typename Cx<T>::type{T(0), T(0)};
      }
      continue;
    }
    const T N = nd[2 * p], D = nd[2 * p + 1], gp = g[p], nod = N / D;
    typename Cx<T>::type x[kPriorSpecPer];  // whole bins: one 8- or 16-byte load each
    T w[kPriorSpecPer];
#pragma unroll
    for (int k = 0; k < kPriorSpecPer; ++k) prior_bin_load(zr, wf, f0 + k * kPriorSpecThreads, F, x[k], w[k]);
#pragma unroll
    for (int k = 0; k < kPriorSpecPer; ++k) {
      const int64_t f = f0 + k * kPriorSpecThreads;
      if (f >= F) continue;
      typename Cx<T>::type o;  // stored whole
      prior_dspec_at(x[k].x, x[k].y, w[k], gp, D, nod, f == 0 || (even && f == F - 1), o.x, o.y);
      dr[f] = o;
    }
  }
}

// da[b, c, l] = sign(a)·Σ_j taps[j]·ds[p, l + j − r] with p = pos[b] the row's compact row (symmetric taps: the
// smoothing is self-adjoint), the smoothed value computed once per position for all bases; 0 for rows not scored
// (pos[b] < 0), which read nothing. The signs from the forward's codes where it wrote them (signs not null: one byte
// per position, loaded with the window), else from a. gs (not null): ds is the unit gradient's (the forward's
// prior_unit_dspec), scaled here by the row's upstream gradient gs[p]. Grid (position spans, batch rows).
template <typename T, int kMinBlocks>
__global__ void __launch_bounds__(kPriorThreads, kMinBlocks)
    prior_dattr_kernel(const T* __restrict__ a, const uint8_t* __restrict__ signs, const T* __restrict__ ds,
                       const T* __restrict__ gs, const int32_t* __restrict__ pos, T* __restrict__ da, int64_t B,
                       int64_t C, int64_t L, const Taps<T> taps) {
  __shared__ T tp[kPriorMaxTaps];
  __shared__ T v[kPriorWindow];
  const int r = taps.n / 2, tid = static_cast<int>(threadIdx.x);
  if (tid < taps.n) tp[tid] = taps.v[tid];
  const int64_t l0 = static_cast<int64_t>(blockIdx.x) * kPriorSpan;
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    const int64_t p = pos[b];
    const bool selected = p >= 0;  // the same for the whole block
    uint8_t code[kPriorPer] = {};
    const T gp = selected && gs ? gs[p] : T(1);
    __syncthreads();
    if (selected) {
      if (signs) prior_codes_load(signs, code, p, l0, L, tid);
      prior_row_load(ds, v, p, l0, L, r, tid);
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kPriorPer; ++k) {
      const int i = tid + k * kPriorThreads;
      if (l0 + i < L)
        prior_dattr_store(a, signs != nullptr, code[k], da, selected ? gp * prior_smooth_at(v, tp, taps.n, i) : T(0),
                          selected, b, l0 + i, C, L);
    }
  }
}

// Resident blocks per SM that the smoothing kernels' register budget allows (__launch_bounds__' second argument):
// 8 (32 registers, every thread slot of an SM; none spill, ptxas -v) or 4 (up to 64: the compiler's own choice,
// 51 and 64 registers on sm_90). One block is one row's span, loads then barrier then sums then stores, so the
// blocks resident on an SM are what overlaps one row's loads with another's stores (docs/cuda.md, "The chain within
// 2× of its byte floor": on an H200, 8 and 6 tie and 4 is slower). LOWPASS_PRIOR_BLOCKS=4|6|8 picks one for
// measurement; read once.
int prior_min_blocks() {
  static const int v = [] {
    const char* e = std::getenv("LOWPASS_PRIOR_BLOCKS");
    if (!e || !*e) return kPriorMinBlocks;
    const int b = std::atoi(e);
    LP_CHECK(b == 4 || b == 6 || b == 8, "LOWPASS_PRIOR_BLOCKS must be 4, 6 or 8, not '", e, "'");
    return b;
  }();
  return v;
}

// Calls f with the blocks-per-SM bound as a compile-time constant; float64 always 4 (its windows and sums need the
// registers).
template <typename T, typename F>
void with_min_blocks(F&& f) {
  if constexpr (std::is_same_v<T, double>) {
    f.template operator()<4>();
  } else {
    switch (prior_min_blocks()) {
      case 4: f.template operator()<4>(); break;
      case 6: f.template operator()<6>(); break;
      default: f.template operator()<8>(); break;
    }
  }
}

// Grid of the smoothing kernels: position spans × rows (at most 65535; the kernels stride over the rest).
dim3 prior_tile_grid(int64_t rows, int64_t L) {
  return dim3(static_cast<unsigned>((L + kPriorSpan - 1) / kPriorSpan),
              static_cast<unsigned>(rows < 65535 ? rows : 65535));
}

template <typename T>
Taps<T> make_taps(const std::vector<double>& taps) {
  LP_CHECK(!taps.empty() && taps.size() % 2 == 1 && static_cast<int>(taps.size()) <= kMaxPriorTaps,
           "CUDA Fourier prior: ", taps.size(), " smoothing taps (an odd count up to ", kMaxPriorTaps,
           " is supported; smooth_sigma <= 31)");
  return to_taps<T>(taps);
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

// The index list of a launch (prior_index) on the device. When every row is eligible (the prior over a whole batch,
// as a CUDA-graph step runs it: models/train/graph_step.h) it is uploaded once per (device, B) and kept (never
// evicted, so a captured graph may hold the pointer); other row sets are uploaded per call.
std::shared_ptr<DeviceBuffer<int32_t>> device_index(int64_t B, const std::vector<int64_t>& rows, int dev) {
  if (static_cast<int64_t>(rows.size()) != B) return std::make_shared<DeviceBuffer<int32_t>>(prior_index(B, rows), dev);
  static std::mutex mu;
  static auto* cache = new std::map<std::pair<int, int64_t>, std::shared_ptr<DeviceBuffer<int32_t>>>;
  std::lock_guard<std::mutex> lock(mu);
  auto& e = (*cache)[{dev, B}];
  if (!e) e = std::make_shared<DeviceBuffer<int32_t>>(prior_index(B, rows), dev);
  return e;
}

}  // namespace

void fourier_prior_fwd(const Tensor& attr, const std::vector<int64_t>& rows, const std::vector<double>& wf,
                       const std::vector<double>& taps, Tensor& out, PriorSaved& saved) {
  const int64_t B = attr.size(0), C = attr.size(1), L = attr.size(2), F = L / 2 + 1;
  const int64_t P = static_cast<int64_t>(rows.size()), Rp = prior_fft_rows(P, B);
  CudaState& st = state_of(attr);
  const int dev = attr.device().index;
  saved.spec = Tensor::empty(attr.ctx(), {Rp, F, 2}, attr.dtype(), attr.device());
  saved.nd = Tensor::empty(attr.ctx(), {P, 2}, attr.dtype(), attr.device());
  saved.unit_dspec = saved.for_backward ? Tensor::empty(attr.ctx(), {Rp, F, 2}, attr.dtype(), attr.device()) : Tensor();
  saved.unit_dspec_used = false;
  if (P == 0 || L == 0) return;
  dispatch_dtype(attr.dtype(), [&]<typename T>() {
    using Z = typename Cx<T>::type;
    DeviceBuffer<T> s(static_cast<size_t>(Rp * L), dev);  // (Rp, L) smoothed signal
    const T* w = device_weights<T>(wf, dev);
    auto idx = device_index(B, rows, dev);
    saved.cuda_pos = idx;
    const int32_t* compact = idx->get() + B;  // compact row → batch row
    std::shared_ptr<DeviceBuffer<uint8_t>> signs;
    if (C <= kPriorSignMaxC)  // (Rp, L) sign codes
      signs = std::make_shared<DeviceBuffer<uint8_t>>(static_cast<size_t>(Rp * L), dev);
    saved.cuda_signs = signs;
    with_min_blocks<T>([&]<int kB>() {
      if (C == 4) {
        prior_smooth_kernel<T, 4, kB><<<prior_tile_grid(Rp, L), kPriorThreads, 0, st.stream>>>(
            attr.data<T>(), s.get(), signs ? signs->get() : nullptr, compact, Rp, C, L, make_taps<T>(taps));
      } else {
        prior_smooth_kernel<T, 0, kB><<<prior_tile_grid(Rp, L), kPriorThreads, 0, st.stream>>>(
            attr.data<T>(), s.get(), signs ? signs->get() : nullptr, compact, Rp, C, L, make_taps<T>(taps));
      }
    });
    LP_CUDA_LAUNCH_CHECK();
    Z* z = reinterpret_cast<Z*>(saved.spec.data<T>());
    if constexpr (std::is_same_v<T, float>) {
      LP_CUFFT_CHECK(cufftExecR2C(st.fft_plan(CUFFT_R2C, L, Rp).handle, s.get(), z));
    } else {
      LP_CUFFT_CHECK(cufftExecD2Z(st.fft_plan(CUFFT_D2Z, L, Rp).handle, s.get(), z));
    }
    Z* unit = saved.for_backward ? reinterpret_cast<Z*>(saved.unit_dspec.data<T>()) : nullptr;
    prior_score_kernel<T><<<static_cast<unsigned>(unit ? Rp : P), prior_score_threads(F), 0, st.stream>>>(
        z, w, saved.nd.data<T>(), out.data<T>(), unit, P, F, L % 2 == 0);
    LP_CUDA_LAUNCH_CHECK();
  });
}

void fourier_prior_bwd(const Tensor& attr, const std::vector<int64_t>& rows, const std::vector<double>& wf,
                       const std::vector<double>& taps, const Tensor& g, const PriorSaved& saved, Tensor& dattr) {
  const int64_t B = attr.size(0), C = attr.size(1), L = attr.size(2), F = L / 2 + 1;
  const int64_t P = static_cast<int64_t>(rows.size()), Rp = prior_fft_rows(P, B);
  if (B == 0 || L == 0) return;
  LP_CHECK(P > 0 && saved.spec.defined() && saved.spec.size(0) == Rp,
           "CUDA Fourier prior backward: the forward's saved spectrum does not match ", P, " rows of ", B);
  CudaState& st = state_of(attr);
  const int dev = attr.device().index;
  dispatch_dtype(attr.dtype(), [&]<typename T>() {
    using Z = typename Cx<T>::type;
    DeviceBuffer<T> ds(static_cast<size_t>(Rp * L), dev);  // (Rp, L)
    const T* w = device_weights<T>(wf, dev);
    auto idx = std::static_pointer_cast<DeviceBuffer<int32_t>>(saved.cuda_pos);
    if (!idx || idx->size() != static_cast<size_t>(B + Rp)) idx = device_index(B, rows, dev);
    // The first backward after a forward inverts the forward's unit gradient (cuFFT's C2R may overwrite its input,
    // so it serves once) and scales by g in the last kernel; a repeated backward (a retained graph) builds g's
    // spectrum gradient from the saved spectrum instead.
    const bool unit = saved.unit_dspec.defined() && saved.unit_dspec.size(0) == Rp && !saved.unit_dspec_used;
    std::optional<DeviceBuffer<Z>> dz;
    Z* src = nullptr;
    if (unit) {
      saved.unit_dspec_used = true;
      src = reinterpret_cast<Z*>(saved.unit_dspec.data<T>());
    } else {
      dz.emplace(static_cast<size_t>(Rp * F), dev);  // (Rp, F) spectrum gradient, packed for C2R
      src = dz->get();
      const Z* z = reinterpret_cast<const Z*>(saved.spec.data<T>());
      const dim3 spec_grid(static_cast<unsigned>((F + kPriorSpecThreads * kPriorSpecPer - 1) /
                                                 (kPriorSpecThreads * kPriorSpecPer)),
                           static_cast<unsigned>(Rp < 65535 ? Rp : 65535));
      prior_dspec_kernel<T><<<spec_grid, kPriorSpecThreads, 0, st.stream>>>(z, w, saved.nd.data<T>(), g.data<T>(),
                                                                            src, P, Rp, F, L % 2 == 0);
      LP_CUDA_LAUNCH_CHECK();
    }
    if constexpr (std::is_same_v<T, float>) {
      LP_CUFFT_CHECK(cufftExecC2R(st.fft_plan(CUFFT_C2R, L, Rp).handle, src, ds.get()));
    } else {
      LP_CUFFT_CHECK(cufftExecZ2D(st.fft_plan(CUFFT_Z2D, L, Rp).handle, src, ds.get()));
    }
    // the forward's sign codes, when it wrote them for this geometry
    const auto signs = std::static_pointer_cast<DeviceBuffer<uint8_t>>(saved.cuda_signs);
    const uint8_t* sg = signs && signs->size() == static_cast<size_t>(Rp * L) ? signs->get() : nullptr;
    with_min_blocks<T>([&]<int kB>() {
      prior_dattr_kernel<T, kB><<<prior_tile_grid(B, L), kPriorThreads, 0, st.stream>>>(
          attr.data<T>(), sg, ds.get(), unit ? g.data<T>() : nullptr, idx->get(), dattr.data<T>(), B, C, L,
          make_taps<T>(taps));
    });
    LP_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace lowpass::cuda
