// Dinucleotide shuffle: a uniformly random sequence with exactly the same dinucleotide counts (and
// the same first and last base), by the Altschul–Erickson Eulerian-path algorithm, seeded.
// Test: build/tests/lowpass_tests -ts=attr
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/ops.h"

namespace lowpass {

// Tokens in [0, alphabet); returns a shuffle of `seq` preserving every (a, b) pair count.
std::vector<uint8_t> dinuc_shuffle_tokens(const std::vector<uint8_t>& seq, int alphabet, Rng& rng);

// A DNA string (ACGT, anything else is kept as its own letter, e.g. N) shuffled the same way.
std::string dinuc_shuffle(const std::string& seq, Rng& rng);

// One-hot (B, 4, L) (all-zero columns are N and are shuffled as a fifth letter) -> (B*k, 4, L):
// rows b*k .. b*k+k-1 are k independent shuffles of example b. Throws Error on non-one-hot input.
Tensor dinuc_shuffle_onehot(const Tensor& x, int64_t k, Rng& rng);

// One-hot (B, 4, L) -> tokens (B, L) with 0..3 = A,C,G,T and 4 = N (all-zero column).
std::vector<uint8_t> onehot_to_tokens(const Tensor& x, int64_t b);

}  // namespace lowpass
