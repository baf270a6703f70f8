// Variant scoring inputs (`lowpass variants`): VCF records against a FASTA, REF/ALT windows centred on each variant
// (SNV, multi-allelic, insertion, deletion) decoded back to letters and compared with the genome spelled by hand,
// skipped and dropped alleles counted, bgzip VCF equal to plain, and the errors a wrong file gives.
// Run: build/tests/lowpass_tests -ts=variants
#include <htslib/vcf.h>

#include "models/attr/variants.h"
#include "tests/genome_fixtures.h"

namespace {
// A base other than g's (upper case), for an SNV's ALT.
char other(char g) {
  const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(g)));
  return u == 'A' ? 'C' : 'A';
}
const char* kHeader =
    "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=600>\n##contig=<ID=chr2,length=400>\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";
}  // namespace

TEST_SUITE("variants") {
TEST_CASE("variants: REF and ALT windows of SNVs, multi-allelic records, insertions and deletions") {
  TempDir d;
  Rng rng(21);
  Genome g = random_genome(rng, {{"chr1", 600}, {"chr2", 400}});
  for (auto& s : g.seq)  // plain letters where the variants sit, so that their REF reads back as written
    for (int64_t i = 180; i < 420 && i < static_cast<int64_t>(s.size()); ++i) s[i] = "ACGT"[rng.randint(0, 4)];
  write_text(d / "g.fa", fasta_text(g));
  const std::string& c1 = g.seq[0];
  const std::string& c2 = g.seq[1];
  const std::string snv_alt(1, other(c1[299])), ma1(1, other(c2[199]));
  const std::string ma2 = ma1 == "A" ? "G" : "T";
  const std::string vcf = std::string(kHeader) +
      "chr1\t300\trs1\t" + c1.substr(299, 1) + "\t" + snv_alt + "\t.\tPASS\t.\n" +            // SNV
      "chr2\t200\t.\t" + c2.substr(199, 1) + "\t" + ma1 + "," + ma2 + "\t.\t.\t.\n" +          // two ALT alleles
      "chr1\t350\tins\t" + c1.substr(349, 1) + "\t" + c1.substr(349, 1) + "AC\t.\t.\t.\n" +   // insertion
      "chr1\t400\tdel\t" + c1.substr(399, 3) + "\t" + c1.substr(399, 1) + "\t.\t.\t.\n" +     // deletion of 2
      "chr1\t250\tsv\t" + c1.substr(249, 1) + "\t<DEL>\t.\t.\t.\n" +                          // symbolic: skipped
      "chr2\t5\tedge\t" + c2.substr(4, 1) + "\tA\t.\t.\t.\n" +                                // window off chr2
      "chr1\t310\tnoalt\t" + c1.substr(309, 1) + "\t.\t.\t.\t.\n";                            // no ALT: ignored
  write_text(d / "v.vcf", vcf);
  const int64_t L = 101;
  attr::VariantSet v = attr::read_variants(d / "v.vcf", d / "g.fa", L, d / "cache");
  CHECK(v.records == 7);
  REQUIRE(v.size() == 5);
  CHECK(v.skipped == 1);
  CHECK(v.dropped_edge == 1);
  CHECK(v.dropped == std::vector<std::string>{"chr2:5"});
  CHECK((v.alleles[0].id == "rs1" && v.alleles[0].pos == 299 && v.alleles[0].alt == snv_alt));
  CHECK((v.alleles[1].id.empty() && v.alleles[1].alt == ma1 && v.alleles[2].alt == ma2 && v.alleles[2].record == 2));

  Context ctx(1, 0);
  Tensor ref, alt;
  attr::variant_rows(ctx, v, 0, v.size(), DType::F64, ref, alt);
  REQUIRE(ref.shape() == Shape{5, 4, L});
  auto rv = ref.to_vector<float>(), av = alt.to_vector<float>();
  auto window = [&](int64_t i) { return decode(rv.data() + i * 4 * L, L); };
  auto alt_window = [&](int64_t i) { return decode(av.data() + i * 4 * L, L); };
  const int64_t h = L / 2;  // the variant's index in its window
  // SNV: the genome's window, and the same with the ALT base at the centre.
  CHECK(window(0) == norm(c1.substr(299 - h, L)));
  std::string want = norm(c1.substr(299 - h, L));
  want[h] = snv_alt[0];
  CHECK(alt_window(0) == want);
  // Each ALT allele of a multi-allelic record gets its own row.
  want = norm(c2.substr(199 - h, L));
  want[h] = ma2[0];
  CHECK(alt_window(2) == want);
  // Insertion: the bases before, the allele, then the genome after the REF base, cut to L.
  CHECK(alt_window(3) == norm((c1.substr(349 - h, h) + c1.substr(349, 1) + "AC" + c1.substr(350)).substr(0, L)));
  // Deletion: the genome after the 3-base REF pulls two more bases into the window.
  CHECK(alt_window(4) == norm((c1.substr(399 - h, h) + c1.substr(399, 1) + c1.substr(402)).substr(0, L)));
  CHECK(window(4) == norm(c1.substr(399 - h, L)));

  attr::RegionWindows rw = attr::variant_windows(v);
  CHECK((rw.size() == 5 && rw.chrom[1] == 1 && rw.start[1] == 199 - h && rw.line[3] == 3));

  // Streamed a few alleles at a time (`lowpass variants`): the same alleles in the same order, the same counters;
  // a record's ALT alleles are never split between chunks.
  for (int64_t chunk : {1, 2, 3, 100}) {
    attr::VariantReader rd(d / "v.vcf", d / "g.fa", L, d / "cache");
    std::vector<attr::Variant> all, part;
    std::vector<int64_t> sizes;
    for (bool more = true; more;) {
      part.clear();
      more = rd.read(part, chunk);
      sizes.push_back(static_cast<int64_t>(part.size()));
      all.insert(all.end(), part.begin(), part.end());
    }
    CAPTURE(chunk);
    REQUIRE(all.size() == v.alleles.size());
    for (size_t i = 0; i < all.size(); ++i)
      CHECK((all[i].record == v.alleles[i].record && all[i].pos == v.alleles[i].pos && all[i].alt == v.alleles[i].alt &&
             all[i].id == v.alleles[i].id));
    CHECK(rd.alleles_read() == v.size());
    CHECK((rd.totals().records == v.records && rd.totals().skipped == v.skipped &&
           rd.totals().dropped_edge == v.dropped_edge && rd.totals().dropped == v.dropped && rd.totals().alleles.empty()));
    if (chunk == 1) CHECK(sizes == std::vector<int64_t>{1, 2, 1, 1, 0});  // record 2's two ALT alleles together
    CHECK(rd.offset() == static_cast<int64_t>(fs::file_size(d / "v.vcf")));
    CHECK(rd.file_size() == static_cast<int64_t>(fs::file_size(d / "v.vcf")));
    CHECK(!rd.read(part, chunk));
  }

  // A bgzip-compressed VCF reads the same.
  write_bgzf(d / "v.vcf.gz", vcf);
  attr::VariantSet z = attr::read_variants(d / "v.vcf.gz", d / "g.fa", L, d / "cache");
  REQUIRE(z.size() == v.size());
  for (int64_t i = 0; i < z.size(); ++i)
    CHECK((z.alleles[i].pos == v.alleles[i].pos && z.alleles[i].alt == v.alleles[i].alt));
  {  // BCF: the same records written by htslib read the same
    htsFile* in = hts_open((d / "v.vcf").c_str(), "r");
    bcf_hdr_t* h = bcf_hdr_read(in);
    htsFile* out = hts_open((d / "v.bcf").c_str(), "wb");
    REQUIRE(bcf_hdr_write(out, h) == 0);
    bcf1_t* rec = bcf_init();
    while (bcf_read(in, h, rec) == 0) REQUIRE(bcf_write(out, h, rec) == 0);
    bcf_destroy(rec);
    bcf_hdr_destroy(h);
    hts_close(in);
    hts_close(out);
  }
  attr::VariantSet b = attr::read_variants(d / "v.bcf", d / "g.fa", L, d / "cache");
  REQUIRE(b.size() == v.size());
  for (int64_t i = 0; i < b.size(); ++i)
    CHECK((b.alleles[i].pos == v.alleles[i].pos && b.alleles[i].ref == v.alleles[i].ref &&
           b.alleles[i].alt == v.alleles[i].alt && b.alleles[i].record == v.alleles[i].record));
  // Without its 28-byte end-of-file block the file would read as complete: refused as truncated.
  fs::resize_file(d / "v.vcf.gz", fs::file_size(d / "v.vcf.gz") - 28);
  expect_error([&] { attr::read_variants(d / "v.vcf.gz", d / "g.fa", L, d / "cache"); },
               {"v.vcf.gz: the bgzip end-of-file block is missing"});
}

TEST_CASE("variants: a REF the genome does not have, an unknown chromosome, a non-VCF and nothing to score") {
  TempDir d;
  Rng rng(22);
  Genome g = random_genome(rng, {{"chr1", 600}, {"chr2", 400}});
  for (int64_t i = 180; i < 420; ++i) g.seq[0][i] = "ACGT"[rng.randint(0, 4)];
  write_text(d / "g.fa", fasta_text(g));
  const char wrong = other(g.seq[0][299]);
  write_text(d / "ref.vcf", std::string(kHeader) + "chr1\t300\t.\t" + std::string(1, wrong) + "\tT\t.\t.\t.\n");
  expect_error([&] { attr::read_variants(d / "ref.vcf", d / "g.fa", 101, d / "cache"); },
               {"ref.vcf: record 1 (chr1:300)", "REF '", "but the genome has", "another genome build"});
  write_text(d / "chrom.vcf", std::string(kHeader) + "1\t300\t.\tA\tT\t.\t.\t.\n");
  expect_error([&] { attr::read_variants(d / "chrom.vcf", d / "g.fa", 101, d / "cache"); },
               {"chrom.vcf: record 1 (1:300)", "chromosome '1' is not in", "g.fa; did you mean 'chr1'?"});
  expect_error([&] { attr::read_variants(d / "g.fa", d / "g.fa", 101, d / "cache"); }, {"g.fa: not a VCF"});
  // Nothing to score is an empty set, not an error (a header-only shard of a split VCF); undeclared INFO/FORMAT
  // tags are accepted (lowpass reads neither).
  write_text(d / "sv.vcf", std::string(kHeader) + "chr1\t300\t.\t" + g.seq[0].substr(299, 1) + "\t<INS>\t.\t.\t.\n");
  attr::VariantSet sv = attr::read_variants(d / "sv.vcf", d / "g.fa", 101, d / "cache");
  CHECK((sv.size() == 0 && sv.records == 1 && sv.skipped == 1));
  write_text(d / "tags.vcf", std::string(kHeader).substr(0, std::string(kHeader).size() - 1) + "\tFORMAT\ts1\n" +
                                 "chr1\t300\t.\t" + g.seq[0].substr(299, 1) + "\tA,C\t.\t.\tDP=3;FOO\tGT\t0/1\n");
  CHECK(attr::read_variants(d / "tags.vcf", d / "g.fa", 101, d / "cache").size() == 2);
  write_text(d / "spaces.vcf", std::string(kHeader) + "chr1 300 . A C . . .\n");
  expect_error([&] { attr::read_variants(d / "spaces.vcf", d / "g.fa", 101, d / "cache"); },
               {"spaces.vcf: record 1", "separated by tabs"});
  write_text(d / "bad.vcf", std::string(kHeader) + "chr1\tx300\t.\tA\tT\t.\t.\t.\n");
  expect_error([&] { attr::read_variants(d / "bad.vcf", d / "g.fa", 101, d / "cache"); },
               {"bad.vcf: record 1 (chr1): POS is missing"});
  expect_error([&] { attr::read_variants(d / "none.vcf", d / "g.fa", 101, d / "cache"); }, {"none.vcf: cannot open"});
  // A plain file cut inside its last line (the ALT 'AT' of 'ATTG') is refused; a blank line is skipped; a line
  // without REF is an error naming the record.
  const std::string ok = "chr1\t300\t.\t" + g.seq[0].substr(299, 1) + "\tC\t.\t.\t.\n";
  write_text(d / "cut.vcf", std::string(kHeader) + ok + "chr1\t310\t.\t" + g.seq[0].substr(309, 1) + "\tAT");
  expect_error([&] { attr::read_variants(d / "cut.vcf", d / "g.fa", 101, d / "cache"); },
               {"cut.vcf: the last line does not end in a newline"});
  write_text(d / "blank.vcf", std::string(kHeader) + ok + "\n" + ok);
  attr::VariantSet b = attr::read_variants(d / "blank.vcf", d / "g.fa", 101, d / "cache");
  CHECK((b.size() == 2 && b.records == 2 && b.alleles[1].record == 2));
  write_text(d / "noref.vcf", std::string(kHeader) + ok + "chr1\t300\n");
  expect_error([&] { attr::read_variants(d / "noref.vcf", d / "g.fa", 101, d / "cache"); },
               {"noref.vcf: record 2 (chr1): no REF column"});
}

TEST_CASE("variants: --regions/--region keep the records whose REF overlaps them, in file order with their numbers") {
  TempDir d;
  Rng rng(23);
  Genome g = random_genome(rng, {{"chr1", 600}, {"chr2", 400}});
  for (auto& s : g.seq)
    for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) s[i] = "ACGT"[rng.randint(0, 4)];
  write_text(d / "g.fa", fasta_text(g));
  // Records 1..6: chr1:200 (SNV), chr1:250 (deletion of bases 251-253), chr1:300 (no ALT), chr2:200, chr2:201, chr1:400.
  const std::string& a = g.seq[0];
  const std::string& b = g.seq[1];
  auto snv = [](const std::string& s, int64_t p) { return std::string(1, s[p - 1]) + "\t" + std::string(1, other(s[p - 1])); };
  write_text(d / "v.vcf", std::string(kHeader) + "chr1\t200\t.\t" + snv(a, 200) + "\t.\t.\t.\n" +
                              "chr1\t250\t.\t" + a.substr(249, 4) + "\t" + a.substr(249, 1) + "\t.\t.\t.\n" +
                              "chr1\t300\t.\t" + a.substr(299, 1) + "\t.\t.\t.\t.\n" +
                              "chr2\t200\t.\t" + snv(b, 200) + "\t.\t.\t.\n" + "chr2\t201\t.\t" + snv(b, 201) +
                              "\t.\t.\t.\n" + "chr1\t400\t.\t" + snv(a, 400) + "\t.\t.\t.\n");
  auto records = [&](const attr::RegionFilter& f) {
    const attr::VariantSet v = attr::read_variants(d / "v.vcf", d / "g.fa", 101, d / "cache", f);
    std::vector<int64_t> r;
    for (const auto& x : v.alleles) r.push_back(x.record);
    CHECK(v.records == 6);
    CHECK(v.outside + v.no_alt + static_cast<int64_t>(r.size()) == 6);
    return r;
  };
  CHECK(records({}) == std::vector<int64_t>{1, 2, 4, 5, 6});
  // 1-based inclusive: chr1:253 is the deletion's last REF base; chr2:201 alone; chr1 whole.
  CHECK(records({"", {"chr1:253"}}) == std::vector<int64_t>{2});
  CHECK(records({"", {"chr1:254-399"}}).empty());
  CHECK(records({"", {"chr2:201", "chr1:590-1,000"}}) == std::vector<int64_t>{5});  // an end past the chromosome is cut
  CHECK(records({"", {"chr2"}}) == std::vector<int64_t>{4, 5});
  // BED, 0-based half-open: [199, 200) is chr1:200; [200, 399) touches nothing but the deletion (bases 250..253).
  write_text(d / "r.bed", "chr1\t199\t200\nchr1\t200\t399\n");
  CHECK(records({d / "r.bed", {}}) == std::vector<int64_t>{1, 2});
  CHECK(records({d / "r.bed", {"chr2:200"}}) == std::vector<int64_t>{1, 2, 4});
  // Errors name the region or the BED line.
  expect_error([&] { records({"", {"1:5-10"}}); }, {"--region 1:5-10", "chromosome '1' is not in", "did you mean 'chr1'"});
  expect_error([&] { records({"", {"chr1:10-5"}}); }, {"--region chr1:10-5", "1 <= start <= end"});
  expect_error([&] { records({"", {"chr1:ten"}}); }, {"--region chr1:ten", "whole number"});
  expect_error([&] { records({"", {"chr1:601"}}); }, {"--region chr1:601", "starts past the end of chr1 (600 bp"});
  write_text(d / "bad.bed", "chr1\t5\n");
  expect_error([&] { records({d / "bad.bed", {}}); }, {"bad.bed:1", "at least 3 columns"});
}

TEST_CASE("variants: REF and ALT profiles on the positions they share (deletion, insertion, SNV)") {
  // L 12, O 8: the output window starts at input base 2, the variant's first REF base is output position 4.
  std::vector<double> ref(8), alt(8);
  for (int i = 0; i < 8; ++i) ref[static_cast<size_t>(i)] = (10 + i) / 100.0, alt[static_cast<size_t>(i)] = (i + 1) / 36.0;
  const auto check = [&](const char* r, const char* a, std::vector<int> rq, std::vector<int> aj) {
    INFO(r, " > ", a);
    attr::Variant v;
    v.ref = r, v.alt = a;
    std::vector<double> ro, ao;
    attr::align_profiles(v, 12, ref.data(), alt.data(), 8, ro, ao);
    REQUIRE(ro.size() == rq.size());
    REQUIRE(ao.size() == aj.size());
    double sr = 0, sa = 0;
    for (int q : rq) sr += ref[static_cast<size_t>(q)];
    for (int j : aj) sa += alt[static_cast<size_t>(j)];
    for (size_t i = 0; i < rq.size(); ++i) {
      CHECK(ro[i] == doctest::Approx(ref[static_cast<size_t>(rq[i])] / sr).epsilon(1e-12));
      CHECK(ao[i] == doctest::Approx(alt[static_cast<size_t>(aj[i])] / sa).epsilon(1e-12));
    }
  };
  // Deletion of CG: REF 5 and 6 have no partner; REF 7 pairs with ALT 5; ALT 6 and 7 pair with REF 8, 9 (outside).
  check("ACG", "A", {0, 1, 2, 3, 4, 7}, {0, 1, 2, 3, 4, 5});
  // Insertion of GG: ALT 5 and 6 are left out; REF 5 pairs with ALT 7; REF 6 and 7 with ALT 8, 9 (outside).
  check("A", "AGG", {0, 1, 2, 3, 4, 5}, {0, 1, 2, 3, 4, 7});
  check("A", "G", {0, 1, 2, 3, 4, 5, 6, 7}, {0, 1, 2, 3, 4, 5, 6, 7});  // an SNV: all of both
  check("AC", "GT", {0, 1, 2, 3, 4, 5, 6, 7}, {0, 1, 2, 3, 4, 5, 6, 7});
  // 2 bases for 3: the first two pair up, ALT's third is left out, REF 6 pairs with ALT 7.
  check("AC", "GTT", {0, 1, 2, 3, 4, 5, 6}, {0, 1, 2, 3, 4, 5, 7});
  // Untrimmed alleles pair as their shortest form (a multi-allelic record's CAT>C,CT gives CAT>CT = CA>C): REF 5 has
  // no partner, REF 6 and 7 pair with ALT 5 and 6.
  check("CAT", "CT", {0, 1, 2, 3, 4, 6, 7}, {0, 1, 2, 3, 4, 5, 6});
  check("CA", "C", {0, 1, 2, 3, 4, 6, 7}, {0, 1, 2, 3, 4, 5, 6});
  // One C of a CC run deleted, written two ways: the common suffix goes first (the run's first C is the one removed).
  check("CCG", "CG", {0, 1, 2, 3, 5, 6, 7}, {0, 1, 2, 3, 4, 5, 6});
  check("CC", "C", {0, 1, 2, 3, 5, 6, 7}, {0, 1, 2, 3, 4, 5, 6});
}
}
