// Region windows from a BED + FASTA, one-hot rows, and mean-of-overlaps bigWig tracks (see genome_regions.h).
// Test: build/tests/lowpass_tests -ts=attr_genome
#include "models/attr/genome_regions.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <iostream>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "models/data/bed.h"
#include "models/data/bigwig.h"
#include "models/data/binary_genome.h"
#include "models/loss/profile_loss.h"

namespace lowpass::attr {

RegionWindows read_region_windows(const std::string& bed, const std::string& fasta, int64_t length,
                                  const std::string& cache_dir) {
  LP_CHECK(length >= 1, "regions: the model's input length must be >= 1");
  RegionWindows r;
  r.fasta = std::make_shared<Fasta>(fasta, cache_dir);
  r.length = length;
  BedOptions o;
  o.sizes = &r.fasta->chrom_sizes();
  o.sizes_source = fasta;
  for (const Peak& p : read_bed(bed, o)) {
    const int64_t s = p.summit - length / 2, L = r.fasta->chrom_sizes().lengths[p.chrom_index];
    if (s < 0 || s + length > L) {
      if (++r.dropped_edge <= 10) r.dropped_lines.push_back(p.line);
      continue;
    }
    r.chrom.push_back(p.chrom_index);
    r.start.push_back(s);
    r.line.push_back(p.line);
  }
  LP_CHECK(r.size() > 0, bed, ": no region has a ", length, "-bp window (centred on its summit) inside its chromosome (",
           r.dropped_edge, " dropped at chromosome ends)");
  return r;
}

Tensor region_rows(Context& ctx, const RegionWindows& r, int64_t s, int64_t n, DType dtype) {
  LP_CHECK(s >= 0 && n >= 0 && s + n <= r.size(), "region_rows: rows [", s, ", ", s + n, ") of ", r.size());
  const int64_t L = r.length;
  std::vector<float> x(static_cast<size_t>(n * 4 * L));
  std::vector<uint8_t> codes(static_cast<size_t>(L));
  const ChromSizes& cs = r.fasta->chrom_sizes();
  for (int64_t i = 0; i < n; ++i) {
    r.fasta->fetch_codes(cs.names[r.chrom[s + i]], r.start[s + i], r.start[s + i] + L, codes.data());
    one_hot_codes(codes.data(), L, x.data() + i * 4 * L);
  }
  Tensor t = Tensor::from_vector(ctx, {n, 4, L}, x);
  return dtype == DType::F32 ? t : t.to(dtype);
}

Tensor fasta_rows(Context& ctx, const FastaInputs& f, int64_t s, int64_t n, DType dtype) {
  const int64_t L = f.length, N = static_cast<int64_t>(f.names.size());
  LP_CHECK(s >= 0 && n >= 0 && s + n <= N && static_cast<int64_t>(f.codes.size()) == N * L, "fasta_rows: rows [", s,
           ", ", s + n, ") of ", N);
  std::vector<float> x(static_cast<size_t>(n * 4 * L));
  for (int64_t i = 0; i < n; ++i) one_hot_codes(f.codes.data() + (s + i) * L, L, x.data() + i * 4 * L);
  Tensor t = Tensor::from_vector(ctx, {n, 4, L}, x);
  return dtype == DType::F32 ? t : t.to(dtype);
}

Tensor region_control_rows(Context& ctx, const RegionWindows& r, int64_t s, int64_t n, DType dtype) {
  if (r.controls.empty()) return Tensor();
  LP_CHECK(s >= 0 && n >= 0 && s + n <= r.size(), "region_control_rows: rows [", s, ", ", s + n, ") of ", r.size());
  const int64_t Tc = static_cast<int64_t>(r.controls.size()), S = r.controls[0].strands(), O = r.output_length;
  const int64_t off = (r.length - O) / 2;
  std::vector<float> v(static_cast<size_t>(n * Tc * S * O));
  const ChromSizes& cs = r.fasta->chrom_sizes();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t < Tc; ++t) {
      const int64_t y0 = r.start[s + i] + off;
      r.controls[t].window(cs.names[r.chrom[s + i]], y0, y0 + O, v.data() + (i * Tc + t) * S * O);
    }
  Tensor c = Tensor::from_vector(ctx, {n, Tc, S, O}, v);
  return dtype == DType::F32 ? c : c.to(dtype);
}

void write_region_bed(const RegionWindows& r, safetensors::AtomicFile& f) {
  const ChromSizes& cs = r.fasta->chrom_sizes();
  std::string buf;
  for (int64_t i = 0; i < r.size(); ++i) {
    buf += cs.names[r.chrom[i]] + '\t' + std::to_string(r.start[i]) + '\t' + std::to_string(r.start[i] + r.length) +
           "\trow" + std::to_string(i) + "_line" + std::to_string(r.line[i]) + '\n';
    if (buf.size() >= (1u << 20) || i + 1 == r.size()) f.write(buf.data(), buf.size()), buf.clear();
  }
}

void write_region_bed(const RegionWindows& r, const std::string& path) {
  safetensors::AtomicFile f(path);
  write_region_bed(r, f);
  f.commit();
}

namespace {
// The softmax's shift and normaliser: softmax[q] = exp(logits[q] − m) / z.
std::pair<double, double> softmax_terms(const double* logits, int64_t O) {
  double m = -HUGE_VAL, z = 0;
  for (int64_t q = 0; q < O; ++q) m = std::max(m, logits[q]);
  for (int64_t q = 0; q < O; ++q) z += std::exp(logits[q] - m);
  return {m, z};
}
}  // namespace

void expected_counts(const double* profile_logits, double log_counts, int64_t O, float* out) {
  const auto [m, z] = softmax_terms(profile_logits, O);
  const double total = predicted_total(log_counts);
  for (int64_t q = 0; q < O; ++q) out[q] = static_cast<float>(std::exp(profile_logits[q] - m) / z * total);
}

void add_profile_probabilities(const double* profile_logits, int64_t O, double* acc) {
  const auto [m, z] = softmax_terms(profile_logits, O);
  for (int64_t q = 0; q < O; ++q) acc[q] += std::exp(profile_logits[q] - m) / z;
}

TrackAccumulator::TrackAccumulator(const ChromSizes& sizes) : sizes_(sizes) {
  rank_.resize(static_cast<size_t>(sizes.size()));
  for (int64_t c = 0; c < sizes.size(); ++c) rank_[c] = c;
  chrom_of_rank_ = rank_;
}

void TrackAccumulator::stream(const std::string& path, const std::vector<int64_t>& order) {
  LP_ASSERT(!writer_ && blocks_.empty(), "stream() before any add()");
  ChromSizes sub;
  file_index_.assign(static_cast<size_t>(sizes_.size()), -1);
  std::fill(rank_.begin(), rank_.end(), static_cast<int64_t>(order.size()));  // not in the order: after it
  for (size_t i = 0; i < order.size(); ++i) {
    const int64_t c = order[i];
    LP_ASSERT(c >= 0 && c < sizes_.size() && file_index_[c] < 0, "stream(): chromosome ", c, " twice or unknown");
    rank_[c] = static_cast<int64_t>(i), file_index_[c] = sub.size();
    sub.add(sizes_.names[c], sizes_.lengths[c]);
  }
  chrom_of_rank_ = order;
  path_ = path;
  writer_ = std::make_unique<BigWigWriter>(path, sub);
}

void TrackAccumulator::add(int64_t c, int64_t start, const float* v, int64_t n) {
  const int64_t L = sizes_.lengths[c];
  const int64_t lo = std::max<int64_t>(start, 0), hi = std::min(start + n, L);
  if (writer_)
    LP_ASSERT(file_index_[c] >= 0 && (rank_[c] > released_rank_ || (rank_[c] == released_rank_ && lo >= released_pos_)),
              "track: a window on ", sizes_.names[c], " at ", start, " after its blocks were written");
  for (int64_t p = lo; p < hi;) {
    std::unique_ptr<Block>& b = blocks_[{rank_[c], p / kBlock}];
    if (!b) b = std::make_unique<Block>();
    const int64_t q0 = p % kBlock, e = std::min(hi, (p / kBlock + 1) * kBlock);
    for (int64_t q = q0; p < e; ++p, ++q) {
      if (b->cnt[q] == UINT32_MAX) continue;  // saturated: the mean so far stays
      b->sum[q] += v[p - start];
      ++b->cnt[q];
    }
  }
}

void TrackAccumulator::write_block(int64_t c, int64_t k, const Block& b, std::vector<float>& m) {
  const int64_t s = k * kBlock, n = std::min(kBlock, sizes_.lengths[c] - s);
  for (int64_t q = 0; q < n; ++q) m[q] = b.cnt[q] ? b.sum[q] / static_cast<float>(b.cnt[q]) : 0.0f;
  writer_->add(file_index_[c], s, m.data(), n);
}

void TrackAccumulator::release(int64_t c, int64_t start) {
  LP_ASSERT(writer_, "release() without stream()");
  const int64_t r = rank_[c], pos = std::max<int64_t>(start, 0);
  LP_ASSERT(r > released_rank_ || (r == released_rank_ && pos >= released_pos_), "release() going back");
  released_rank_ = r, released_pos_ = pos;
  std::vector<float> m(static_cast<size_t>(kBlock));
  // A block is final when it lies on an earlier chromosome of the order, or ends at or before pos on c.
  while (!blocks_.empty()) {
    auto it = blocks_.begin();
    const auto [br, k] = it->first;
    if (!(br < r || (br == r && (k + 1) * kBlock <= pos))) break;
    write_block(chrom_of_rank_[br], k, *it->second, m);
    blocks_.erase(it);
  }
}

std::unique_ptr<BigWigWriter> TrackAccumulator::write(const std::string& path, const std::function<void()>& on_block) {
  if (!writer_) {  // the touched chromosomes, in FASTA order
    std::vector<int64_t> order;
    for (const auto& [key, b] : blocks_)
      if (order.empty() || order.back() != key.first) order.push_back(key.first);  // ranks are chromosome indices
    std::map<std::pair<int64_t, int64_t>, std::unique_ptr<Block>> held;
    held.swap(blocks_);
    stream(path, order);
    for (auto& [key, b] : held) blocks_[{rank_[key.first], key.second}] = std::move(b);
  }
  LP_ASSERT(path == path_, "write(): the track streams to ", path_, ", not ", path);
  std::vector<float> m(static_cast<size_t>(kBlock));
  while (!blocks_.empty()) {
    auto it = blocks_.begin();
    write_block(chrom_of_rank_[it->first.first], it->first.second, *it->second, m);
    blocks_.erase(it);
    if (on_block) on_block();
  }
  writer_->finish();
  return std::move(writer_);
}

bool windows_in_order(const RegionWindows& r, std::vector<int64_t>& order) {
  order.clear();
  std::vector<bool> seen(static_cast<size_t>(r.fasta ? r.fasta->chrom_sizes().size() : 0), false);
  for (int64_t i = 0; i < r.size(); ++i) {
    const int64_t c = r.chrom[i];
    if (i > 0 && c == r.chrom[i - 1]) {
      if (r.start[i] < r.start[i - 1]) return false;
      continue;
    }
    if (c >= static_cast<int64_t>(seen.size())) seen.resize(static_cast<size_t>(c) + 1, false);
    if (seen[c]) return false;  // the chromosome's windows are split
    seen[c] = true;
    order.push_back(c);
  }
  return true;
}

bool windows_in_order_or_note(const RegionWindows& r, std::vector<int64_t>& order, const std::string& cmd,
                              const std::string& held, std::ostream& log, int64_t note_from) {
  const bool in_order = windows_in_order(r, order);
  if (!in_order && r.size() >= note_from)
    log << "lowpass " << cmd << ": the regions are not in genome order (each chromosome's together, starts ascending), "
        << "so " << held << "; a BED sorted with `sort -k1,1 -k2,2n` is written as it goes\n";
  return in_order;
}

void write_sequence_table(const FastaInputs& f, const std::string& path) {
  safetensors::AtomicFile file(path);  // temp + rename, as the other outputs: a full disk leaves no half table
  std::string buf = "row\tname\tlength\tinput\n";
  for (size_t i = 0; i < f.names.size(); ++i) {
    const int64_t n = f.lengths[i];
    buf += std::to_string(i) + '\t' + f.names[i] + '\t' + std::to_string(n) + '\t' +
           (n == f.length ? "as is" : n > f.length ? "centre cropped" : "centred, N-padded") + '\n';
    if (buf.size() >= (1u << 20) || i + 1 == f.names.size()) file.write(buf.data(), buf.size()), buf.clear();
  }
  if (!buf.empty()) file.write(buf.data(), buf.size());
  file.commit();
}

namespace {

npy::Array fasta_x(const std::string& fasta, int64_t L, FastaInputs* fi) {
  std::vector<FastaRecord> recs = read_fasta_records(fasta);
  LP_CHECK(!recs.empty(), fasta, ": no FASTA records");
  npy::Array x;
  x.dtype = npy::NpyDType::U1;
  const int64_t N = static_cast<int64_t>(recs.size());
  x.shape = {N, 4, L};
  if (fi) {  // codes, one byte a base; the records are freed as they are encoded
    fi->codes.resize(static_cast<size_t>(N * L));
    for (int64_t i = 0; i < N; ++i) {
      FastaRecord& r = recs[static_cast<size_t>(i)];
      const std::vector<uint8_t> codes = centre_codes(r.seq, L);
      std::copy(codes.begin(), codes.end(), fi->codes.begin() + i * L);
      fi->names.push_back(std::move(r.name));
      fi->lengths.push_back(static_cast<int64_t>(r.seq.size()));
      std::string().swap(r.seq);
    }
    fi->length = L;
    return x;
  }
  x.bytes.assign(static_cast<size_t>(N * 4 * L), 0);
  std::vector<float> row(static_cast<size_t>(4 * L));
  for (int64_t i = 0; i < N; ++i) {
    const std::vector<uint8_t> codes = centre_codes(recs[static_cast<size_t>(i)].seq, L);
    one_hot_codes(codes.data(), L, row.data());
    for (int64_t k = 0; k < 4 * L; ++k) x.bytes[static_cast<size_t>(i * 4 * L + k)] = row[static_cast<size_t>(k)] != 0;
  }
  return x;
}

}  // namespace

void attach_controls(RegionWindows& rw, const Model& model, const InputFiles& in) {
  namespace fs = std::filesystem;
  rw.controls.clear();
  const std::string mode = controls_mode(model);
  const Shape shape = control_shape(model, 1);
  if (shape.empty()) {
    LP_CHECK(in.controls.empty(), "--controls: the model takes no control tracks (",
             model.type() == "profile" ? "model.controls is \"none\")" : "a binary model)");
    return;
  }
  const int64_t Tc = shape[1], S = shape[2];
  const std::string want = std::to_string(Tc) + (Tc == 1 ? " control track" : " control tracks (one per task)") +
                           " of " + std::to_string(S) + " strand bigWig(s) (model.controls \"" + mode + "\")";
  std::vector<std::vector<std::string>> files = in.controls;
  std::string from = "--controls";
  if (files.empty()) {
    const fs::path cfg = fs::path(in.model_dir) / "config.json";
    from = cfg.string() + ": data.genome.controls";
    nlohmann::json j;
    if (std::ifstream f(cfg); f.good()) j = nlohmann::json::parse(f, nullptr, false);
    const nlohmann::json* c = nullptr;
    if (j.is_object() && j.contains("data") && j["data"].is_object() && j["data"].contains("genome") &&
        j["data"]["genome"].is_object() && j["data"]["genome"].contains("controls"))
      c = &j["data"]["genome"]["controls"];
    LP_CHECK(c && c->is_array() && !c->empty(), in.regions, ": the model takes ", want, "; give them with --controls "
             "(one per track, its strands comma-separated): ", cfg.string(),
             " names none (a model trained from arrays)");
    for (const auto& t : *c) {
      std::vector<std::string> strands;
      if (t.is_string()) strands.push_back(t.get<std::string>());
      else if (t.is_array())
        for (const auto& f : t)
          if (f.is_string()) strands.push_back(f.get<std::string>());
      files.push_back(strands);
    }
  }
  LP_CHECK(static_cast<int64_t>(files.size()) == Tc, from, ": ", files.size(),
           " control track(s), but the model takes ", want);
  std::vector<std::string> names;  // the chromosomes the regions touch
  {
    const ChromSizes& cs = rw.fasta->chrom_sizes();
    std::vector<bool> seen(static_cast<size_t>(cs.size()), false);
    for (int64_t c : rw.chrom)
      if (!seen[static_cast<size_t>(c)]) seen[static_cast<size_t>(c)] = true, names.push_back(cs.names[c]);
  }
  for (int64_t t = 0; t < Tc; ++t) {
    const auto& f = files[static_cast<size_t>(t)];
    LP_CHECK(static_cast<int64_t>(f.size()) == S, from, " track ", t, ": ", f.size(), " bigWig file(s), but the model "
             "has ", S, " strand(s)");
    for (const auto& p : f)
      LP_CHECK(fs::is_regular_file(p), from, ": control bigWig '", p, "' not found",
               from == "--controls" ? "" : " (the training run's file; give the controls with --controls)");
    Track track(f);
    track.check_against(rw.fasta->chrom_sizes(), names);
    rw.controls.push_back(std::move(track));
  }
  rw.output_length = model.output_length();
}

std::vector<RegionWindows> windows_per_model(const RegionWindows& rw, const std::vector<const Model*>& models,
                                             const std::vector<std::string>& dirs, InputFiles in) {
  LP_CHECK(models.size() == dirs.size(), "windows_per_model: ", models.size(), " models, ", dirs.size(), " dirs");
  std::vector<RegionWindows> r;
  for (size_t k = 0; k < models.size(); ++k) {
    r.push_back(rw);
    if (in.regions.empty() || (k == 0 && in.model_dir == dirs[0])) continue;  // the first: open_inputs attached it
    in.model_dir = dirs[k];
    attach_controls(r.back(), *models[k], in);
  }
  return r;
}

std::map<std::string, npy::Array> open_inputs(const std::string& cmd, const Model& model, const InputFiles& in,
                                              RegionWindows& rw, FastaInputs* fi) {
  const std::string &npz = in.npz, &regions = in.regions, &fasta = in.fasta;
  LP_CHECK(!npz.empty() + !regions.empty() + !fasta.empty() == 1, cmd,
           ": give exactly one of --npz, --fasta and --regions");
  LP_CHECK(regions.empty() || !in.genome.empty(), cmd, ": --regions needs --genome FASTA");
  LP_CHECK(!regions.empty() || in.controls.empty(), cmd, ": --controls goes with --regions (an npz gives 'control')");
  const std::string src = !regions.empty() ? regions : !fasta.empty() ? fasta : npz;
  LP_CHECK(fasta.empty() || controls_mode(model) == "none", src, ": the model takes control tracks, which --fasta cannot give; use --regions with --genome (the "
           "controls are read from the training run's bigWigs, or --controls) or --npz with 'control'");
  std::map<std::string, npy::Array> arrays;
  if (!fasta.empty()) {
    arrays["x"] = fasta_x(fasta, model.input_length(), fi);
  } else if (!regions.empty()) {
    rw = read_region_windows(regions, in.genome, model.input_length(), in.cache_dir);
    attach_controls(rw, model, in);
    if (rw.dropped_edge > 0) {
      std::cerr << "lowpass " << cmd << ": " << rw.dropped_edge << " of " << rw.dropped_edge + rw.size()
                << " regions dropped (their " << rw.length << "-bp window runs off the chromosome): " << regions
                << " line" << (rw.dropped_edge > 1 ? "s " : " ");
      for (size_t i = 0; i < rw.dropped_lines.size(); ++i) std::cerr << (i ? ", " : "") << rw.dropped_lines[i];
      std::cerr << (rw.dropped_edge > static_cast<int64_t>(rw.dropped_lines.size()) ? ", ..." : "")
                << (cmd == "predict" || cmd == "attribute" ? "; regions.bed maps each output row to its BED line" : "")
                << "\n";
    }
    arrays["x"].shape = {rw.size(), 4, rw.length};  // shape only: rows come from the genome
  } else {  // shapes only: the rows are read from the file batch by batch (npy::NpzRowReader)
    npy::NpzRowReader r(npz);
    for (const char* key : {"x", "control"})
      if (r.has(key)) arrays[key].shape = r.shape(key), arrays[key].dtype = r.dtype(key);
  }
  LP_CHECK(arrays.count("x"), npz, ": no array 'x'");
  const npy::Array& xa = arrays.at("x");
  LP_CHECK(xa.shape.size() == 3 && xa.shape[1] == 4, src, ": x must be (N, 4, L), got ", shape_str(xa.shape));
  LP_CHECK(xa.shape[2] == model.input_length(), src, ": x has length ", xa.shape[2], " but the model's input_length is ",
           model.input_length());
  LP_CHECK(xa.shape[0] >= 1, src, ": no sequences (x has 0 rows)");
  if (arrays.count("control")) {
    const Shape& cs = arrays.at("control").shape;
    LP_CHECK(!cs.empty() && cs[0] == xa.shape[0], npz, ": control ", shape_str(cs), " has ", cs.empty() ? 0 : cs[0],
             " rows but x ", shape_str(xa.shape), " has ", xa.shape[0]);
  }
  LP_CHECK(npz.empty() || controls_mode(model) != "none" || !arrays.count("control"), npz, ": has a 'control' array, ",
           "but the model takes no control track (model.controls \"none\"); drop the array to use this model");
  if (!npz.empty() && controls_mode(model) != "none") {  // named with the file here, not by the model at batch 1
    const std::string mode = controls_mode(model);
    const Shape want = control_shape(model, xa.shape[0]);
    LP_CHECK(arrays.count("control"), npz, ": no array 'control', but the model takes control tracks (controls \"",
             mode, "\": ", shape_str(want), ")");
    LP_CHECK(arrays.at("control").shape == want, npz, ": control ", shape_str(arrays.at("control").shape),
             " does not fit the model: expected ", shape_str(want), " (controls \"", mode, "\": N, ",
             mode == "shared" ? "1" : "tasks", ", strands, output length)");
  }
  return arrays;
}

}  // namespace lowpass::attr
