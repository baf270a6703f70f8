// PWM scan of one-hot sequences (motif-instance masks, REFERENCE §4.5): log-odds against a uniform
// background, s(x, j) = Σ_w log2(((p_w,x[j+w] + pc)/(1 + 4pc)) / 0.25), both strands; a hit where s ≥ f·max_s.
// Test: build/tests/lowpass_tests -ts=motif_scan
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "models/data/meme.h"

namespace lowpass::eval {

struct ScanOptions {
  double threshold = 0.8;     // hit: score ≥ threshold · (max possible score of the motif) − 1e-9
  double pseudocount = 0.01;  // added to each probability before the log-odds: (p + pc) / (1 + 4 pc)
};

struct MotifHit {
  int64_t start = 0, end = 0;  // [start, end) in the sequence, end − start = motif width
  char strand = '+';           // '+' PWM as written, '-' its reverse complement
  double score = 0;            // log2 odds
  int64_t motif = 0;           // index into the scanned motif list
};

// (W, 4) log2-odds matrix of a motif (order A C G T) and its maximum possible score Σ_w max_b.
std::vector<std::array<double, 4>> log_odds(const Motif& m, double pseudocount);
double max_log_odds(const std::vector<std::array<double, 4>>& lo);

// Base index per position of a (4, L) row-major one-hot track: 0..3, or −1 where no channel is > 0.5
// (N); more than one hot channel is an error naming `what`.
std::vector<int> decode_one_hot(const std::vector<double>& ohe, int64_t L, const std::string& what);

// All hits of all motifs in one sequence (windows containing an N are skipped), sorted by
// (start, strand, motif). A palindromic site can hit on both strands.
std::vector<MotifHit> scan_sequence(const std::vector<int>& bases, const std::vector<Motif>& motifs,
                                    const ScanOptions& o);
// Mask (L): 1 where any hit covers the position.
std::vector<uint8_t> hit_mask(const std::vector<MotifHit>& hits, int64_t L);

// The simulator's motif_positions.tsv (header: split index start end strand): masks for the rows of
// `split` (n_rows of them, positions [0, L)); a row index ≥ n_rows or an interval outside [0, L) is an
// error naming the file and line.
std::vector<std::vector<uint8_t>> read_position_masks(const std::string& path, const std::string& split,
                                                      int64_t n_rows, int64_t L);

}  // namespace lowpass::eval
