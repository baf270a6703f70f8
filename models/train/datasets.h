// The train/valid/test BatchSources of a training config: npz arrays (data.train/valid/test), genome files
// (data.genome: binary bins or profile summit windows split by chromosome folds) or FASTA sequences.
// Evaluation sources are deterministic: the caller starts their epoch with a fixed-seed Rng.
// Test: build/tests/lowpass_tests -ts=genome_train
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "models/data/array_dataset.h"
#include "models/data/batch_source.h"
#include "models/data/folds.h"
#include "models/train/config.h"

namespace lowpass {

struct DataSources {
  std::unique_ptr<BatchSource> train, valid, test;  // valid/test may be null
  std::string train_name, valid_name, test_name;    // for messages (file or "genome:valid")
};

enum class DataUse { Train, Stats };  // Stats: no background threads

// Builds the sources; geometry is checked against the model section (input length, tasks, strands, output
// length), errors name the config file and field. Genome datasets read the FASTA and peaks here.
DataSources make_datasets(const TrainConfig& cfg, DataUse use = DataUse::Train);

// What each split would sample, for `lowpass data-stats`: {"train": {...}, "valid": ..., "test": ...,
// "suggested_counts_loss_weight": w (profile)}; each split holds the dataset's own stats (peaks kept/dropped
// per reason, bins or windows, negatives per epoch, batches per epoch).
nlohmann::json data_stats(const TrainConfig& cfg);

// The examples of one split ("train", "valid" or "test") as an in-memory array dataset, for `lowpass export`: for
// valid/test exactly the rows the trainer evaluates on (the same source, its epoch drawn with seed 0), without the
// reverse complements unless `revcomp`; for train, one epoch as the training sampler draws it with seed `seed`. Lets
// `predict`, `attribute` and `evaluate` run on what a genome or FASTA config trains and tests on.
ArrayDataset export_split(const TrainConfig& cfg, const std::string& split, bool revcomp, uint64_t seed = 0);

// The same split streamed to an npz (what write_array_dataset(export_split(...)) writes, byte for byte) in memory
// bounded by one batch plus 4 bytes a row; the rows wait in unlinked files beside `out` until their count is known
// (up to twice the npz's size on disk at the end). Two steps, so that a caller can make `out`'s folder only once
// the data has loaded: open_split reads the FASTA/peaks/tracks and checks that the split exists; write_split_npz
// draws its epoch (seeded as export_split) with a Progress bar on stderr when `progress`.
struct SplitSource {
  DataSources sources;
  BatchSource* source = nullptr;  // one of sources.train/valid/test
  std::string name;               // "<config> (<split>)"
  std::string model_type;
  bool revcomp = false;           // its rows come with their reverse complements (split_revcomp)
};
// Whether the trainer scores a split's rows with their reverse complements when train.revcomp is on: every split but
// a profile model's test split (the reference tests profile models without them, REFERENCE §3.2; binary models with
// them, §4.2). profile_config_for_split states the same for the genome data.
bool split_revcomp(const TrainConfig& cfg, Split split);
SplitSource open_split(const TrainConfig& cfg, const std::string& split, bool revcomp);
struct ExportSummary {
  int64_t rows = 0, length = 0, status_ones = 0;
};
ExportSummary write_split_npz(SplitSource& s, uint64_t seed, const std::string& out, bool progress);

// The geometry of a model section (what its sources must deliver).
SourceGeometry model_geometry(const TrainConfig& cfg);
void check_source_geometry(const SourceGeometry& want, const SourceGeometry& got, const std::string& what);

}  // namespace lowpass
