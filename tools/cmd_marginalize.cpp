// `lowpass marginalize --model DIR (--npz X.npz | --fasta S.fa | --regions BED --genome G.fa) --motifs M.meme
// --out DIR`: each motif's consensus (or a --sequence) written into background sequences (the inputs' first
// --backgrounds rows, dinucleotide-shuffled unless --no-shuffle), the model's eval predictions with it against
// without, averaged over the backgrounds: OUT/marginal_effects.tsv; profile models also OUT/footprints.npz (the mean
// expected counts per output position, before and after) and OUT/footprints.html. Several --model: their mean.
// Test: python/tests/test_cli_marginalize.py; library parts build/tests/lowpass_tests -ts=attr -tc='marginalize*'.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <numeric>
#include <sstream>

#include "engine/npz.h"
#include "engine/ops.h"
#include "engine/safetensors.h"
#include "models/attr/genome_regions.h"
#include "models/attr/marginalize.h"
#include "models/attr/model_dir.h"
#include "models/data/meme.h"
#include "models/eval/profile_metrics.h"
#include "models/loss/profile_loss.h"
#include "models/train/progress.h"
#include "tools/cli_checks.h"
#include "tools/commands.h"
#include "tools/interrupt.h"
#include "tools/svg.h"

namespace lowpass::tools {

namespace {
// A sequence or motif name as messages quote it: a long --sequence by its first bases and its length.
std::string brief(const std::string& s) {
  return s.size() <= 40 ? s : s.substr(0, 24) + "... (" + std::to_string(s.size()) + " characters)";
}

struct Insert {
  std::string name, seq;
  int64_t pos = 0;
};

// Per motif (or the backgrounds alone): sums over backgrounds of logits (binary, T) or of log counts (T·S), of the
// expected counts per output position (T·S·O) and of the profile probabilities (T·S·O: the shape, for a head whose
// every background predicts no reads, log(1 + n) ≤ 0, where the expected counts are all 0).
struct Sums {
  std::vector<double> head, track, shape;
};

void accumulate(Sums& s, const ModelOutput& o, int64_t n, int64_t TS, int64_t O) {
  const bool binary = o.logits.defined();
  const auto h = (binary ? o.logits : o.log_counts).to_vector<double>();
  if (s.head.empty())
    s.head.assign(static_cast<size_t>(TS), 0.0), s.track.assign(static_cast<size_t>(TS * O), 0.0),
        s.shape.assign(static_cast<size_t>(TS * O), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < TS; ++k) s.head[k] += h[i * TS + k];
  if (binary) return;
  const auto p = o.profile_logits.to_vector<double>();
  std::vector<float> v(static_cast<size_t>(O));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < TS; ++k) {
      attr::expected_counts(p.data() + (i * TS + k) * O, h[i * TS + k], O, v.data());
      for (int64_t q = 0; q < O; ++q) s.track[k * O + q] += v[q];
      attr::add_profile_probabilities(p.data() + (i * TS + k) * O, O, s.shape.data() + k * O);
    }
}

// Head k's mean change over n backgrounds (mean with − mean without): the TSV's logit_diff / logfc and the page's
// ranking both read it.
double mean_change(const Sums& before, const Sums& after, size_t k, int64_t n) {
  return (after.head[k] - before.head[k]) / static_cast<double>(n);
}

// The page draws the `top` insertions with the largest |Δ log counts| (mean with − mean without, the largest over tasks
// and strands; ties in input order); footprints.npz has all of them.
void write_page(const std::string& path, const std::vector<Insert>& ins, const Sums& before,
                const std::vector<Sums>& after, int64_t n, int64_t T, int64_t S, int64_t O, int64_t L, int64_t top) {
  std::vector<size_t> order(ins.size());
  std::vector<double> effect(ins.size(), 0.0);
  for (size_t m = 0; m < ins.size(); ++m) {
    order[m] = m;
    for (size_t k = 0; k < before.head.size(); ++k)
      effect[m] = std::max(effect[m], std::fabs(mean_change(before, after[m], k, n)));
  }
  top = std::min<int64_t>(top, static_cast<int64_t>(ins.size()));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return effect[a] > effect[b]; });
  order.resize(static_cast<size_t>(top));
  std::ostringstream f;
  f << svg::page_head("lowpass marginalize: footprints");
  f << "<p class=\"note\">Mean expected counts per output position over " << n
    << " background sequences, with the motif (solid) and without (dashed); the motif's bases are marked. "
    << (top < static_cast<int64_t>(ins.size())
            ? "The " + std::to_string(top) + " of " + std::to_string(ins.size()) +
                  " insertions with the largest |log counts change| (--plot); footprints.npz has every one."
            : std::string())
    << "</p>\n";
  const int64_t off = (L - O) / 2;
  for (size_t m : order) {
    for (int64_t t = 0; t < T; ++t) {
      std::vector<svg::Series> series;
      std::vector<double> x(static_cast<size_t>(O));
      for (int64_t q = 0; q < O; ++q) x[q] = static_cast<double>(q);
      for (int64_t s = 0; s < S; ++s) {
        const int64_t k = t * S + s;
        std::vector<double> a(static_cast<size_t>(O)), b(static_cast<size_t>(O));
        for (int64_t q = 0; q < O; ++q)
          a[q] = after[m].track[k * O + q] / static_cast<double>(n), b[q] = before.track[k * O + q] / static_cast<double>(n);
        const std::string strand = S > 1 ? " strand " + std::to_string(s) : "";
        series.push_back({"with" + strand, x, a, false, static_cast<int>(s)});
        series.push_back({"without" + strand, x, b, true, static_cast<int>(s)});
      }
      const double p0 = static_cast<double>(ins[m].pos - off), p1 = p0 + static_cast<double>(ins[m].seq.size());
      // The label right of both lines (left of the second, a short motif's end line crossed it).
      f << svg::line_chart(ins[m].name + " (" + ins[m].seq + ")" + (T > 1 ? ", task " + std::to_string(t) : ""),
                           series, {"output position", true, false}, {"expected counts", false, false},
                           {{p0, ""}, {p1, "motif"}});
    }
  }
  f << "</body></html>\n";
  const std::string text = f.str();
  safetensors::write_file_atomic(path, text);
}
}  // namespace

CommandRun add_marginalize_command(CLI::App& app) {
  struct Args : ModelInputArgs {
    std::string out, motifs, motif_names;
    std::vector<std::string> sequences;
    int64_t backgrounds = 100, position = -1, batch = 64, plot = 50;
    uint64_t seed = 20200219;
    bool no_shuffle = false, no_revcomp = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "marginalize", "A motif's effect: its consensus written into background sequences, predictions with vs without");
  add_model_input_options(sub, *a, "Model directory", "Backgrounds: npz with x (N, 4, L) (and control for models with controls)");
  // marginalize writes no sequences.tsv (predict's and attribute's --fasta help names it)
  sub->get_option("--fasta")->description("Backgrounds: FASTA of sequences (each centred in the input length: cropped or "
                                          "N-padded)");
  sub->add_option("--out", a->out, "Output directory (marginal_effects.tsv; footprints.npz/.html for profile models)")
      ->required();
  CLI::Option* motifs = sub->add_option("--motifs", a->motifs, "MEME file: each motif's consensus is inserted");
  sub->add_option("--motif-names", a->motif_names, "Comma-separated motif ids or names of --motifs (default: all)")
      ->needs(motifs);
  CLI::Option* seqs = sub->add_option("--sequence", a->sequences, "A sequence to insert (A, C, G, T, N); repeatable")
      ->take_all();
  sub->parse_complete_callback([a]() {
    check_model_input_options(*a);  // this callback replaces the one add_model_input_options set
    usage_check(!a->motifs.empty() || !a->sequences.empty(), "give --motifs M.meme or --sequence ACGT...");
    for (const auto& q : a->sequences) {  // a sequence's letters are a command-line matter (exit 2)
      try {
        attr::sequence_codes(q, q.empty() ? "--sequence" : "--sequence " + brief(q));
      } catch (const Error& e) {
        usage_check(false, e.what());
      }
    }
  });
  (void)seqs;
  sub->add_option("--backgrounds", a->backgrounds, "Background sequences: the inputs' first N rows")
      ->check(integer_at_least(1));
  sub->add_flag("--no-shuffle", a->no_shuffle, "Use the backgrounds as they are (default: dinucleotide-shuffled)");
  sub->add_flag("--no-revcomp", a->no_revcomp, "Forward strand only (default: mean with the reverse complement)");
  sub->add_option("--seed", a->seed, "Seed of the shuffles (row i uses seed + i)");
  sub->add_option("--position", a->position, "0-based start of the insertion in the input window (default: centred)")
      ->check(integer_at_least(0))
      ->default_str("");
  sub->add_option("--batch", a->batch, "Sequences per forward pass")->check(integer_at_least(1));
  sub->add_option("--plot", a->plot,
                  "Profile models: footprints.html draws the insertions with the largest |log counts change| "
                  "(default 50; 0: no page; footprints.npz has all)")
      ->check(integer_at_least(0));
  return [a]() {
    namespace fs = std::filesystem;
    Context ctx(a->threads, 0);
    ModelInputs in(ctx, *a, "marginalize");
    Model& model = in.model();
    const int64_t N = std::min(a->backgrounds, in.x().shape[0]), L = in.x().shape[2];
    if (a->backgrounds > in.x().shape[0])
      std::cerr << "lowpass marginalize: --backgrounds " << a->backgrounds << " but the input has " << in.x().shape[0]
                << " rows: all of them are used\n";
    // What is inserted: the motifs' consensus sequences, then the --sequence ones.
    std::vector<Insert> ins;
    if (!a->motifs.empty()) {
      const std::vector<Motif> all = read_meme(a->motifs);
      std::vector<Motif> chosen;
      if (a->motif_names.empty()) chosen = all;
      else
        for (const auto& nm : split_list(a->motif_names)) chosen.push_back(select_motif(all, nm, a->motifs));
      for (const auto& m : chosen) ins.push_back({m.name.empty() ? m.id : m.id + " " + m.name, attr::consensus(m), 0});
    }
    for (const auto& s : a->sequences) ins.push_back({s, s, 0});
    for (auto& i : ins) {
      const int64_t w = static_cast<int64_t>(i.seq.size());
      i.pos = a->position >= 0 ? a->position : (L - w) / 2;
      LP_CHECK(w <= L, brief(i.name), ": ", w, " bases do not fit the model's ", L, "-base input");
      LP_CHECK(i.pos + w <= L, brief(i.name), ": ", w, " bases at --position ", i.pos, " do not fit the model's ", L,
               "-base input (the last start that fits is ", L - w, ")");
    }
    const bool binary = model.type() == "binary";
    const int64_t T = model.tasks(), S = model_strands(model);
    const int64_t O = binary ? 0 : model.output_length(), TS = T * S;
    prepare_output_dir(a->out, {"footprints.npz"});  // its own temporaries only (an empty list means any)
    Sums before;
    std::vector<Sums> after(ins.size());
    StopOnSignal stop_on_signal;
    // Progress in background rows run through the model: each batch once as it is and once per motif, counted (and a
    // stop request honoured) after each, so that thousands of motifs do not leave the bar still for minutes.
    const int64_t passes = static_cast<int64_t>(ins.size()) + 1;
    Progress bar("marginalize", N * passes, "row", !a->quiet);
    for (int64_t s = 0; s < N; s += a->batch) {
      const int64_t n = std::min(a->batch, N - s);
      const Tensor bg = attr::background_rows(in.rows(ctx, s, n), !a->no_shuffle, a->seed, s);
      const std::vector<Tensor> c = in.control_rows(ctx, s, n);
      const bool rc = !a->no_revcomp;
      accumulate(before, attr::forward_mean(in.set, bg, c, rc), n, TS, O);
      bar.update(n);
      throw_if_interrupted();
      for (size_t m = 0; m < ins.size(); ++m) {
        accumulate(after[m],
                   attr::forward_mean(in.set, attr::insert_sequence(bg, ins[m].seq, ins[m].pos, ins[m].name), c, rc),
                   n, TS, O);
        bar.update(n);
        throw_if_interrupted();
      }
    }
    bar.finish();
    // The table: per motif, means over the backgrounds (differences of means = means of differences).
    const std::string path = (fs::path(a->out) / "marginal_effects.tsv").string();
    std::ofstream f(path + ".tmp");
    LP_CHECK(f.good(), path, ".tmp: cannot write (", std::strerror(errno), ")");
    f << "motif\tsequence\tposition\tbackgrounds";
    for (int64_t k = 0; k < TS; ++k) {
      const std::string sfx = TS > 1 ? (binary ? "_t" + std::to_string(k)
                                               : "_t" + std::to_string(k / S) + "_s" + std::to_string(k % S))
                                     : "";
      if (binary) f << "\tlogit_without" << sfx << "\tlogit_with" << sfx << "\tlogit_diff" << sfx;
      else f << "\tlog_counts_without" << sfx << "\tlog_counts_with" << sfx << "\tlogfc" << sfx << "\tjsd" << sfx;
    }
    f << "\n" << std::setprecision(7);
    const double inv = 1.0 / static_cast<double>(N);
    for (size_t m = 0; m < ins.size(); ++m) {
      f << ins[m].name << '\t' << ins[m].seq << '\t' << ins[m].pos << '\t' << N;
      for (int64_t k = 0; k < TS; ++k) {
        f << '\t' << before.head[k] * inv << '\t' << after[m].head[k] * inv << '\t'
          << mean_change(before, after[m], static_cast<size_t>(k), N);
        if (!binary) {  // the footprint's shape: JSD of the mean expected-count profiles, each normalised (the
                        // mean probabilities where every background predicts no reads)
          auto profile = [&](const Sums& s) {
            const double* t = s.track.data() + k * O;
            const double* from = std::accumulate(t, t + O, 0.0) > 0 ? t : s.shape.data() + k * O;
            return std::vector<double>(from, from + O);
          };
          f << '\t' << eval::jensen_shannon(profile(before), profile(after[m]));
        }
      }
      f << '\n';
    }
    f.close();
    LP_CHECK(f.good(), path, ".tmp: write failed");
    fs::rename(path + ".tmp", path);
    if (binary) {  // an earlier profile run's footprints must not sit beside this table
      std::error_code ec;
      fs::remove(fs::path(a->out) / "footprints.npz", ec), fs::remove(fs::path(a->out) / "footprints.html", ec);
    } else {
      npy::NpzWriter w((fs::path(a->out) / "footprints.npz").string());
      const auto put = [&](const std::string& key, const std::vector<double>& v, int64_t M) {
        npy::Array arr;
        arr.dtype = npy::NpyDType::F4;
        arr.shape = {M, T, S, O};
        std::vector<float> fv(v.size());
        for (size_t i = 0; i < v.size(); ++i) fv[i] = static_cast<float>(v[i] * inv);
        arr.bytes.assign(reinterpret_cast<const uint8_t*>(fv.data()),
                         reinterpret_cast<const uint8_t*>(fv.data()) + fv.size() * sizeof(float));
        w.add(key, arr);
      };
      std::vector<double> all;
      for (const auto& s : after) all.insert(all.end(), s.track.begin(), s.track.end());
      put("without", before.track, 1);
      put("with", all, static_cast<int64_t>(ins.size()));
      npy::Array start;  // the input position of output position 0 (insertions are at input positions)
      start.dtype = npy::NpyDType::I8;
      start.shape = {};
      const int64_t off = (L - O) / 2;
      start.bytes.assign(reinterpret_cast<const uint8_t*>(&off), reinterpret_cast<const uint8_t*>(&off) + 8);
      w.add("output_start", start);
      w.close();
      if (a->plot > 0)
        write_page((fs::path(a->out) / "footprints.html").string(), ins, before, after, N, T, S, O, L, a->plot);
      else  // an earlier run's page would describe other insertions
        std::filesystem::remove(fs::path(a->out) / "footprints.html");
    }
    std::cout << "wrote " << path << ": " << ins.size() << " insertion(s) into " << N << " background(s)"
              << (a->no_shuffle ? "" : " (dinucleotide-shuffled)")
              << (a->no_revcomp ? ", forward strand only" : ", mean of both strands")
              << (in.set.size() > 1 ? ", mean of " + std::to_string(in.set.size()) + " models" : std::string())
              << "\n";
    if (!binary)
      std::cout << "wrote " << (fs::path(a->out) / "footprints.npz").string()
                << (a->plot > 0 ? " and footprints.html" : "") << "\n";
    return 0;
  };
}

}  // namespace lowpass::tools
