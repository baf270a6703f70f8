// Motif marginalisation pieces: consensus, insertion into one-hot rows, shuffled backgrounds.
// Test: build/tests/lowpass_tests -ts=attr -tc='marginalize*'
#include "models/attr/marginalize.h"

#include <algorithm>
#include <cctype>

#include "engine/ops.h"
#include "models/attr/attribute.h"
#include "models/attr/dinuc_shuffle.h"

namespace lowpass::attr {

std::string consensus(const Motif& m) {
  std::string s;
  for (const auto& row : m.pwm) {
    int best = 0;
    for (int b = 1; b < 4; ++b)
      if (row[static_cast<size_t>(b)] > row[static_cast<size_t>(best)]) best = b;
    s.push_back("ACGT"[best]);
  }
  return s;
}

std::vector<int> sequence_codes(const std::string& seq, const std::string& what) {
  LP_CHECK(!seq.empty(), what, ": empty");
  std::vector<int> code(seq.size());
  for (size_t j = 0; j < seq.size(); ++j) {
    const size_t k = std::string("ACGTN").find(static_cast<char>(std::toupper(static_cast<unsigned char>(seq[j]))));
    LP_CHECK(k != std::string::npos, what, ": '", seq[j], "' at position ", j + 1,
             " of the sequence is not A, C, G, T or N");
    code[j] = static_cast<int>(k);
  }
  return code;
}

Tensor insert_sequence(const Tensor& x, const std::string& seq, int64_t pos, const std::string& what) {
  LP_CHECK(x.defined() && x.dim() == 3 && x.size(1) == 4, what, ": rows must be (n, 4, L), got ",
           x.defined() ? shape_str(x.shape()) : std::string("nothing"));
  const int64_t n = x.size(0), L = x.size(2), w = static_cast<int64_t>(seq.size());
  LP_CHECK(w >= 1 && pos >= 0 && pos + w <= L, what, ": a sequence of ", w, " bases at position ", pos,
           " does not fit windows of ", L, " bases");
  const std::vector<int> code = sequence_codes(seq, what);
  std::vector<double> v = x.to_vector<double>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < w; ++j)
      for (int64_t b = 0; b < 4; ++b) v[(i * 4 + b) * L + pos + j] = code[static_cast<size_t>(j)] == b ? 1.0 : 0.0;
  return make_like(x, x.shape(), v);
}

Tensor background_rows(const Tensor& x, bool shuffle, uint64_t seed, int64_t first_index) {
  if (!shuffle) return x;
  const int64_t n = x.size(0), L = x.size(2);
  std::vector<double> v(static_cast<size_t>(n * 4 * L), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    Rng rng(seed + static_cast<uint64_t>(first_index + i));
    std::vector<uint8_t> tok = onehot_to_tokens(x, i);  // 4 = N (an all-zero column)
    // N stays where it is (padding of a short FASTA record must not move the sequence off the insertion point):
    // each run of A/C/G/T is shuffled on its own.
    for (int64_t a = 0; a < L;) {
      if (tok[static_cast<size_t>(a)] == 4) {
        ++a;
        continue;
      }
      int64_t b = a;
      while (b < L && tok[static_cast<size_t>(b)] != 4) ++b;
      const std::vector<uint8_t> run(tok.begin() + a, tok.begin() + b);
      const std::vector<uint8_t> sh = dinuc_shuffle_tokens(run, 4, rng);
      std::copy(sh.begin(), sh.end(), tok.begin() + a);
      a = b;
    }
    for (int64_t l = 0; l < L; ++l)
      if (tok[static_cast<size_t>(l)] < 4) v[static_cast<size_t>((i * 4 + tok[static_cast<size_t>(l)]) * L + l)] = 1.0;
  }
  return make_like(x, x.shape(), v);
}

}  // namespace lowpass::attr
