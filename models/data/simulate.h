// Simulated datasets with known truth (REFERENCE §5.3). Binary: GC-biased zero-order background
// with one PWM sample embedded near the centre (RC with p 0.5) in positives, uniform negatives.
// Profile: motif instances shape two-strand Poisson-total / multinomial read profiles.
// Test: build/tests/lowpass_tests -ts=simulate
#pragma once
#include <cstdint>
#include <string>

#include "engine/context.h"
#include "models/data/array_dataset.h"
#include "models/data/meme.h"

namespace lowpass {

struct BinarySimOptions {
  int64_t n = 1000;              // examples (positives + negatives)
  double positive_fraction = 0.5;
  int64_t length = 1000;         // L
  double gc = 0.5;               // positives' background: P(G)=P(C)=gc/2, P(A)=P(T)=(1-gc)/2
  int64_t motif_bound = 100;     // motif start uniform in the central (W + 2·bound) bp; 0 = exactly central
  double pseudocount = 1e-5;     // added to the PWM (REFERENCE §5.3)
  double revcomp_prob = 0.5;
};

// x (N, 4, L), y (N, 1), status (N), extra["motif_start"] (N) (-1 for negatives),
// extra["motif_strand"] (N): 1 forward, 0 reverse complement, -1 none. Positives and negatives
// are interleaved in a random order drawn from `rng`.
ArrayDataset simulate_binary(const Motif& motif, const BinarySimOptions& o, Rng& rng);

struct ProfileSimOptions {
  int64_t n = 1000;
  double positive_fraction = 0.5;
  int64_t input_length = 1346;   // I
  int64_t output_length = 1000;  // O (centred in the input)
  double gc = 0.5;               // background of all sequences
  int64_t max_instances = 3;     // positives carry 1..max_instances motif instances
  int64_t motif_bound = 100;     // instance starts within the central (W + 2·bound) bp
  double pseudocount = 1e-5;
  double background_reads = 20;  // expected reads per strand of a negative (uniform profile)
  double reads_per_site = 200;   // expected extra reads per strand per motif instance
  double peak_offset = 15;       // + strand reads pile up this far 5' of the site, − strand 3'
  double peak_width = 8;         // Gaussian σ (bp) of a site's read pile
  double control_reads = 30;     // expected control reads per strand (uniform, no motif effect)
  bool control = true;           // write a control (N, 1, 2, O)
};

// y (N, 1, 2, O) counts (strand order neg, pos), control (N, 1, 2, O), status (N),
// extra["motif_start"] / extra["motif_strand"] (N, max_instances) padded with -1 (input coordinates).
ArrayDataset simulate_profile(const Motif& motif, const ProfileSimOptions& o, Rng& rng);

// Sample one sequence from a PWM: (W) base indices 0..3.
std::vector<int> sample_pwm(const Motif& motif, Rng& rng);

}  // namespace lowpass
