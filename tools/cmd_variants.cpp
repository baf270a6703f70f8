// `lowpass variants --model DIR [--model DIR2 ...] --vcf V.vcf[.gz] --genome G.fa --out DIR`: the model's
// predictions for each ALT allele of a VCF against its REF, in windows centred on the variant
// (models/attr/variants.h), as OUT/variant_scores.tsv; several models (e.g. the folds of one experiment) are averaged.
// Binary models: logit_ref, logit_alt, logit_diff (alt − ref) per task. Profile models, per task and strand:
// log_counts_ref, log_counts_alt, logfc (alt − ref, natural log) and jsd (Jensen–Shannon divergence, natural log,
// of the REF and ALT profiles softmax(profile logits)) and jsd_aligned (the same after moving the ALT profile onto the
// REF coordinates, over the positions both share: attr::align_profiles; equal to jsd for SNVs). By default each prediction is the mean of the window's and
// its reverse complement's (mapped back to the forward strand); --no-revcomp uses the forward strand alone. The VCF
// is streamed (attr::VariantReader): a chunk is read, scored and appended to the TSV, then dropped; the page keeps
// the --plot largest effects in a bounded heap (TopAlleles).
// Test: build/tests/lowpass_tests -ts=variants (library); python/tests/test_cli_variants.py (command).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>

#include "models/attr/attribute.h"
#include "models/attr/genome_regions.h"
#include "models/attr/model_dir.h"
#include "models/attr/variants.h"
#include "models/eval/profile_metrics.h"
#include "models/loss/profile_loss.h"
#include "models/train/progress.h"
#include "tools/cli_checks.h"
#include "tools/commands.h"
#include "tools/interrupt.h"
#include "tools/svg.h"

namespace lowpass::tools {

namespace {

struct Predictions {
  std::vector<double> logits;      // binary (n, T)
  std::vector<double> probs;       // profile (n, T, S, O): softmax over O
  std::vector<double> log_counts;  // profile (n, T, S)
};

// Alleles [s, s + n): their REF and ALT one-hot windows and, per model, the control rows of their windows.
struct AlleleRows {
  Tensor ref, alt;
  std::vector<Tensor> controls;
};
AlleleRows allele_rows(Context& ctx, const attr::VariantSet& vs, const std::vector<attr::RegionWindows>& rws,
                       int64_t s, int64_t n, DType dt) {
  AlleleRows a;
  attr::variant_rows(ctx, vs, s, n, dt, a.ref, a.alt);
  for (const auto& w : rws) a.controls.push_back(attr::region_control_rows(ctx, w, s, n, dt));
  return a;
}

// The models' mean outputs (attr::forward_mean; with `rc` also over the reverse complement) on the host: binary
// logits; profile probabilities (softmax of the mean logits) and log counts.
Predictions predict_rows(attr::ModelSet& set, const std::vector<Tensor>& controls, const Tensor& x, bool rc) {
  const ModelOutput o = attr::forward_mean(set, x, controls, rc);
  Predictions p;
  if (o.logits.defined()) {
    p.logits = o.logits.to_vector<double>();
  } else {
    p.probs = softmax(o.profile_logits, -1).to_vector<double>();
    p.log_counts = o.log_counts.to_vector<double>();
  }
  return p;
}

// OUT/variants.html: the `top` alleles by |effect| (binary: the largest |logit_diff| over tasks; profile: the largest
// |logfc| over tasks and strands), each with (profile) the REF and ALT expected counts over the output window and the
// REF and ALT grad × input logos of the first model (its default target) around the variant.
// `vs` holds the top alleles, ranked (TopAlleles::ranked), `rws` their windows per model; `total` the alleles scored.
void write_variant_page(const std::string& path, const attr::VariantSet& vs, const std::vector<double>& effect,
                        const std::vector<int64_t>& index, int64_t total, attr::ModelSet& set,
                        const std::vector<attr::RegionWindows>& rws, bool rc, Context& ctx) {
  using namespace svg;
  const int64_t top = vs.size();
  Model& m = set.front();
  const bool binary = m.type() == "binary";
  const int64_t L = vs.length, h = L / 2, T = m.tasks();
  const int64_t O = binary ? 0 : m.output_length(), S = model_strands(m);
  const DType dt = m.parameters().front().second.dtype();
  attr::AttrOptions ao;
  ao.method = "grad";
  ao.target = attr::default_target(m);
  std::ostringstream html;
  html << page_head("lowpass variants") << "<p>" << top << " of " << total << " alleles with the largest |" << (binary ? "logit_diff" : "logfc")
       << "| (over " << (binary ? "tasks" : "tasks and strands") << ")" << (set.size() > 1 ? ", mean of the models" : "")
       << "; logos: grad × input of the first model (target " << esc(ao.target.name()) << ") around the variant, "
       << "REF and ALT windows.</p><table><tr><th>#</th><th>variant</th><th>id</th><th>record</th><th>|effect|</th></tr>";
  auto name = [&](const attr::Variant& v) {
    return vs.fasta->chrom_sizes().names[v.chrom] + ":" + std::to_string(v.pos + 1) + " " + v.ref + ">" + v.alt;
  };
  for (int64_t r = 0; r < top; ++r) {
    const attr::Variant& v = vs.alleles[static_cast<size_t>(r)];
    html << "<tr><td>" << r + 1 << "</td><td>" << esc(name(v)) << "</td><td>" << esc(v.id.empty() ? "." : v.id)
         << "</td><td class='num'>" << v.record << "</td><td class='num'>" << fmt(effect[static_cast<size_t>(r)])
         << "</td></tr>";
  }
  html << "</table>";
  for (int64_t r = 0; r < top; ++r) {
    const int64_t i = index[static_cast<size_t>(r)];  // the allele's index in the file's scored alleles
    const attr::Variant& v = vs.alleles[static_cast<size_t>(r)];
    const AlleleRows rows = allele_rows(ctx, vs, rws, r, 1, dt);
    html << "<h2>" << r + 1 << ". " << esc(name(v)) << (v.id.empty() ? "" : " (" + esc(v.id) + ")") << "</h2>";
    if (!binary) {  // expected counts softmax(profile) · (exp(log counts) − 1) of REF and ALT, per task and strand
      const Predictions pr = predict_rows(set, rows.controls, rows.ref, rc);
      const Predictions pa = predict_rows(set, rows.controls, rows.alt, rc);
      const int64_t first = vs.window_start(r) + (L - O) / 2 + 1;  // 1-based genome position of output bin 0
      for (int64_t t = 0; t < T; ++t) {
        std::vector<Series> series;
        for (int64_t st = 0; st < S; ++st)
          for (int side = 0; side < 2; ++side) {
            const Predictions& p = side == 0 ? pr : pa;
            const int64_t k = t * S + st;
            Series sr;
            sr.name = std::string(side == 0 ? "REF" : "ALT") + (S > 1 ? " strand " + std::to_string(st) : "");
            sr.color = side, sr.dashed = st == 1;
            const double total = predicted_total(p.log_counts[static_cast<size_t>(k)]);
            for (int64_t q = 0; q < O; ++q) {
              sr.x.push_back(static_cast<double>(first + q));
              sr.y.push_back(p.probs[static_cast<size_t>(k * O + q)] * total);
            }
            series.push_back(std::move(sr));
          }
        html << line_chart("task " + std::to_string(t) + ": predicted counts, REF vs ALT", series,
                           Axis{vs.fasta->chrom_sizes().names[v.chrom] + " position", true},
                           Axis{"expected counts per base"}, {Marker{static_cast<double>(v.pos + 1), "variant"}});
      }
    }
    // REF and ALT on one score scale (the larger max |score| of the two), so that their heights compare; the
    // variant's bases shaded.
    const int64_t from = std::max<int64_t>(0, h - 25);
    throw_if_interrupted();
    std::vector<double> act[2];
    int64_t to[2];
    double top = 0;
    for (int side = 0; side < 2; ++side) {
      const Tensor& x = side == 0 ? rows.ref : rows.alt;
      to[side] = std::min<int64_t>(L, h + 26 + (side == 1 ? static_cast<int64_t>(v.alt.size()) - 1 : 0));
      attr::AttrResult at = attr::attribute(m, x, rows.controls.front(), ao, i);
      act[side] = at.actual.to_vector<double>();
      for (int c = 0; c < 4; ++c)
        for (int64_t l = from; l < to[side]; ++l) top = std::max(top, std::fabs(act[side][c * L + l]));
    }
    for (int side = 0; side < 2; ++side) {
      const int64_t len = static_cast<int64_t>((side == 0 ? v.ref : v.alt).size());
      html << logo(std::string(side == 0 ? "REF " : "ALT ") + v.ref + ">" + v.alt + ", window positions (variant at " +
                       std::to_string(h) + ", shaded)",
                   act[side], L, from, to[side], {top, h, std::min(h + len, L)});
    }
  }
  html << "</body></html>\n";
  const std::string tmp = path + ".tmp";
  std::ofstream f(tmp);
  f << html.str();
  f.close();
  if (!f.good()) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw Error(tmp + ": write failed");
  }
  std::filesystem::rename(tmp, path);
}

// The page's alleles: the `k` largest effects seen so far (ties: the earlier allele first), in a bounded heap whose
// front is the weakest kept; memory follows k, not the file.
class TopAlleles {
 public:
  struct Entry {
    double effect;
    int64_t index;  // among the scored alleles, in file order
    attr::Variant v;
  };
  explicit TopAlleles(int64_t k) : k_(k) {}
  static bool before(const Entry& a, const Entry& b) {  // a ranks before b
    return a.effect > b.effect || (a.effect == b.effect && a.index < b.index);
  }
  void offer(double effect, int64_t index, const attr::Variant& v) {
    if (k_ <= 0) return;
    if (static_cast<int64_t>(heap_.size()) < k_) {
      heap_.push_back({effect, index, v});
      std::push_heap(heap_.begin(), heap_.end(), before);
    } else if (before(Entry{effect, index, {}}, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), before);
      heap_.back() = {effect, index, v};
      std::push_heap(heap_.begin(), heap_.end(), before);
    }
  }
  // Largest effect first.
  std::vector<Entry> ranked() const {
    std::vector<Entry> r = heap_;
    std::sort(r.begin(), r.end(), before);
    return r;
  }

 private:
  int64_t k_;
  std::vector<Entry> heap_;
};

// Per model: the control-track template's windows (no rows) given the rows of `vs`.
std::vector<attr::RegionWindows> windows_of(const std::vector<attr::RegionWindows>& tmpl, const attr::VariantSet& vs) {
  const attr::RegionWindows w = attr::variant_windows(vs);
  std::vector<attr::RegionWindows> r = tmpl;
  for (auto& x : r) x.chrom = w.chrom, x.start = w.start, x.line = w.line;
  return r;
}

}  // namespace

CommandRun add_variants_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> models, controls, region;
    std::string vcf, genome, out, weights = "best", cache_dir, device = "cpu", regions;
    int64_t batch = 64, plot = 10, chunk = 2048;
    int threads = 0;
    bool no_revcomp = false, quiet = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "variants", "Score the ALT alleles of a VCF against their REF (windows centred on each variant)");
  sub->add_option("--model", a->models,
                  "Model directory (config.json + best/model.safetensors); repeat it to average several models "
                  "(e.g. the folds of one experiment)")
      ->required()
      ->take_all();
  sub->add_option("--vcf", a->vcf, "VCF or BCF (plain or bgzip) of the variants")->required();
  sub->add_option("--genome", a->genome, "Reference FASTA the VCF's REF alleles come from")->required();
  sub->add_option("--out", a->out, "Output directory (variant_scores.tsv)")->required();
  sub->add_option("--regions", a->regions,
                  "Score only the records whose REF overlaps these intervals (BED3+ or narrowPeak, plain or gzip)");
  sub->add_option("--region", a->region,
                  "Score only the records whose REF overlaps chrom, chrom:pos or chrom:start-end (1-based, inclusive); "
                  "repeatable, adds to --regions")
      ->take_all();
  sub->add_option("--cache-dir", a->cache_dir, "Where to put the FASTA index when its folder is read-only");
  add_controls_option(sub, a->controls);
  sub->add_flag("--no-revcomp", a->no_revcomp, "Forward strand only (default: mean with the reverse complement)");
  sub->add_option("--plot", a->plot, "Alleles with the largest effects drawn in OUT/variants.html (0: no page)")
      ->check(integer_at_least(0));
  sub->add_option("--batch", a->batch, "Variants per forward pass (REF and ALT each)")->check(integer_at_least(1));
  sub->add_option("--chunk", a->chunk, "Alleles read from the VCF at a time (memory; the output does not depend on it)")
      ->check(integer_at_least(1, "--chunk"))
      ->group("");  // hidden: for tests (a chunk smaller than the VCF)
  sub->add_option("--weights", a->weights,
                  "best | last | a .safetensors state_dict or a training checkpoint "
                  "(DIR/checkpoints/epoch_N.safetensors); for every --model")
      ->check(weights_choice());
  sub->parse_complete_callback([a]() {
    usage_check(a->models.size() <= 1 || a->weights == "best" || a->weights == "last",
                "--weights " + a->weights + ": one weights file cannot serve " + std::to_string(a->models.size()) +
                    " --model directories (use best or last, or one --model)");
  });
  sub->add_option("--threads", a->threads, "CPU threads (0 = all)")->check(integer_at_least(0));
  sub->add_option("--device", a->device, "cpu | cuda | cuda:N (model and batches on that device)")
      ->check(device_name());
  sub->add_flag("--quiet", a->quiet, "No progress bar");
  return [a]() {
    namespace fs = std::filesystem;
    make_output_folder(a->out, "the output folder (--out)");  // first: a bad --out fails before the VCF is read
    Context ctx(a->threads, 0);
    attr::ModelSet set = attr::load_model_dirs(a->models, ctx, a->weights, a->device);
    Model& model = set.front();
    const DType dt = model.parameters().front().second.dtype();
    const bool binary = model.type() == "binary";
    // The VCF is streamed: a chunk of alleles is read, scored and written, then dropped (memory follows the chunk
    // and the page's top alleles, not the file).
    const attr::RegionFilter filter{a->regions, a->region};
    attr::VariantReader reader(a->vcf, a->genome, model.input_length(), a->cache_dir, filter);
    const attr::VariantSet& tot = reader.totals();  // FASTA, L and the counters so far
    attr::RegionWindows base;  // the control tracks' template: no rows
    base.fasta = tot.fasta, base.length = tot.length;
    bool controls = !a->controls.empty();
    for (const Model* m : set.const_models()) controls = controls || controls_mode(*m) != "none";
    std::error_code ec;
    const bool regular = fs::is_regular_file(a->vcf, ec);
    LP_CHECK(regular || !controls, a->vcf, ": not a regular file (a pipe?): a model with control tracks reads the VCF "
             "twice (first for the chromosomes its tracks are checked against); give a file");
    if (regular) {
      // A first pass through the VCF (fast next to scoring) finds any error in it before anything is scored, as when
      // the VCF was read whole, and (for models with control tracks) the chromosomes the scored windows touch, which
      // the tracks are checked against. A pipe is read once: an error in a record then stops the run there.
      attr::VariantReader first(a->vcf, a->genome, model.input_length(), a->cache_dir, filter);
      std::vector<bool> seen(static_cast<size_t>(tot.fasta->chrom_sizes().size()), false);
      std::vector<attr::Variant> buf;
      for (bool more = true; more;) {
        buf.clear();
        more = first.read(buf, a->chunk);
        for (const attr::Variant& v : buf)
          if (controls && !seen[static_cast<size_t>(v.chrom)])
            seen[static_cast<size_t>(v.chrom)] = true, base.chrom.push_back(v.chrom), base.start.push_back(0),
            base.line.push_back(0);
      }
    }
    attr::InputFiles in;  // each model's control tracks: its own training run's, or --controls
    in.regions = a->vcf, in.genome = a->genome, in.controls = control_files(a->controls);
    std::vector<attr::RegionWindows> tmpl = attr::windows_per_model(base, set.const_models(), a->models, in);
    for (auto& w : tmpl) w.chrom.clear(), w.start.clear(), w.line.clear();
    const int64_t T = model.tasks(), O = binary ? 0 : model.output_length();
    const int64_t S = model_strands(model);
    const std::string path = (fs::path(a->out) / "variant_scores.tsv").string(), tmp = path + ".tmp";
    StopOnSignal stop_on_signal;  // SIGINT/SIGTERM: stop between batches, removing the unfinished file
    std::ofstream f(tmp);
    LP_CHECK(f.good(), tmp, ": cannot write (", std::strerror(errno), ")");
    // The header, from the model alone (an empty VCF still gets one): per task (binary), per task and strand (profile).
    f << "chrom\tpos\tid\tref\talt\trecord";
    if (binary) {
      for (int64_t t = 0; t < T; ++t) {
        const std::string k = T > 1 ? "_t" + std::to_string(t) : "";
        f << "\tlogit_ref" << k << "\tlogit_alt" << k << "\tlogit_diff" << k;
      }
    } else {
      for (int64_t k = 0; k < T * S; ++k) {
        const std::string sfx = T * S > 1 ? "_t" + std::to_string(k / S) + "_s" + std::to_string(k % S) : "";
        f << "\tlog_counts_ref" << sfx << "\tlog_counts_alt" << sfx << "\tlogfc" << sfx << "\tjsd" << sfx
          << "\tjsd_aligned" << sfx;
      }
    }
    f << "\n" << std::setprecision(7);
    std::vector<double> aref, aalt;  // jsd_aligned's profiles, reused
    TopAlleles top(a->plot);
    // Progress in kB of the VCF read (compressed kB for bgzip and BCF); the total is unknown for a pipe.
    const int64_t kb_total = reader.file_size() > 0 ? (reader.file_size() + 999) / 1000 : 0;
    Progress bar("variants", kb_total, "kB", !a->quiet);
    int64_t kb_shown = 0;
    attr::VariantSet vs;  // the alleles read and not yet scored: a batch may span two chunks
    vs.fasta = tot.fasta, vs.length = tot.length;
    int64_t scored = 0;  // alleles scored before vs.alleles[0]
    try {
      for (bool more = true; more;) {
        more = reader.read(vs.alleles, std::max<int64_t>(1, a->chunk - vs.size()));
        // Whole batches only until the end of the file, so that the batches are those of a whole-file read.
        const int64_t m = more ? vs.size() / a->batch * a->batch : vs.size();
        const std::vector<attr::RegionWindows> rws = windows_of(tmpl, vs);
        for (int64_t s = 0; s < m; s += a->batch) {
          const int64_t n = std::min(a->batch, m - s);
          const AlleleRows rows = allele_rows(ctx, vs, rws, s, n, dt);
          const Predictions pr = predict_rows(set, rows.controls, rows.ref, !a->no_revcomp);
          const Predictions pa = predict_rows(set, rows.controls, rows.alt, !a->no_revcomp);
          for (int64_t i = 0; i < n; ++i) {
            const attr::Variant& v = vs.alleles[static_cast<size_t>(s + i)];
            f << vs.fasta->chrom_sizes().names[v.chrom] << '\t' << v.pos + 1 << '\t' << (v.id.empty() ? "." : v.id)
              << '\t' << v.ref << '\t' << v.alt << '\t' << v.record;
            double e = 0;  // the largest |logit_diff| or |logfc|, for the page's ranking
            if (binary) {
              for (int64_t t = 0; t < T; ++t) {
                const double r = pr.logits[i * T + t], x = pa.logits[i * T + t];
                f << '\t' << r << '\t' << x << '\t' << x - r;
                e = std::max(e, std::fabs(x - r));
              }
            } else {
              for (int64_t k = 0; k < T * S; ++k) {
                const double r = pr.log_counts[i * T * S + k], x = pa.log_counts[i * T * S + k];
                e = std::max(e, std::fabs(x - r));
                const auto row = [&](const Predictions& p) {
                  const auto b = p.probs.begin() + (i * T * S + k) * O;
                  return std::vector<double>(b, b + O);
                };
                const std::vector<double> pref = row(pr), palt = row(pa);
                attr::align_profiles(v, vs.length, pref.data(), palt.data(), O, aref, aalt);
                f << '\t' << r << '\t' << x << '\t' << x - r << '\t' << eval::jensen_shannon(pref, palt) << '\t'
                  << eval::jensen_shannon(aref, aalt);
              }
            }
            top.offer(e, scored + s + i, v);
            f << '\n';
          }
          LP_CHECK(f.good(), tmp, ": write failed (disk full?)");  // at once, not after every allele is scored
          const int64_t kb = reader.offset() / 1000;
          if (kb > kb_shown) bar.update(kb - kb_shown), kb_shown = kb;
          throw_if_interrupted();
        }
        vs.alleles.erase(vs.alleles.begin(), vs.alleles.begin() + m);
        scored += m;
      }
      f.close();
      LP_CHECK(f.good(), tmp, ": write failed (disk full?)");
      if (kb_total > kb_shown) bar.update(kb_total - kb_shown);  // the whole file was read
      bar.finish();
      if (tot.dropped_edge > 0) {
        std::cerr << "lowpass variants: " << tot.dropped_edge << " allele(s) dropped (their " << tot.length
                  << "-bp window runs off the chromosome): ";
        for (size_t i = 0; i < tot.dropped.size(); ++i) std::cerr << (i ? ", " : "") << tot.dropped[i];
        std::cerr << (tot.dropped_edge > static_cast<int64_t>(tot.dropped.size()) ? ", ..." : "") << "\n";
      }
      // The page before the TSV is renamed into place: a run that fails or is stopped leaves no complete-looking TSV.
      if (a->plot > 0 && scored > 0) {
        attr::VariantSet best;  // the top alleles, ranked, and their windows recomputed
        best.fasta = tot.fasta, best.length = tot.length;
        std::vector<double> effect;
        std::vector<int64_t> index;
        for (TopAlleles::Entry& t : top.ranked())
          best.alleles.push_back(std::move(t.v)), effect.push_back(t.effect), index.push_back(t.index);
        write_variant_page((fs::path(a->out) / "variants.html").string(), best, effect, index, scored, set,
                           windows_of(tmpl, best), !a->no_revcomp, ctx);
      } else {  // --plot 0 or nothing scored: an earlier run's page would describe other alleles
        fs::remove(fs::path(a->out) / "variants.html", ec);
      }
    } catch (...) {
      fs::remove(tmp, ec);
      throw;
    }
    fs::rename(tmp, path);
    std::cout << "wrote " << path << ": " << scored << " allele(s) of " << tot.records << " record(s)";
    if (!a->regions.empty() || !a->region.empty()) std::cout << "; " << tot.outside << " record(s) outside the regions";
    if (tot.no_alt) std::cout << "; " << tot.no_alt << " record(s) without ALT";
    if (tot.skipped) std::cout << "; " << tot.skipped << " non-sequence allele(s) skipped";
    if (tot.dropped_edge) std::cout << "; " << tot.dropped_edge << " dropped at chromosome ends";
    if (set.size() > 1) std::cout << "; mean of " << set.size() << " models";
    std::cout << (a->no_revcomp ? " (forward strand only)" : " (mean of both strands)") << "\n";
    if (a->plot > 0 && scored > 0)
      std::cout << "wrote " << (fs::path(a->out) / "variants.html").string() << " (the " << std::min(a->plot, scored)
                << " largest effects)\n";
    return 0;
  };
}

}  // namespace lowpass::tools
