// fastISM forward passes (mutant_forward.h). A substitution at p changes, in a conv layer whose output position q reads
// inputs [q − a, q + b], only the outputs q ∈ [lo − b, hi + a] when the layer's input changed over [lo, hi]; every
// mutant's window of a layer has one width, so a batch of mutants runs each layer as one conv over
// (N, C, width + taps).
// Test: build/tests/lowpass_tests -ts=attr -tc="*fastISM*"
#include "models/arch/mutant_forward.h"

#include <cstring>

#include "models/arch/binary_net.h"
#include "models/arch/profile_net.h"

namespace lowpass {

namespace {

Tensor like(const Tensor& t, const Shape& s, const std::vector<double>& v) {  // values on t's dtype and device
  Tensor r = Tensor::from_vector(t.ctx(), s, v);
  if (t.dtype() != DType::F64) r = cast(r, t.dtype());
  if (!t.is_cpu()) r = r.to(t.device());
  return r;
}

// The mutants' input columns (N, 4, 1): one-hot base[n].
Tensor mutant_columns(const Tensor& x, const std::vector<int>& base) {
  const int64_t N = static_cast<int64_t>(base.size());
  std::vector<double> v(static_cast<size_t>(N * 4), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    LP_CHECK(base[n] >= 0 && base[n] < 4, "mutant_forward: base ", base[n], " is not 0..3");
    v[n * 4 + base[n]] = 1.0;
  }
  return like(x, {N, 4, 1}, v);
}

std::vector<int64_t> shifted(const std::vector<int64_t>& v, int64_t d) {
  std::vector<int64_t> r(v);
  for (auto& e : r) e += d;
  return r;
}

}  // namespace

SpliceBase::SpliceBase(const Tensor& base, bool host_copy) {
  LP_CHECK(base.defined() && base.dim() == 3 && base.size(0) == 1, "SpliceBase: base must be (1, C, L)");
  C_ = base.size(1), L_ = base.size(2);
  if (base.is_cpu() && host_copy) {  // the host path copies runs of columns straight from base
    base_ = base;
    return;
  }
  const Tensor zero = Tensor::zeros(base.ctx(), {1, C_}, base.dtype(), base.device());
  rows_ = concat({zero, reshape(permute(base, {0, 2, 1}), {L_, C_})}, 0);  // (1 + L, C)
}

Tensor SpliceBase::gather(const Tensor& win, const std::vector<int64_t>& win_start, const std::vector<int64_t>& start,
                          int64_t len) const {
  const int64_t N = static_cast<int64_t>(start.size());
  const int64_t w = win.defined() ? win.size(2) : 0;
  LP_CHECK(!win.defined() ||
               (win.dim() == 3 && win.size(0) == N && win.size(1) == C_ && win_start.size() == start.size()),
           "SpliceBase::gather: window ", win.defined() ? shape_str(win.shape()) : std::string("-"), " for ", N,
           " rows of ", C_, " channels");
  if (base_.defined()) return gather_host(win, win_start, start, len);
  const Tensor src = w > 0 ? concat({rows_, reshape(permute(win, {0, 2, 1}), {N * w, C_})}, 0) : rows_;
  std::vector<int64_t> idx(static_cast<size_t>(N * len));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < len; ++j) {
      const int64_t q = start[n] + j;
      int64_t i = 0;  // the zero row
      if (q >= 0 && q < L_) {
        const bool in_win = w > 0 && q >= win_start[n] && q < win_start[n] + w;
        i = in_win ? 1 + L_ + n * w + (q - win_start[n]) : 1 + q;
      }
      idx[n * len + j] = i;
    }
  return permute(reshape(index_select(src, 0, idx), {N, len, C_}), {0, 2, 1});  // (N, C, len)
}

// Row (n, c) is at most five runs: zeros, base, the window, base, zeros; one fill or memcpy each.
Tensor SpliceBase::gather_host(const Tensor& win, const std::vector<int64_t>& win_start,
                               const std::vector<int64_t>& start, int64_t len) const {
  const int64_t N = static_cast<int64_t>(start.size()), w = win.defined() ? win.size(2) : 0;
  Tensor out = Tensor::empty(base_.ctx(), {N, C_, len}, base_.dtype());  // (N, C, len)
  dispatch_dtype(base_.dtype(), [&]<typename T>() {
    const T* pb = base_.data<T>();
    const T* pw = w > 0 ? win.data<T>() : nullptr;
    T* po = out.data<T>();
    // One thread: memory-bound copies, and a parallel region per call cost more than the copy on a loaded machine
    // (2 threads under another build: 1.3 s against 0.08 s for one yeast window's 2,538 mutants).
    for (int64_t nc = 0; nc < N * C_; ++nc) {
      const int64_t n = nc / C_, c = nc % C_, q0 = start[n], q1 = start[n] + len;  // positions [q0, q1)
      T* o = po + nc * len;
      // positions [from, to) from src, whose element 0 is position src0
      auto copy = [&](const T* src, int64_t src0, int64_t from, int64_t to) {
        if (to > from) std::memcpy(o + (from - q0), src + (from - src0), sizeof(T) * static_cast<size_t>(to - from));
      };
      const T* b = pb + c * L_;
      const int64_t lo = std::clamp<int64_t>(q0, 0, q1), hi = std::clamp(L_, lo, q1);  // inside the sequence
      std::fill(o, o + (lo - q0), T(0));                                               // 'same' padding
      std::fill(o + (hi - q0), o + len, T(0));
      if (w == 0) {
        copy(b, 0, lo, hi);
        continue;
      }
      const int64_t ws = std::clamp(win_start[n], lo, hi), we = std::clamp(win_start[n] + w, lo, hi);
      copy(b, 0, lo, ws);
      copy(pw + nc * w, win_start[n], ws, we);
      copy(b, 0, we, hi);
    }
  });
  return out;
}

std::unique_ptr<MutantForward> Model::mutant_forward(const Tensor&, const Tensor&) { return nullptr; }

// BPNet: 'same' dilated convs with the running sum, centre crop, profile conv (valid) and the GAP counts head.
// Layer i reaches R_i = Σ_{j ≤ i} d_j (k_j − 1)/2 either side of p; the profile conv k_p − 1 further to the left.
class ProfileNetMutants : public MutantForward {
 public:
  ProfileNetMutants(ProfileNet& m, const Tensor& x, const Tensor& control) : m_(m), x_(x) {
    NoGradGuard ng;
    ref_ = m.forward(x, control, false);  // checks shapes; f(x) exactly as the full path's forward
    const auto& c = m.cfg_;
    const int64_t T = c.num_tasks, S = c.num_strands, O = c.output_length;
    if (control.defined()) {
      ctrl_ = control.dtype() == m.dtype() ? control.detach() : control.detach().to(m.dtype());
      if (ctrl_.size(1) != T) ctrl_ = broadcast_to(ctrl_, {1, T, S, O});
    }
    in_.emplace_back(x);
    Tensor total, out;
    const size_t n = m.dil_w_.size();
    for (size_t i = 0; i < n; ++i) {  // ProfileNet::forward's trunk, every layer kept
      const int64_t k = c.dil_conv_filter_sizes[i], d = c.dil_conv_dilations[i];
      const Tensor& in = i == 0 ? x : total;
      if (i + 1 != n) {
        total = conv1d_relu(in, m.dil_w_[i], m.dil_b_[i], Conv1dOpts::same(k, d), total);
        in_.emplace_back(total);
      } else {
        out = conv1d_relu(in, m.dil_w_[i], m.dil_b_[i], Conv1dOpts::same(k, d));
      }
    }
    out_ = SpliceBase(out);
    const Tensor cut = center_crop(out, 2, c.crop_length());
    prof_ = SpliceBase(conv1d(cut, m.prof_large_w_, m.prof_large_b_, Conv1dOpts::valid()));  // (1, T·S, O)
  }

  const ModelOutput& reference() const override { return ref_; }
  int64_t rows_per_sequence() const override {
    const auto& c = m_.cfg_;
    return std::max<int64_t>(1, c.input_length / std::min(c.trunk_shrink() + 1, c.input_length));
  }

  ModelOutput run(const std::vector<int64_t>& pos, const std::vector<int>& base, bool need_profile) override {
    NoGradGuard ng;
    const auto& c = m_.cfg_;
    const int64_t N = static_cast<int64_t>(pos.size()), I = c.input_length, T = c.num_tasks, S = c.num_strands;
    const int64_t O = c.output_length, Lc = c.crop_length(), off = (I - Lc) / 2, kp = c.prof_conv_kernel_size;
    Tensor win = mutant_columns(x_, base);  // (N, C, w): layer i−1's values over [s, s + w) of mutant n
    std::vector<int64_t> s = pos, start(static_cast<size_t>(N));
    int64_t R = 0, w = 1;
    const size_t n = m_.dil_w_.size();
    for (size_t i = 0; i < n; ++i) {
      const int64_t k = c.dil_conv_filter_sizes[i], d = c.dil_conv_dilations[i], h = d * (k - 1) / 2;
      R += h;
      const int64_t wi = std::min(2 * R + 1, I);
      for (int64_t r = 0; r < N; ++r) start[r] = window_start(pos[r] - R, wi, I);
      const Tensor in = in_[i].gather(win, s, shifted(start, -h), wi + 2 * h);  // (N, C, wi + 2h), zero-padded
      const Tensor res = i >= 1 && i + 1 != n ? in_[i].gather(win, s, start, wi) : Tensor();  // the running sum
      win = conv1d_relu(in, m_.dil_w_[i], m_.dil_b_[i], Conv1dOpts::valid(d), res);  // (N, C, wi)
      s = start, w = wi;
    }
    ModelOutput r;
    // Profile head: outputs o read cut positions [o, o + kp); the trunk changed over cut [s − off, s − off + w).
    if (need_profile) {
      const int64_t wp = std::min(w + kp - 1, O);
      std::vector<int64_t> sp(static_cast<size_t>(N));
      for (int64_t q = 0; q < N; ++q) sp[q] = window_start(s[q] - off - (kp - 1), wp, O);
      const Tensor cut = out_.gather(win, s, shifted(sp, off), wp + kp - 1);  // (N, C, wp + kp − 1)
      const Tensor pw = conv1d(cut, m_.prof_large_w_, m_.prof_large_b_, Conv1dOpts::valid());  // (N, T·S, wp)
      Tensor prof = reshape(prof_.gather(pw, sp, std::vector<int64_t>(static_cast<size_t>(N), 0), O), {N, T, S, O});
      if (ctrl_.defined()) prof = concat({prof, rows(ctrl_, N)}, 2);
      prof = conv1d(reshape(prof, {N, -1, O}), m_.prof_one_w_, m_.prof_one_b_, Conv1dOpts{1, 0, 0, T});
      r.profile_logits = reshape(prof, {N, T, S, O});
    }
    // Counts head: the global average pool of the spliced crop, as forward computes it.
    const Tensor cut = out_.gather(win, s, std::vector<int64_t>(static_cast<size_t>(N), off), Lc);  // (N, C, Lc)
    Tensor counts = reshape(linear(global_avg_pool1d(cut), m_.count_dense_w_, m_.count_dense_b_), {N, T, S});
    if (ctrl_.defined()) counts = concat({counts, sum(rows(ctrl_, N), {3})}, 2);
    counts = conv1d(reshape(counts, {N, -1, 1}), m_.count_one_w_, m_.count_one_b_, Conv1dOpts{1, 0, 0, T});
    r.log_counts = reshape(counts, {N, T, S});
    return r;
  }

 private:
  static Tensor rows(const Tensor& t, int64_t N) {
    return index_select(t, 0, std::vector<int64_t>(static_cast<size_t>(N), 0));
  }
  ProfileNet& m_;
  Tensor x_, ctrl_;          // (1, 4, I), (1, T, S, O) or undefined
  ModelOutput ref_;
  std::vector<SpliceBase> in_;  // layer i's input: x, then the running sums (1, C, I)
  SpliceBase out_, prof_;       // trunk output (1, C, I); profile conv output (1, T·S, O)
};

std::unique_ptr<MutantForward> ProfileNet::mutant_forward(const Tensor& x, const Tensor& control) {
  return std::make_unique<ProfileNetMutants>(*this, x, control);
}

// Binary model: valid convs (output q reads [q, q + k − 1]) → ReLU → BN → then max-pool and dense layers over the
// spliced last conv output. Layer i reaches [p − Σ_{j ≤ i}(k_j − 1), p].
class BinaryNetMutants : public MutantForward {
 public:
  BinaryNetMutants(BinaryNet& m, const Tensor& x, const Tensor& control) : m_(m), x_(x) {
    NoGradGuard ng;
    ref_ = m.forward(x, control, false);
    Tensor h = x;
    in_.emplace_back(x);
    for (const auto& l : m.conv_) {
      h = m.block_tail(l, conv1d(h, l.w, l.b, Conv1dOpts::valid()), false, 0.0);
      in_.emplace_back(h);
    }
  }

  const ModelOutput& reference() const override { return ref_; }
  int64_t rows_per_sequence() const override {
    int64_t widest = 1, R = 0;
    for (size_t i = 0; i < m_.conv_.size(); ++i)
      widest = std::max(widest, std::min(R += m_.cfg_.conv_filter_sizes[i] - 1, in_[i + 1].length()) + 1);
    return std::max<int64_t>(1, in_.front().length() / widest);
  }

  ModelOutput run(const std::vector<int64_t>& pos, const std::vector<int>& base, bool) override {
    NoGradGuard ng;
    const auto& c = m_.cfg_;
    const int64_t N = static_cast<int64_t>(pos.size());
    Tensor win = mutant_columns(x_, base);
    std::vector<int64_t> s = pos, start(static_cast<size_t>(N));
    int64_t R = 0;
    for (size_t i = 0; i < m_.conv_.size(); ++i) {
      const auto& l = m_.conv_[i];
      const int64_t k = c.conv_filter_sizes[i], Li = in_[i + 1].length();
      R += k - 1;
      const int64_t wi = std::min(R + 1, Li);
      for (int64_t r = 0; r < N; ++r) start[r] = window_start(pos[r] - R, wi, Li);
      const Tensor in = in_[i].gather(win, s, start, wi + k - 1);  // (N, C, wi + k − 1)
      win = m_.block_tail(l, conv1d(in, l.w, l.b, Conv1dOpts::valid()), false, 0.0);
      s = start;
    }
    const SpliceBase& last = in_.back();
    Tensor h = last.gather(win, s, std::vector<int64_t>(static_cast<size_t>(N), 0), last.length());
    h = reshape(max_pool1d(h, c.max_pool_size, c.max_pool_stride), {N, -1});
    for (const auto& l : m_.fc_) h = m_.block_tail(l, linear(h, l.w, l.b), false, 0.0);
    ModelOutput r;
    r.logits = linear(h, m_.out_w_, m_.out_b_);
    return r;
  }

 private:
  BinaryNet& m_;
  Tensor x_;
  ModelOutput ref_;
  std::vector<SpliceBase> in_;  // x, then each conv block's output (1, C, L_i)
};

std::unique_ptr<MutantForward> BinaryNet::mutant_forward(const Tensor& x, const Tensor& control) {
  return std::make_unique<BinaryNetMutants>(*this, x, control);
}

}  // namespace lowpass
