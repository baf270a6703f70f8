// Config sections data.genome (FASTA + peaks + bigWigs + folds) and data.sequences (FASTA files of
// positives/negatives): defaults, strict keys ("<source>: unknown key 'data.genome.x'"), paths resolved.
// Test: build/tests/lowpass_tests -ts=genome_train
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "models/train/config.h"

namespace lowpass {

// Every key data.genome accepts, with its default (null = required or unset).
nlohmann::json default_genome_data();
// Overlay `sec` (the user's data.genome) on the defaults, validate, resolve paths (relative to base_dir;
// a leading $LOWPASS_DATA is replaced by that environment variable) and fill cfg.data.genome.
// `sec` is rewritten to its resolved form (what config.json records).
void resolve_genome_data(nlohmann::json& sec, TrainConfig& cfg, const std::string& src, const std::string& base_dir);
// The same for data.sequences: {"train": {"positives", "negatives"}, "valid": {...}|null, "test": {...}|null}.
void resolve_sequence_data(nlohmann::json& sec, TrainConfig& cfg, const std::string& src, const std::string& base_dir);
// A data path: "$LOWPASS_DATA/..." expanded, relative paths joined to base_dir, made absolute.
std::string resolve_data_path(const std::string& p, const std::string& base_dir, const std::string& what);

}  // namespace lowpass
