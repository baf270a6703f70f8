// Altschul & Erickson (1985) dinucleotide shuffle: pick a random spanning arborescence of "last
// exit edges" into the final letter, shuffle every other out-edge list, walk the Eulerian path.
// Test: build/tests/lowpass_tests -ts=attr
#include "models/attr/dinuc_shuffle.h"

#include <algorithm>
#include <cmath>

namespace lowpass {

std::vector<uint8_t> dinuc_shuffle_tokens(const std::vector<uint8_t>& seq, int alphabet, Rng& rng) {
  const int64_t n = static_cast<int64_t>(seq.size());
  if (n <= 2) return seq;  // nothing to permute: a path of <= 1 edge is unique
  const int A = alphabet;
  for (uint8_t c : seq) LP_CHECK(c < A, "dinuc_shuffle: token ", int(c), " outside alphabet of ", A);
  // Out-edge lists: successors of each letter in the order they occur.
  std::vector<std::vector<uint8_t>> out(A);
  for (int64_t i = 0; i + 1 < n; ++i) out[seq[i]].push_back(seq[i + 1]);
  const uint8_t last = seq[n - 1];
  // Random arborescence rooted at `last`: every other letter with out-edges picks its last exit
  // edge uniformly from its multiset of out-edges; accept when all of them reach `last`.
  std::vector<int> exit_idx(A, -1);
  for (;;) {
    for (int v = 0; v < A; ++v)
      exit_idx[v] = (v != last && !out[v].empty()) ? static_cast<int>(rng.randint(0, out[v].size())) : -1;
    bool ok = true;
    for (int v = 0; v < A && ok; ++v) {
      if (exit_idx[v] < 0) continue;
      int u = v, steps = 0;
      while (u != last && steps <= A) {
        u = out[u][exit_idx[u]];
        ++steps;
        if (u != last && exit_idx[u] < 0) { steps = A + 1; break; }  // dead end
      }
      ok = (u == last);
    }
    if (ok) break;
  }
  // Shuffle the other edges of each letter (Fisher–Yates) and put the exit edge last.
  for (int v = 0; v < A; ++v) {
    auto& e = out[v];
    if (e.empty()) continue;
    if (exit_idx[v] >= 0) std::swap(e[exit_idx[v]], e.back());
    int64_t m = static_cast<int64_t>(e.size()) - (exit_idx[v] >= 0 ? 1 : 0);
    for (int64_t i = m - 1; i > 0; --i) std::swap(e[i], e[rng.randint(0, i + 1)]);
  }
  std::vector<size_t> used(A, 0);
  std::vector<uint8_t> r(n);
  r[0] = seq[0];
  for (int64_t i = 1; i < n; ++i) {
    uint8_t v = r[i - 1];
    LP_ASSERT(used[v] < out[v].size(), "dinuc_shuffle: Eulerian walk ran out of edges");
    r[i] = out[v][used[v]++];
  }
  return r;
}

std::string dinuc_shuffle(const std::string& seq, Rng& rng) {
  // Map letters to dense tokens (case-sensitive: letters are kept exactly).
  std::vector<char> letters;
  std::vector<uint8_t> tok(seq.size());
  for (size_t i = 0; i < seq.size(); ++i) {
    auto it = std::find(letters.begin(), letters.end(), seq[i]);
    if (it == letters.end()) {
      LP_CHECK(letters.size() < 255, "dinuc_shuffle: more than 255 distinct letters");
      letters.push_back(seq[i]);
      it = letters.end() - 1;
    }
    tok[i] = static_cast<uint8_t>(it - letters.begin());
  }
  auto sh = dinuc_shuffle_tokens(tok, static_cast<int>(letters.size()), rng);
  std::string r(seq.size(), ' ');
  for (size_t i = 0; i < sh.size(); ++i) r[i] = letters[sh[i]];
  return r;
}

namespace {
std::vector<uint8_t> tokens_of(const double* p, int64_t b, int64_t L) {  // p: (4, L) of example b
  std::vector<uint8_t> t(L);
  for (int64_t l = 0; l < L; ++l) {
    int hot = 4;
    double s = 0;
    for (int c = 0; c < 4; ++c) {
      double a = p[c * L + l];
      LP_CHECK(a == 0.0 || a == 1.0, "one-hot input: value ", a, " at example ", b, " base ", c, " position ", l,
               " is not 0 or 1");
      if (a == 1.0) hot = c;
      s += a;
    }
    LP_CHECK(s <= 1.0, "one-hot input: example ", b, " position ", l, " has ", s, " hot bases");
    t[l] = static_cast<uint8_t>(hot);
  }
  return t;
}
}  // namespace

std::vector<uint8_t> onehot_to_tokens(const Tensor& x, int64_t b) {
  LP_CHECK(x.dim() == 3 && x.size(1) == 4, "one-hot input must be (B, 4, L), got ", shape_str(x.shape()));
  LP_CHECK(b >= 0 && b < x.size(0), "onehot_to_tokens: example ", b, " out of ", x.size(0));
  const int64_t L = x.size(2);
  Tensor xb = slice(x.detach(), 0, b, 1);
  auto v = xb.to_vector<double>();
  return tokens_of(v.data(), b, L);
}

Tensor dinuc_shuffle_onehot(const Tensor& x, int64_t k, Rng& rng) {
  LP_CHECK(x.dim() == 3 && x.size(1) == 4, "dinuc_shuffle_onehot: input must be (B, 4, L), got ",
           shape_str(x.shape()));
  LP_CHECK(k >= 1, "dinuc_shuffle_onehot: number of shuffles must be >= 1, got ", k);
  const int64_t B = x.size(0), L = x.size(2);
  auto xv = x.detach().to_vector<double>();
  std::vector<double> r(static_cast<size_t>(B * k * 4 * L), 0.0);  // (B*k, 4, L)
  for (int64_t b = 0; b < B; ++b) {
    auto tok = tokens_of(xv.data() + b * 4 * L, b, L);
    for (int64_t j = 0; j < k; ++j) {
      auto sh = dinuc_shuffle_tokens(tok, 5, rng);
      double* p = r.data() + (b * k + j) * 4 * L;
      for (int64_t l = 0; l < L; ++l)
        if (sh[l] < 4) p[sh[l] * L + l] = 1.0;
    }
  }
  Tensor out = Tensor::from_vector(x.ctx(), {B * k, 4, L}, r);
  if (x.dtype() != DType::F64) out = cast(out, x.dtype());
  if (!x.is_cpu()) out = out.to(x.device());
  return out;
}

}  // namespace lowpass
