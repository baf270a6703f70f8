// Training configuration: JSON with sections model / data / train / prior, defaults per model type
// (REFERENCE §1.3, §2.3, §3.4), unknown keys rejected by their key path, resolved form written out.
// Test: build/tests/lowpass_tests -ts=config
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/loss/objective.h"

namespace lowpass {

struct TrainSettings {
  std::string optimizer = "adam";  // adam | sgd
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // Adam (PyTorch defaults)
  double momentum = 0.0;                          // SGD
  int64_t batch_size = 128;       // examples per step before reverse-complement doubling
  double negative_ratio = 1.0;    // negatives per positive in a batch (0 = positives only)
  int64_t epochs = 20;
  int64_t max_steps = 0;          // 0 = no limit; else stop after this many optimiser steps
  bool shuffle = true;
  uint64_t seed = 0;              // init + shuffling; drawn at resolve time when null
  bool revcomp = true;            // append reverse complements to every batch
  bool early_stopping = true;
  int64_t patience = 3;           // history length (REFERENCE §2.3)
  double min_delta = 0.001;
  int64_t min_epochs = 5;         // never stop before this many epochs
  std::string early_stopping_on = "total";  // total (prior included, as the reference) | task
  int64_t threads = 0;            // 0 = all usable cores
  double counts_loss_weight = 20; // profile only
  bool counts_loss_weight_auto = false;  // "auto": the training data's suggestion, set by train_model
  int64_t eval_batch_size = 256;  // validation/test batch size (before RC doubling)
  bool progress = true;           // progress bar / periodic lines on stderr
  std::string device = "cpu";     // cpu | cuda | cuda:N (checkpoints are device-independent)
  bool tf32 = false;              // CUDA: float32 GEMMs on TF32 tensor cores (float32 is the reference)
  bool bf16 = false;              // CUDA: float32 GEMMs on bfloat16 tensor cores (exclusive with tf32)
  // The fixed-form step (models/train/graph_step.h): on a GPU captured once as a CUDA graph and replayed; on the CPU
  // the same fixed form, eagerly. Same losses as the ordinary step up to the order of sums.
  bool cuda_graph = false;
  // CUDA conv backend (kernels/cuda/conv_backend.h): "default" = LOWPASS_CUDA_CONV, `auto` when unset; or auto,
  // direct, tiled, im2col, cudnn, tune. Under tune the choices are written to DIR/conv_tune.txt at the end.
  std::string cuda_conv = "default";
};

// ---- genome-file and FASTA-sequence data (data.genome / data.sequences; docs/config.md) ----
// data.genome: a reference FASTA with peaks (+ bigWig signals for profile models) split by chromosome
// folds; binary models label 200-bp bins from one peak file per task, profile models centre windows
// on the pooled peaks' summits and read one list of bigWigs (strands) per task.
struct GenomeDataSettings {
  bool enabled = false;
  std::string fasta;
  std::vector<std::string> peaks, ambiguous;                  // ambiguous: "" or one per task (binary)
  std::vector<std::vector<std::string>> bigwigs, controls;    // profile: per task, S files each
  std::string folds_file;                                     // folds JSON path ("" when given inline)
  std::vector<std::string> train_chroms, valid_chroms, test_chroms;  // resolved folds
  std::string chrom_sizes, blacklist, cache_dir;              // optional
  std::string negatives = "uniform";                          // profile: uniform (reference) | gc_matched
  bool exclude_peaks = false;
  int64_t jitter = 128;
  double max_n_fraction = 0.1, peak_retention = 0;
  int64_t bin = 200, stride = 50, flank = 400;                // binary geometry (input = bin + 2 flank)
  double min_overlap = 0.5;
  bool partial_ambiguous = false;
  int64_t gc_pool_factor = 10, gc_bins = 50;
  int64_t memory_budget_mb = 1024, workers = 1, prefetch = 4;
};
// data.sequences: binary examples from FASTA files of positive and negative sequences per split.
struct SequenceDataSettings {
  bool enabled = false;
  std::string train_positives, train_negatives, valid_positives, valid_negatives, test_positives, test_negatives;
};

struct DataSettings {
  std::string train, valid, test;  // .npz paths (absolute once resolved); valid/test may be empty
  GenomeDataSettings genome;       // used when genome.enabled (then train/valid/test are empty)
  SequenceDataSettings sequences;  // used when sequences.enabled
};

struct TrainConfig {
  nlohmann::json resolved;   // the whole resolved config (what DIR/config.json holds)
  std::string source;        // file it came from, for messages
  std::string model_type;    // binary | profile
  nlohmann::json model;      // the model section, passed to make_model
  DataSettings data;
  TrainSettings train;
  PriorConfig prior;
};

// Default config for a model type (every key the config accepts, with its default).
nlohmann::json default_config(const std::string& model_type);
// Merge user JSON over the defaults of its model type; unknown keys and wrong types throw Error
// naming "<source>: <key.path>". Relative data paths are resolved against base_dir.
TrainConfig resolve_config(const nlohmann::json& user, const std::string& source,
                           const std::string& base_dir);
// Read and resolve a config file (base_dir = the file's folder).
TrainConfig load_config(const std::string& path);
// Write cfg.resolved to path (pretty JSON, atomically via a temporary file).
void write_config(const TrainConfig& cfg, const std::string& path);

}  // namespace lowpass
