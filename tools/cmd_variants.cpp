// `lowpass variants --model DIR --vcf V.vcf[.gz] --genome G.fa --out DIR`: the model's predictions for each ALT allele
// of a VCF against its REF, in windows centred on the variant (models/attr/variants.h), as OUT/variant_scores.tsv.
// Binary models: logit_ref, logit_alt, logit_diff (alt − ref) per task. Profile models, per task and strand:
// log_counts_ref, log_counts_alt, logfc (alt − ref, natural log) and jsd (Jensen–Shannon divergence, natural log,
// of the REF and ALT profiles softmax(profile logits)). By default each prediction is the mean of the window's and
// its reverse complement's (mapped back to the forward strand), as the trainer scores test sets; --no-revcomp uses
// the forward strand alone. Test: build/tests/lowpass_tests -ts=variants (library); python/tests/test_cli_variants.py (command).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>

#include "models/attr/genome_regions.h"
#include "models/attr/model_dir.h"
#include "models/attr/variants.h"
#include "models/eval/profile_metrics.h"
#include "models/train/progress.h"
#include "tools/cli_checks.h"
#include "tools/commands.h"
#include "tools/interrupt.h"

namespace lowpass::tools {

namespace {

struct Predictions {
  std::vector<double> logits;      // binary (n, T)
  std::vector<double> probs;       // profile (n, T, S, O): softmax over O
  std::vector<double> log_counts;  // profile (n, T, S)
};

// Eval-mode outputs of x (n, 4, L) with controls c; with `rc`, averaged with those of the reverse complement
// (position and base axes flipped; its profile flipped back along strands and positions, its counts along strands).
Predictions predict_rows(Model& m, const Tensor& x, const Tensor& c, bool rc, Device dev) {
  NoGradGuard ng;
  const Tensor xd = on_device(x, dev), cd = on_device(c, dev);
  ModelOutput o = m.forward(xd, cd, false);
  Predictions p;
  if (m.type() == "binary") {
    Tensor l = o.logits;
    if (rc) l = mul_scalar(add(l, m.forward(flip(xd, {1, 2}), Tensor(), false).logits), 0.5);
    p.logits = l.to_vector<double>();
    return p;
  }
  Tensor pl = o.profile_logits, lc = o.log_counts;
  if (rc) {
    ModelOutput r = m.forward(flip(xd, {1, 2}), cd.defined() ? flip(cd, {2, 3}) : Tensor(), false);
    pl = mul_scalar(add(pl, flip(r.profile_logits, {2, 3})), 0.5);
    lc = mul_scalar(add(lc, flip(r.log_counts, {2})), 0.5);
  }
  p.probs = softmax(pl, -1).to_vector<double>();
  p.log_counts = lc.to_vector<double>();
  return p;
}

}  // namespace

CommandRun add_variants_command(CLI::App& app) {
  struct Args {
    std::string model, vcf, genome, out, weights = "best", cache_dir, device = "cpu";
    std::vector<std::string> controls;
    int64_t batch = 64;
    int threads = 0;
    bool no_revcomp = false, quiet = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "variants", "Score the ALT alleles of a VCF against their REF (windows centred on each variant)");
  sub->add_option("--model", a->model, "Model directory (config.json + best/model.safetensors)")->required();
  sub->add_option("--vcf", a->vcf, "VCF or BCF (plain or bgzip) of the variants")->required();
  sub->add_option("--genome", a->genome, "Reference FASTA the VCF's REF alleles come from")->required();
  sub->add_option("--out", a->out, "Output directory (variant_scores.tsv)")->required();
  sub->add_option("--cache-dir", a->cache_dir, "Where to put the FASTA index when its folder is read-only");
  add_controls_option(sub, a->controls);
  sub->add_flag("--no-revcomp", a->no_revcomp, "Forward strand only (default: mean with the reverse complement)");
  sub->add_option("--batch", a->batch, "Variants per forward pass (REF and ALT each)")->check(integer_at_least(1));
  sub->add_option("--weights", a->weights,
                  "best | last | a .safetensors state_dict or a training checkpoint "
                  "(DIR/checkpoints/epoch_N.safetensors)")
      ->check(weights_choice());
  sub->add_option("--threads", a->threads, "CPU threads (0 = all)")->check(integer_at_least(0));
  sub->add_option("--device", a->device, "cpu | cuda | cuda:N (model and batches on that device)")
      ->check(device_name());
  sub->add_flag("--quiet", a->quiet, "No progress bar");
  return [a]() {
    namespace fs = std::filesystem;
    Context ctx(a->threads, 0);
    auto model = attr::load_model_dir(a->model, ctx, a->weights);
    const Device dev = attr::place_model(*model, a->device);
    const DType dt = model->parameters().front().second.dtype();
    const bool binary = model->type() == "binary";
    attr::VariantSet vs = attr::read_variants(a->vcf, a->genome, model->input_length(), a->cache_dir);
    attr::RegionWindows rw = attr::variant_windows(vs);
    attr::InputFiles in;
    in.regions = a->vcf, in.genome = a->genome, in.controls = a->controls, in.model_dir = a->model;
    attr::attach_controls(rw, *model, in);
    if (vs.dropped_edge > 0) {
      std::cerr << "lowpass variants: " << vs.dropped_edge << " allele(s) dropped (their " << vs.length
                << "-bp window runs off the chromosome): " << a->vcf << " record(s) ";
      for (size_t i = 0; i < vs.dropped_records.size(); ++i) std::cerr << (i ? ", " : "") << vs.dropped_records[i];
      std::cerr << (vs.dropped_edge > static_cast<int64_t>(vs.dropped_records.size()) ? ", ..." : "") << "\n";
    }
    const int64_t T = model->tasks(), O = binary ? 0 : model->output_length();
    fs::create_directories(a->out);
    const std::string path = (fs::path(a->out) / "variant_scores.tsv").string(), tmp = path + ".tmp";
    StopOnSignal stop_on_signal;  // SIGINT/SIGTERM: stop between batches, removing the unfinished file
    std::ofstream f(tmp);
    LP_CHECK(f.good(), tmp, ": cannot write");
    f << "chrom\tpos\tid\tref\talt";
    int64_t S = 0;  // profile strands, from the first batch's output
    Progress bar("variants", vs.size(), "allele", !a->quiet);
    try {
      for (int64_t s = 0; s < vs.size(); s += a->batch) {
        const int64_t n = std::min(a->batch, vs.size() - s);
        Tensor xr, xa;
        attr::variant_rows(ctx, vs, s, n, dt, xr, xa);
        const Tensor c = attr::region_control_rows(ctx, rw, s, n, dt);
        const Predictions pr = predict_rows(*model, xr, c, !a->no_revcomp, dev);
        const Predictions pa = predict_rows(*model, xa, c, !a->no_revcomp, dev);
        if (s == 0) {  // the header's score columns: per task (binary), per task and strand (profile)
          if (binary) {
            for (int64_t t = 0; t < T; ++t) {
              const std::string k = T > 1 ? "_t" + std::to_string(t) : "";
              f << "\tlogit_ref" << k << "\tlogit_alt" << k << "\tlogit_diff" << k;
            }
          } else {
            S = static_cast<int64_t>(pr.log_counts.size()) / (n * T);
            for (int64_t k = 0; k < T * S; ++k) {
              const std::string sfx = T * S > 1 ? "_t" + std::to_string(k / S) + "_s" + std::to_string(k % S) : "";
              f << "\tlog_counts_ref" << sfx << "\tlog_counts_alt" << sfx << "\tlogfc" << sfx << "\tjsd" << sfx;
            }
          }
          f << "\n" << std::setprecision(7);
        }
        for (int64_t i = 0; i < n; ++i) {
          const attr::Variant& v = vs.alleles[static_cast<size_t>(s + i)];
          f << vs.fasta->chrom_sizes().names[v.chrom] << '\t' << v.pos + 1 << '\t' << (v.id.empty() ? "." : v.id)
            << '\t' << v.ref << '\t' << v.alt;
          if (binary) {
            for (int64_t t = 0; t < T; ++t) {
              const double r = pr.logits[i * T + t], x = pa.logits[i * T + t];
              f << '\t' << r << '\t' << x << '\t' << x - r;
            }
          } else {
            for (int64_t k = 0; k < T * S; ++k) {
              const double r = pr.log_counts[i * T * S + k], x = pa.log_counts[i * T * S + k];
              const auto row = [&](const Predictions& p) {
                const auto b = p.probs.begin() + (i * T * S + k) * O;
                return std::vector<double>(b, b + O);
              };
              f << '\t' << r << '\t' << x << '\t' << x - r << '\t' << eval::jensen_shannon(row(pr), row(pa));
            }
          }
          f << '\n';
        }
        bar.update(n);
        throw_if_interrupted();
      }
      f.close();
      LP_CHECK(f.good(), tmp, ": write failed");
    } catch (...) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw;
    }
    bar.finish();
    fs::rename(tmp, path);
    std::cout << "wrote " << path << ": " << vs.size() << " allele(s) of " << vs.records << " record(s)";
    if (vs.skipped) std::cout << "; " << vs.skipped << " non-sequence ALT allele(s) skipped";
    if (vs.dropped_edge) std::cout << "; " << vs.dropped_edge << " dropped at chromosome ends";
    std::cout << (a->no_revcomp ? " (forward strand only)" : " (mean of both strands)") << "\n";
    return 0;
  };
}

}  // namespace lowpass::tools
