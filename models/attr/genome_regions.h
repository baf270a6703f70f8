// Genome regions as model inputs and per-base outputs as bigWig tracks, for `lowpass attribute/predict --regions`.
// window_i = [c_i - L/2, c_i - L/2 + L), c_i = summit (narrowPeak) or region centre; per-base track value =
// mean over the windows covering the base (attribution: Σ_b hyp·onehot; prediction: softmax(profile)·(exp(log counts)
// − 1), the expected counts).
// Control tracks (profile models with controls) over [c_i - O/2, c_i - O/2 + O), the output window.
// Test: build/tests/lowpass_tests -ts=attr_genome
#pragma once
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <map>

#include "engine/npz.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"
#include "models/arch/model.h"
#include "models/data/bigwig.h"
#include "models/data/fasta.h"

namespace lowpass::attr {

struct RegionWindows {
  std::shared_ptr<Fasta> fasta;
  int64_t length = 0;                   // L, the model's input length
  std::vector<Track> controls;          // profile models with controls: Tc tracks of S bigWigs (attach_controls)
  int64_t output_length = 0;            // O, the control windows' length (centred in the input window)
  std::vector<int64_t> chrom, start;    // per kept region: chromosome index (in the FASTA) and window start
  std::vector<int64_t> line;            // BED line of each kept region
  int64_t dropped_edge = 0;             // regions whose window runs off the chromosome (counted, not fatal)
  std::vector<int64_t> dropped_lines;   // BED lines of the first of them (at most 10), for the message
  int64_t size() const { return static_cast<int64_t>(start.size()); }
};

// Reads a BED/narrowPeak of regions against the FASTA (index in cache_dir when its folder is read-only).
// Errors name the file and line (read_bed); an empty result after dropping is an Error saying why.
RegionWindows read_region_windows(const std::string& bed, const std::string& fasta, int64_t length,
                                  const std::string& cache_dir = "");
// Rows [s, s + n) as one-hot (n, 4, L) of `dtype` (N = zero column).
Tensor region_rows(Context& ctx, const RegionWindows& r, int64_t s, int64_t n, DType dtype);
// Control rows [s, s + n) as (n, Tc, S, O) of `dtype`: each control track over the O bases centred in the input
// window (what a profile model with controls takes); an undefined Tensor when r has no control tracks.
Tensor region_control_rows(Context& ctx, const RegionWindows& r, int64_t s, int64_t n, DType dtype);
// Writes the kept windows as BED (chrom, start, end, BED line) in row order: which npz row is where. Atomic
// (temporary + rename); the second form leaves the commit (the rename) to the caller.
void write_region_bed(const RegionWindows& r, const std::string& path);
void write_region_bed(const RegionWindows& r, safetensors::AtomicFile& f);

// Expected counts per base of one output window: softmax(profile)[q] · max(0, exp(log_counts) − 1) for q < O (the
// counts head predicts log(1 + n)); what `predict --regions` writes as pred_t<t>_s<s>.bw and `report` plots.
void expected_counts(const double* profile_logits, double log_counts, int64_t O, float* out);
// acc[q] += softmax(profile)[q] for q < O: the predicted shape alone (marginalize's jsd when no read is predicted).
void add_profile_probabilities(const double* profile_logits, int64_t O, double* acc);

// Per-base accumulator of values from overlapping windows; writes mean values as a bigWig holding the
// chromosomes touched. Memory follows the covered bases, not the chromosomes: sum (float) and count (uint32) in
// blocks of kBlock bases allocated when a window first touches them (8 bytes per base of each touched block;
// 32 KiB per block). write() streams the blocks in genome order into the file, freeing each as it goes.
// Windows that come in genome order (windows_in_order) can be written as they are finished: stream() opens the
// file at once and release() writes and frees every block no later window can touch, so that memory follows the
// windows in flight (a whole-genome tiling holds a few blocks, not 8 bytes per base of the genome).
class TrackAccumulator {
 public:
  static constexpr int64_t kBlock = 4096;
  explicit TrackAccumulator(const ChromSizes& sizes);
  // Adds v[0..n) at [start, start + n) of chromosome index c (positions outside the chromosome are ignored).
  // A base's count stops at UINT32_MAX windows; later windows then leave both its sum and count alone.
  void add(int64_t c, int64_t start, const float* v, int64_t n);
  int64_t blocks() const { return static_cast<int64_t>(blocks_.size()); }
  // Opens the bigWig at `path` (a BigWigWriter temporary) holding the chromosomes `order` (indices into the sizes,
  // each once, in the order their windows come). Before any add().
  void stream(const std::string& path, const std::vector<int64_t>& order);
  // Streaming: every later add() starts at or after `start` on chromosome c or on a chromosome after c in the
  // order; the blocks before that are written (their means) and freed. An add() before it is an Error.
  void release(int64_t c, int64_t start);
  // Writes the means (0 where no window fell) into a BigWigWriter's temporary and empties the accumulator;
  // `on_block()` is called after each block (a progress bar over blocks()). The caller commits the writer
  // (renames the file into place), e.g. together with the command's other outputs. Streaming: the blocks not yet
  // released go into the open file, whose path must be `path`.
  std::unique_ptr<BigWigWriter> write(const std::string& path, const std::function<void()>& on_block = {});

 private:
  struct Block {
    float sum[kBlock] = {};
    uint32_t cnt[kBlock] = {};
  };
  void write_block(int64_t c, int64_t k, const Block& b, std::vector<float>& m);  // its means into writer_
  const ChromSizes& sizes_;
  std::vector<int64_t> rank_;  // chromosome index -> its place in the key order (the FASTA order unless streaming)
  std::vector<int64_t> chrom_of_rank_;  // the inverse of rank_
  std::vector<int64_t> file_index_;  // streaming: chromosome index -> its index in the open file (-1: not in it)
  std::string path_;
  std::unique_ptr<BigWigWriter> writer_;  // streaming: the open file
  int64_t released_rank_ = -1, released_pos_ = 0;  // streaming: the last release()
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<Block>> blocks_;  // (rank of chromosome, position / kBlock)
};

// Whether r's windows come in genome order (each chromosome's windows together, their starts ascending), so that
// per-base tracks can be written as the windows are done (TrackAccumulator::stream); `order` gets the chromosomes in
// the order they come. A BED sorted with `sort -k1,1 -k2,2n` qualifies, whatever the FASTA's order.
bool windows_in_order(const RegionWindows& r, std::vector<int64_t>& order);

// windows_in_order for `lowpass <cmd>`'s per-base tracks; when the windows are not in order and there are at least
// `note_from` of them, a note on `log` that `held` (e.g. "attr.bw is held until the end (8 bytes per covered base)")
// and that a sorted BED is written as it goes.
bool windows_in_order_or_note(const RegionWindows& r, std::vector<int64_t>& order, const std::string& cmd,
                              const std::string& held, std::ostream& log, int64_t note_from = 10000);

// Sequences of a FASTA file as model inputs (`--fasta`): each record centred in the model's input length (longer
// ones cropped equally at both ends, shorter ones padded with N), x one-hot (N, 4, L) as uint8.
struct FastaInputs {
  std::vector<std::string> names;
  std::vector<int64_t> lengths;  // each record's own length
  int64_t length = 0;            // L
  std::vector<uint8_t> codes;    // (N, L) centred base codes (0–3 ACGT, 4 N): 1 byte a base, one-hot per batch
};
// Rows [s, s + n) of f's sequences as one-hot (n, 4, L) of `dtype` (N = zero column).
Tensor fasta_rows(Context& ctx, const FastaInputs& f, int64_t s, int64_t n, DType dtype);
// Writes DIR/sequences.tsv: row, record name, its length, and what centring did (as is / cropped / N-padded).
void write_sequence_table(const FastaInputs& f, const std::string& path);

// Where the sequences of `lowpass predict/attribute` come from: exactly one of npz, fasta and regions (+ genome).
struct InputFiles {
  std::string npz, fasta, regions, genome, cache_dir;
  // Profile models with controls, for regions: one entry per control track (1 for model.controls "shared", T for
  // "matched"), each the S strand bigWigs (--controls, split at commas by the CLI). Empty: the training run's
  // data.genome.controls, read from model_dir/config.json.
  std::vector<std::vector<std::string>> controls;
  std::string model_dir;
};

// The control tracks of `model` for the regions `rw` (see InputFiles::controls), checked: 1 or T tracks of S files
// each, every file readable and its chromosomes matching the FASTA's (chromosomes a bigWig lacks read as zeros, as
// in training). Errors say which files were expected and where they came from.
void attach_controls(RegionWindows& rw, const Model& model, const InputFiles& in);

// The windows of each model of a fold ensemble (several --model directories): `rw` with model k's control tracks,
// attach_controls with in.model_dir = dirs[k] (each training run names its own; --controls serve them all). Without
// regions (in.regions empty), or for models without controls, copies of `rw`; also the first when in.model_dir is
// dirs[0] (open_inputs already attached its controls to `rw`).
std::vector<RegionWindows> windows_per_model(const RegionWindows& rw, const std::vector<const Model*>& models,
                                             const std::vector<std::string>& dirs, InputFiles in);

// The inputs of `lowpass <cmd>` (predict, attribute): an npz (arrays["x"] and, when present, arrays["control"]
// hold only their shapes and dtypes: the caller reads the rows with npy::NpzRowReader), a FASTA of sequences
// (into fi->codes, 1 byte a base, arrays["x"] holding only the shape; without `fi`, one-hot into arrays["x"]) or a regions BED + genome FASTA (windows read into `rw`, with the
// model's control tracks; arrays["x"] then holds only the shape (N, 4, L)). Checks the choice, the model's control
// needs and x's shape; names `cmd` in messages.
std::map<std::string, npy::Array> open_inputs(const std::string& cmd, const Model& model, const InputFiles& in,
                                              RegionWindows& rw, FastaInputs* fi = nullptr);

}  // namespace lowpass::attr
