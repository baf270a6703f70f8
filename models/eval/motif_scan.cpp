// PWM log-odds scan on both strands and the simulator's true-position masks (formulas in motif_scan.h).
// Test: build/tests/lowpass_tests -ts=motif_scan
#include "models/eval/motif_scan.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/error.h"

namespace lowpass::eval {

std::vector<std::array<double, 4>> log_odds(const Motif& m, double pc) {
  LP_CHECK(pc >= 0, "motif scan: pseudocount must be >= 0, got ", pc);
  LP_CHECK(m.width() >= 1, "motif scan: motif '", m.id, "' has no positions");
  std::vector<std::array<double, 4>> lo(m.pwm.size());
  for (size_t w = 0; w < m.pwm.size(); ++w)
    for (int b = 0; b < 4; ++b) {
      double p = (m.pwm[w][b] + pc) / (1.0 + 4.0 * pc);
      LP_CHECK(p > 0, "motif scan: motif '", m.id, "' position ", w + 1,
               " has a zero probability; use a pseudocount > 0");
      lo[w][b] = std::log2(p / 0.25);
    }
  return lo;
}

double max_log_odds(const std::vector<std::array<double, 4>>& lo) {
  double s = 0;
  for (const auto& r : lo) s += *std::max_element(r.begin(), r.end());
  return s;
}

std::vector<int> decode_one_hot(const std::vector<double>& ohe, int64_t L, const std::string& what) {
  LP_CHECK(L >= 0 && static_cast<int64_t>(ohe.size()) == 4 * L, what, ": expected 4*L = ", 4 * L, " values, got ",
           ohe.size());
  std::vector<int> b(static_cast<size_t>(L), -1);
  for (int64_t l = 0; l < L; ++l)
    for (int c = 0; c < 4; ++c)
      if (ohe[static_cast<size_t>(c * L + l)] > 0.5) {
        LP_CHECK(b[static_cast<size_t>(l)] < 0, what, ": position ", l, " has more than one base set");
        b[static_cast<size_t>(l)] = c;
      }
  return b;
}

std::vector<MotifHit> scan_sequence(const std::vector<int>& bases, const std::vector<Motif>& motifs,
                                    const ScanOptions& o) {
  LP_CHECK(o.threshold <= 1, "--motif-threshold must be <= 1 (a fraction of the maximum score), got ", o.threshold);
  const int64_t L = static_cast<int64_t>(bases.size());
  std::vector<MotifHit> hits;
  for (size_t k = 0; k < motifs.size(); ++k) {
    const auto lo = log_odds(motifs[k], o.pseudocount);
    const int64_t W = static_cast<int64_t>(lo.size());
    // 1e-9 bits of slack: the two strands sum the same terms in different orders (threshold 1 = consensus)
    const double cut = o.threshold * max_log_odds(lo) - 1e-9;
    for (int64_t s = 0; s + W <= L; ++s) {
      double fwd = 0, rev = 0;
      bool has_n = false;
      for (int64_t w = 0; w < W && !has_n; ++w) {
        int b = bases[static_cast<size_t>(s + w)];
        if (b < 0) { has_n = true; break; }
        fwd += lo[static_cast<size_t>(w)][b];
        rev += lo[static_cast<size_t>(W - 1 - w)][3 - b];  // reverse complement: A<->T, C<->G
      }
      if (has_n) continue;
      if (fwd >= cut) hits.push_back({s, s + W, '+', fwd, static_cast<int64_t>(k)});
      if (rev >= cut) hits.push_back({s, s + W, '-', rev, static_cast<int64_t>(k)});
    }
  }
  std::sort(hits.begin(), hits.end(), [](const MotifHit& a, const MotifHit& b) {
    if (a.start != b.start) return a.start < b.start;
    if (a.strand != b.strand) return a.strand < b.strand;
    return a.motif < b.motif;
  });
  return hits;
}

std::vector<uint8_t> hit_mask(const std::vector<MotifHit>& hits, int64_t L) {
  std::vector<uint8_t> m(static_cast<size_t>(L), 0);
  for (const auto& h : hits)
    for (int64_t l = std::max<int64_t>(0, h.start); l < std::min(L, h.end); ++l) m[static_cast<size_t>(l)] = 1;
  return m;
}

std::vector<std::vector<uint8_t>> read_position_masks(const std::string& path, const std::string& split,
                                                      int64_t n_rows, int64_t L) {
  std::ifstream f(path);
  LP_CHECK(f.good(), "--motif-positions: cannot read ", path);
  std::vector<std::vector<uint8_t>> masks(static_cast<size_t>(n_rows), std::vector<uint8_t>(static_cast<size_t>(L), 0));
  std::string line;
  int64_t lineno = 0, used = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.empty() || line.rfind("split\t", 0) == 0 || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string sp, strand;
    int64_t idx = -1, start = -1, end = -1;
    LP_CHECK(static_cast<bool>(ss >> sp >> idx >> start >> end >> strand), path, ":", lineno,
             ": expected 'split index start end strand'");
    if (sp != split) continue;
    LP_CHECK(idx >= 0 && idx < n_rows, path, ":", lineno, ": index ", idx, " outside the ", n_rows,
             " attributed sequences");
    LP_CHECK(start >= 0 && end <= L && start < end, path, ":", lineno, ": interval [", start, ", ", end,
             ") outside the sequence length ", L);
    for (int64_t l = start; l < end; ++l) masks[static_cast<size_t>(idx)][static_cast<size_t>(l)] = 1;
    ++used;
  }
  LP_CHECK(used > 0, path, ": no motif position of split '", split, "'");
  return masks;
}

}  // namespace lowpass::eval
