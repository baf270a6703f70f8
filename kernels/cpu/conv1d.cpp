// conv1d on the CPU: the plain-loop reference (the spec), im2col + GEMM (Eigen or OpenBLAS), and the
// dispatcher that picks the fastest family per shape (docs/conv1d.md): AVX-512 direct, one-hot gather.
// y = corr(x, w) + b;  dx = corr(dy, flip(w)ᵀ);  dw = Σ dy ⊗ x.  Test: build/tests/lowpass_tests -ts=conv1d
#include "kernels/cpu/conv1d.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"

namespace lowpass::cpu {

const char* conv_algo_name(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::Auto: return "auto";
    case ConvAlgo::Reference: return "reference";
    case ConvAlgo::Im2colEigen: return "im2col-eigen";
    case ConvAlgo::Im2colBlas: return "im2col-openblas";
    case ConvAlgo::Direct: return "direct-avx512";
    case ConvAlgo::Gather: return "onehot-gather";
  }
  return "?";
}

bool conv_algo_available(ConvAlgo a) {
  if (a == ConvAlgo::Im2colBlas) return have_openblas();
  if (a == ConvAlgo::Direct) return direct_available();
  return true;
}

namespace {

// ---------------- reference: plain loops ----------------
template <typename T>
void corr_reference(const T* x, const T* w, const T* bias, T* y, const CorrGeom& g) {
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t gi = 0; gi < g.G; ++gi)
      for (int64_t o = 0; o < g.O; ++o) {
        const int64_t oc = gi * g.O + o;
        T* yr = y + (b * g.G * g.O + oc) * g.Lout;
        for (int64_t t = 0; t < g.Lout; ++t) {
          T s = bias ? bias[oc] : T(0);
          for (int64_t c = 0; c < g.C; ++c) {
            const T* xr = x + (b * g.G * g.C + gi * g.C + c) * g.Lin;
            const T* wr = w + (oc * g.C + c) * g.K;
            for (int64_t k = 0; k < g.K; ++k) {
              const int64_t s_in = t + k * g.d - g.p;
              if (s_in >= 0 && s_in < g.Lin) s += wr[k] * xr[s_in];
            }
          }
          yr[t] = s;
        }
      }
}

template <typename T>
void corr_wgrad_reference(const T* x, const T* dy, T* dw, const CorrGeom& g) {
  for (int64_t gi = 0; gi < g.G; ++gi)
    for (int64_t o = 0; o < g.O; ++o)
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t k = 0; k < g.K; ++k) {
          const int64_t oc = gi * g.O + o;
          T s = 0;
          for (int64_t b = 0; b < g.B; ++b) {
            const T* dyr = dy + (b * g.G * g.O + oc) * g.Lout;
            const T* xr = x + (b * g.G * g.C + gi * g.C + c) * g.Lin;
            for (int64_t t = 0; t < g.Lout; ++t) {
              const int64_t s_in = t + k * g.d - g.p;
              if (s_in >= 0 && s_in < g.Lin) s += dyr[t] * xr[s_in];
            }
          }
          dw[(oc * g.C + c) * g.K + k] = s;
        }
}

// ---------------- im2col + GEMM ----------------
// col (C·K, n): col[(c·K+k)·n + j] = x[c, t0 + j + k·d - p] (0 outside [0, Lin)); xg points at channel gC.
template <typename T>
void im2col(const T* xg, const CorrGeom& g, int64_t t0, int64_t n, T* col) {
  for (int64_t c = 0; c < g.C; ++c) {
    const T* xr = xg + c * g.Lin;
    for (int64_t k = 0; k < g.K; ++k) {
      T* cr = col + (c * g.K + k) * n;
      const int64_t s0 = t0 + k * g.d - g.p;  // input index of column j = 0
      const int64_t j_lo = std::clamp<int64_t>(-s0, 0, n), j_hi = std::clamp<int64_t>(g.Lin - s0, 0, n);
      std::fill(cr, cr + j_lo, T(0));
      if (j_hi > j_lo) std::memcpy(cr + j_lo, xr + s0 + j_lo, sizeof(T) * (j_hi - j_lo));
      std::fill(cr + std::max(j_hi, j_lo), cr + n, T(0));
    }
  }
}

// Columns per im2col chunk: the column buffer stays around 512 KiB.
int64_t im2col_chunk(const CorrGeom& g, size_t elem) {
  int64_t n = int64_t(512 * 1024 / elem) / std::max<int64_t>(g.C * g.K, 1);
  n = std::max<int64_t>(n, 64);
  return std::min(n, g.Lout);
}

template <typename T>
void corr_im2col(const Context& ctx, const T* x, const T* w, const T* bias, T* y, const CorrGeom& g, GemmBackend be) {
  const int64_t tc = im2col_chunk(g, sizeof(T));
  const int64_t nchunks = (g.Lout + tc - 1) / tc;
  const int64_t items = g.B * g.G * nchunks;
  const int64_t CK = g.C * g.K;
  parallel_chunks(ctx, items, 1, [&](int64_t i0, int64_t i1) {
    std::vector<T> col(static_cast<size_t>(CK * tc));  // (C·K, tc)
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t ch = i % nchunks, gi = (i / nchunks) % g.G, b = i / (nchunks * g.G);
      const int64_t t0 = ch * tc, n = std::min(tc, g.Lout - t0);
      im2col(x + (b * g.G + gi) * g.C * g.Lin, g, t0, n, col.data());
      T* yo = y + (b * g.G + gi) * g.O * g.Lout + t0;  // (O, n) with ld Lout
      gemm_serial<T>(false, false, g.O, n, CK, T(1), w + gi * g.O * CK, CK, col.data(), n, T(0), yo, g.Lout, be);
      if (bias)
        for (int64_t o = 0; o < g.O; ++o)
          for (int64_t j = 0; j < n; ++j) yo[o * g.Lout + j] += bias[gi * g.O + o];
    }
  });
}

// Runs `parts` independent partial sums in parallel and adds them in index order into out (n values).
template <typename T, typename F>
void fixed_order_reduce(const Context& ctx, int64_t parts, int64_t n, T* out, F&& fill_part) {
  std::vector<std::vector<T>> partial(static_cast<size_t>(std::max<int64_t>(parts - 1, 0)));
  parallel_for(ctx, parts, 1, [&](int64_t p) {
    T* dst = out;
    if (p > 0) {
      partial[size_t(p - 1)].assign(size_t(n), T(0));
      dst = partial[size_t(p - 1)].data();
    } else {
      std::fill(out, out + n, T(0));
    }
    fill_part(p, dst);
  });
  for (auto& v : partial)
    for (int64_t i = 0; i < n; ++i) out[i] += v[size_t(i)];
}

template <typename T>
void corr_wgrad_im2col(const Context& ctx, const T* x, const T* dy, T* dw, const CorrGeom& g, GemmBackend be) {
  const int64_t tc = im2col_chunk(g, sizeof(T));
  const int64_t CK = g.C * g.K;
  const int64_t parts = std::min<int64_t>(ctx.threads(), g.B);
  fixed_order_reduce<T>(ctx, parts, g.G * g.O * CK, dw, [&](int64_t p, T* acc) {
    std::vector<T> col(static_cast<size_t>(CK * tc));
    for (int64_t b = g.B * p / parts; b < g.B * (p + 1) / parts; ++b)
      for (int64_t gi = 0; gi < g.G; ++gi)
        for (int64_t t0 = 0; t0 < g.Lout; t0 += tc) {
          const int64_t n = std::min(tc, g.Lout - t0);
          im2col(x + (b * g.G + gi) * g.C * g.Lin, g, t0, n, col.data());
          // acc_g (O, CK) += dy (O, n) · colᵀ (n, CK)
          gemm_serial<T>(false, true, g.O, CK, n, T(1), dy + (b * g.G + gi) * g.O * g.Lout + t0, g.Lout, col.data(),
                         n, T(1), acc + gi * g.O * CK, CK, be);
        }
  });
}

void check_geom(const Tensor& x, const Tensor& w, const Tensor& y, const CorrGeom& g) {
  LP_ASSERT(x.numel() == g.B * g.G * g.C * g.Lin, "conv1d kernel: x ", x.describe());
  LP_ASSERT(w.numel() == g.G * g.O * g.C * g.K, "conv1d kernel: w ", w.describe());
  LP_ASSERT(y.numel() == g.B * g.G * g.O * g.Lout, "conv1d kernel: y ", y.describe());
  LP_ASSERT(x.dtype() == w.dtype() && x.dtype() == y.dtype(), "conv1d kernel: dtypes differ");
}

// Measured per shape in docs/conv1d.md ("Choice per shape").
ConvAlgo pick_fwd(const Tensor& x, const CorrGeom&) {
  if (x.dtype() == DType::F32 && direct_available()) return ConvAlgo::Direct;
  return ConvAlgo::Im2colEigen;
}
ConvAlgo pick_wgrad(const Tensor& x, const CorrGeom& g) {
  // O ≥ 8: the wide tile (the one-hot layer's C·K = 84 too, 2× im2col + OpenBLAS); O ≤ 4: the narrow one
  // (BPNet's profile head); 5..7 would waste most of a wide tile.
  if (x.dtype() == DType::F32 && direct_available() && (g.O >= 8 || g.O <= 4)) return ConvAlgo::Direct;
  // Without AVX-512, few input columns (C·K ≤ 128): im2col is cheap and OpenBLAS's GEMM beats Eigen's.
  if (x.dtype() == DType::F32 && have_openblas() && g.C * g.K <= 128) return ConvAlgo::Im2colBlas;
  return ConvAlgo::Im2colEigen;
}

}  // namespace

void conv1d_corr(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const CorrGeom& g, ConvAlgo algo) {
  check_geom(x, w, y, g);
  if (algo == ConvAlgo::Auto) algo = pick_fwd(x, g);
  LP_CHECK(conv_algo_available(algo), "conv1d: algorithm ", conv_algo_name(algo), " is not available in this build");
  if (algo == ConvAlgo::Gather) {
    std::vector<int8_t> codes;
    LP_CHECK(g.G == 1 && onehot_codes(x, codes), "conv1d: the gather algorithm needs a one-hot x and groups 1, got ",
             x.describe());
    conv1d_corr_gather(codes, w, bias, y, g);
    return;
  }
  if (algo == ConvAlgo::Direct) {
    LP_CHECK(x.dtype() == DType::F32, "conv1d: the direct kernel is float32 only, got ", x.describe());
    conv1d_corr_direct(x.data<float>(), w.data<float>(), bias.defined() ? bias.data<float>() : nullptr, y.data<float>(),
                       g, x.ctx());
    return;
  }
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    const T* pb = bias.defined() ? bias.data<T>() : nullptr;
    if (algo == ConvAlgo::Reference) corr_reference<T>(x.data<T>(), w.data<T>(), pb, y.data<T>(), g);
    else
      corr_im2col<T>(x.ctx(), x.data<T>(), w.data<T>(), pb, y.data<T>(), g,
                     algo == ConvAlgo::Im2colBlas ? GemmBackend::OpenBlas : GemmBackend::Eigen);
  });
}

void conv1d_corr_wgrad(const Tensor& x, const Tensor& dy, Tensor& dw, const CorrGeom& g, ConvAlgo algo) {
  check_geom(x, dw, dy, g);
  if (algo == ConvAlgo::Auto) algo = pick_wgrad(x, g);
  LP_CHECK(conv_algo_available(algo), "conv1d: algorithm ", conv_algo_name(algo), " is not available in this build");
  if (algo == ConvAlgo::Gather) {
    std::vector<int8_t> codes;
    LP_CHECK(g.G == 1 && onehot_codes(x, codes), "conv1d weight grad: the scatter algorithm needs a one-hot x and "
             "groups 1, got ", x.describe());
    conv1d_corr_wgrad_scatter(codes, dy, dw, g);
    return;
  }
  if (algo == ConvAlgo::Direct) {
    LP_CHECK(x.dtype() == DType::F32, "conv1d: the direct kernel is float32 only, got ", x.describe());
    conv1d_corr_wgrad_direct(x.data<float>(), dy.data<float>(), dw.data<float>(), g, x.ctx());
    return;
  }
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    if (algo == ConvAlgo::Reference) corr_wgrad_reference<T>(x.data<T>(), dy.data<T>(), dw.data<T>(), g);
    else
      corr_wgrad_im2col<T>(x.ctx(), x.data<T>(), dy.data<T>(), dw.data<T>(), g,
                           algo == ConvAlgo::Im2colBlas ? GemmBackend::OpenBlas : GemmBackend::Eigen);
  });
}

// ---------------- conv1d in the ops' terms ----------------
namespace {
CorrGeom fwd_geom(const Tensor& x, const Tensor& w, const Conv1dOpts& o) {
  const int64_t K = w.size(2);
  const int64_t Lout = x.size(2) + o.pad_left + o.pad_right - o.dilation * (K - 1);
  return {x.size(0), o.groups, x.size(1) / o.groups, w.size(0) / o.groups, x.size(2), Lout, K, o.dilation, o.pad_left};
}
// x is worth a one-hot check: few channels, one group, and the caller did not force another family. Under
// Auto a float32 AVX-512 build takes the direct kernel instead: it measured 2× faster than the gather.
bool try_onehot(const Tensor& x, const Conv1dOpts& o, ConvAlgo algo, std::vector<int8_t>& codes) {
  if (algo != ConvAlgo::Auto && algo != ConvAlgo::Gather) return false;
  if (algo == ConvAlgo::Auto && x.dtype() == DType::F32 && direct_available()) return false;
  if (o.groups != 1 || x.size(1) > 16) return false;
  return onehot_codes(x, codes);
}
}  // namespace

void conv1d_fwd_cpu(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const Conv1dOpts& o,
                    ConvAlgo algo) {
  CorrGeom g = fwd_geom(x, w, o);
  std::vector<int8_t> codes;
  if (try_onehot(x, o, algo, codes)) {
    check_geom(x, w, y, g);
    conv1d_corr_gather(codes, w, bias, y, g);
    return;
  }
  conv1d_corr(x, w, bias, y, g, algo);
}

bool conv1d_relu_fusable(const Tensor& x, const Tensor& w, const Conv1dOpts& o) {
  return pick_fwd(x, fwd_geom(x, w, o)) == ConvAlgo::Direct;  // conv1d_fwd_cpu's own choice: the composed ops' bits
}

void conv1d_fwd_relu_cpu(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& residual, Tensor& y,
                         const Conv1dOpts& o) {
  const CorrGeom g = fwd_geom(x, w, o);
  check_geom(x, w, y, g);
  LP_ASSERT(pick_fwd(x, g) == ConvAlgo::Direct, "conv1d_fwd_relu_cpu: needs float32 and the direct kernel, got ",
            x.describe());
  LP_ASSERT(!residual.defined() || (residual.dtype() == DType::F32 && residual.numel() == y.numel()),
            "conv1d_fwd_relu_cpu: residual ", residual.describe(), " does not match y ", y.describe());
  conv1d_corr_direct(x.data<float>(), w.data<float>(), bias.defined() ? bias.data<float>() : nullptr, y.data<float>(),
                     g, x.ctx(), true, residual.defined() ? residual.data<float>() : nullptr);
}

void conv1d_bwd_input_cpu(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv1dOpts& o, ConvAlgo algo) {
  // dx[b, gC+c, s] = Σ_{o,k} w[gO+o, c, k]·dy[b, gO+o, s + pad_left - k·d]
  //               = corr(dy, w')[s] with w'[gC+c, o, k'] = w[gO+o, c, K-1-k'] and offset d(K-1) - pad_left.
  const int64_t G = o.groups, O = w.size(0) / G, C = w.size(1), K = w.size(2);
  Tensor wt = Tensor::empty(w.ctx(), {G * C, O, K}, w.dtype());
  dispatch_dtype(w.dtype(), [&]<typename T>() {
    const T* src = w.data<T>();
    T* dst = wt.data<T>();
    for (int64_t gi = 0; gi < G; ++gi)
      for (int64_t oo = 0; oo < O; ++oo)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t k = 0; k < K; ++k)
            dst[((gi * C + c) * O + oo) * K + (K - 1 - k)] = src[((gi * O + oo) * C + c) * K + k];
  });
  CorrGeom g{dy.size(0), G, O, C, dy.size(2), dx.size(2), K, o.dilation, o.dilation * (K - 1) - o.pad_left};
  if (algo == ConvAlgo::Gather) algo = ConvAlgo::Auto;  // dy is dense: the gather has nothing to do here
  conv1d_corr(dy, wt, Tensor(), dx, g, algo);
}

void conv1d_bwd_weight_cpu(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv1dOpts& o, ConvAlgo algo) {
  CorrGeom g{x.size(0), o.groups, x.size(1) / o.groups, dy.size(1) / o.groups, x.size(2), dy.size(2), dw.size(2),
             o.dilation, o.pad_left};
  std::vector<int8_t> codes;
  // The scatter is only taken when asked for: measured slower than im2col + OpenBLAS at C·K = 84.
  if (algo == ConvAlgo::Gather && try_onehot(x, o, algo, codes)) {
    check_geom(x, dw, dy, g);
    conv1d_corr_wgrad_scatter(codes, dy, dw, g);
    return;
  }
  conv1d_corr_wgrad(x, dy, dw, g, algo);
}

}  // namespace lowpass::cpu
