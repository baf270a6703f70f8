// Index arithmetic shared by CUDA kernels and their host-side tests (plain C++ under g++):
// broadcasting offsets out[i] <- a[ia], b[ib] with adjacent dimensions merged where the layout allows.
// Test: build/tests/lowpass_tests -ts=cuda ("index arithmetic" runs without a GPU).
#pragma once
#include <cstdint>

#include "engine/error.h"
#include "engine/tensor.h"
#include "kernels/cpu/host_device.h"  // LP_HD

namespace lowpass::cuda {

constexpr int kMaxDims = 8;

// Output index space and the strides of a and b in it (0 on broadcast axes), merged dimensions.
struct BroadcastMap {
  int nd = 0;
  int64_t shape[kMaxDims] = {};
  int64_t sa[kMaxDims] = {};
  int64_t sb[kMaxDims] = {};
};

inline BroadcastMap make_broadcast_map(const Shape& out, const Shape& a, const Shape& b) {
  int64_t nd = static_cast<int64_t>(out.size());
  std::vector<int64_t> shp(out.begin(), out.end()), sa(nd, 0), sb(nd, 0);
  auto strides = [&](const Shape& s, std::vector<int64_t>& st) {
    int64_t stride = 1;
    for (int64_t i = nd - 1, j = static_cast<int64_t>(s.size()) - 1; j >= 0; --i, --j) {
      st[i] = s[j] == 1 ? 0 : stride;
      stride *= s[j];
    }
  };
  strides(a, sa);
  strides(b, sb);
  // Drop size-1 dims, then merge d into d+1 when both operands are contiguous across the pair.
  std::vector<int64_t> ms, ma, mb;
  for (int64_t d = 0; d < nd; ++d) {
    if (shp[d] == 1) continue;
    if (!ms.empty()) {
      int64_t k = static_cast<int64_t>(ms.size()) - 1;
      bool a_ok = ma[k] == sa[d] * shp[d];
      bool b_ok = mb[k] == sb[d] * shp[d];
      if (a_ok && b_ok) {  // (k, d) behave as one dimension of size ms[k]*shp[d] and inner strides
        ms[k] *= shp[d];
        ma[k] = sa[d];
        mb[k] = sb[d];
        continue;
      }
    }
    ms.push_back(shp[d]);
    ma.push_back(sa[d]);
    mb.push_back(sb[d]);
  }
  LP_CHECK(static_cast<int64_t>(ms.size()) <= kMaxDims, "CUDA broadcast: more than ", kMaxDims,
           " non-mergeable dimensions in ", shape_str(out));
  BroadcastMap m;
  m.nd = static_cast<int>(ms.size());
  for (int d = 0; d < m.nd; ++d) {
    m.shape[d] = ms[d];
    m.sa[d] = ma[d];
    m.sb[d] = mb[d];
  }
  return m;
}

// I: the index type of the divisions, uint32_t when the output has fewer than 2^31 elements (elementwise.cu; a 32-bit
// division costs a third of a 64-bit one, and these kernels are bound by them), else int64_t.
template <typename I = int64_t>
LP_HD inline void broadcast_offsets(const BroadcastMap& m, I i, int64_t& ia, int64_t& ib) {
  ia = 0;
  ib = 0;
  for (int d = m.nd - 1; d >= 0; --d) {
    const I n = static_cast<I>(m.shape[d]);
    const I idx = i % n;
    i /= n;
    ia += static_cast<int64_t>(idx) * m.sa[d];
    ib += static_cast<int64_t>(idx) * m.sb[d];
  }
}

// im2col (kernels/cuda/conv1d.cu) for batches [b0, b0 + nb), one row of col (its Lout positions) at a time: row r
// reads x row `xrow` (the element offset of its start in x (B, G·C, Lin)) shifted by kd = k·d, i.e. position t
// reads x[xrow + t + kd − p] when p <= t + kd < Lin + p, zero padding otherwise. kGroupMajor = false: col
// (nb, G, C·K, Lout), the forward's layout; true: col (G, C·K, nb, Lout), the weight grad's. I is uint32_t when
// every index fits (conv1d.cu's fits32; p >= 0 then) or int64_t. The kernel divides once per row, not per element
// (six 32-bit divisions per element had made it instruction-bound: 144 µs for 132 MB on an H200).
template <typename I, bool kGroupMajor>
LP_HD inline void im2col_row(I r, I b0, I nb, I G, I C, I Lin, I K, I d, int64_t& xrow, I& kd) {
  I bb, gi, ck;
  if constexpr (kGroupMajor) {
    bb = r % nb;
    r /= nb;
    ck = r % (C * K);
    gi = r / (C * K);
  } else {
    ck = r % (C * K);
    r /= C * K;
    gi = r % G;
    bb = r / G;
  }
  const I c = ck / K, k = ck % K;
  kd = k * d;
  xrow = static_cast<int64_t>(((b0 + bb) * G * C + gi * C + c) * Lin);
}

// The offset in x that column element e (= r·Lout + t) reads, or -1 where the tap falls in the zero padding.
template <typename I, bool kGroupMajor>
LP_HD inline int64_t im2col_source(I e, I b0, I nb, I G, I C, I Lin, I Lout, I K, I d, I p) {
  int64_t xrow;
  I kd;
  im2col_row<I, kGroupMajor>(e / Lout, b0, nb, G, C, Lin, K, d, xrow, kd);
  const I sp = e % Lout + kd;  // source position + p: inside [0, Lin) iff p <= sp < Lin + p (no signed arithmetic)
  if (sp < p || sp >= Lin + p) return -1;
  return xrow + static_cast<int64_t>(sp - p);
}

}  // namespace lowpass::cuda
