// Motif marginalisation (`lowpass marginalize`), the in-silico footprint of ChromBPNet and BPNet users: a motif's
// sequence written into many background sequences, the model's predictions with it against those without.
// Test: build/tests/lowpass_tests -ts=attr -tc='marginalize*'; python/tests/test_cli_marginalize.py (command).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "models/data/meme.h"

namespace lowpass::attr {

// The consensus of a motif: its most probable base per position (the first of equals, in A C G T order).
std::string consensus(const Motif& m);

// The codes of a sequence to insert: 0..3 for A, C, G, T and 4 for N (either case). Errors name `what` for an empty
// sequence or another letter (and its 1-based position).
std::vector<int> sequence_codes(const std::string& seq, const std::string& what);

// A copy of the one-hot rows x (n, 4, L) with `seq` (A, C, G, T, or N for an all-zero column; either case) written
// at positions [pos, pos + |seq|) of every row. Errors name `what` for another letter or a sequence that does not
// fit the rows.
Tensor insert_sequence(const Tensor& x, const std::string& seq, int64_t pos, const std::string& what);

// Backgrounds: rows x (n, 4, L), each dinucleotide-shuffled with Rng(seed + first_index + i) when `shuffle` (a
// sequence with the same composition and dinucleotides, its motifs destroyed), else as they are. N columns (all
// zero) stay in place and each run of A/C/G/T between them is shuffled on its own, so N-padding of a short record
// keeps the sequence where it was.
Tensor background_rows(const Tensor& x, bool shuffle, uint64_t seed, int64_t first_index);

}  // namespace lowpass::attr
