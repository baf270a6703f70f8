// Reliability: every user-facing parser refuses malformed, truncated and huge-size inputs with a
// lowpass::Error naming the file and the line/field (one table of bad inputs, listed in docs/reliability.md).
// Run: build/tests/lowpass_tests -ts=reliability  (LOWPASS_RELIABILITY_TABLE=out.md writes the message table)
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <random>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include "engine/checkpoint.h"
#include "engine/npz.h"
#include "engine/safetensors.h"
#include "models/data/array_dataset.h"
#include "models/data/meme.h"
#include "models/data/simulate.h"
#include "models/train/config.h"
#include "tests/genome_fixtures.h"

using namespace genome_test;

namespace {

// One bad input: which parser, what is wrong, how to run it, and fragments its message must contain.
struct BadInput {
  std::string parser, input;
  std::function<void()> run;
  std::vector<std::string> expect;
};

void write_bytes(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }
std::vector<uint8_t> le64(uint64_t v) {
  std::vector<uint8_t> b(8);
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
  return b;
}
// A safetensors image with the given header JSON (padded to 8) and data bytes.
std::vector<uint8_t> st_image(std::string header, size_t data_bytes) {
  while (header.size() % 8) header += ' ';
  auto b = le64(header.size());
  b.insert(b.end(), header.begin(), header.end());
  b.resize(b.size() + data_bytes, 0);
  return b;
}
// An npy image with the given header dict text and payload size.
std::vector<uint8_t> npy_image(std::string dict, size_t payload) {
  std::string h = dict;
  while ((10 + h.size() + 1) % 64) h += ' ';
  h += '\n';
  std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<uint8_t>(h.size() & 0xff),
                            static_cast<uint8_t>(h.size() >> 8)};
  b.insert(b.end(), h.begin(), h.end());
  b.resize(b.size() + payload, 0);
  return b;
}

// Runs every case: each must throw lowpass::Error (nothing else) containing every fragment.
void run_table(const std::vector<BadInput>& table, std::vector<std::array<std::string, 3>>& rows) {
  for (const auto& c : table) {
    CAPTURE(c.parser);
    CAPTURE(c.input);
    std::string msg;
    try {
      c.run();
      FAIL("no error for bad input: ", c.parser, " / ", c.input);
    } catch (const Error& e) {
      msg = e.what();
    } catch (const std::exception& e) {
      FAIL("not a lowpass::Error (", typeid(e).name(), "): ", e.what());
    }
    for (const auto& f : c.expect)
      CHECK_MESSAGE(msg.find(f) != std::string::npos, "message '", msg, "' lacks '", f, "'");
    rows.push_back({c.parser, c.input, msg});
  }
}

void maybe_write_table(const std::vector<std::array<std::string, 3>>& rows, const std::string& dir) {
  const char* out = std::getenv("LOWPASS_RELIABILITY_TABLE");
  if (!out) return;
  std::ofstream f(out, std::ios::app);
  for (auto r : rows) {
    // temp folder names vary per run: show them as $TMP
    for (size_t p; (p = r[2].find(dir)) != std::string::npos;) r[2].replace(p, dir.size(), "$TMP");
    for (auto& ch : r[2]) ch = ch == '\n' ? ' ' : ch;  // one table row per message
    for (size_t p; (p = r[2].find("  ")) != std::string::npos;) r[2].erase(p, 1);
    for (auto& s : r)
      for (size_t p = 0; (p = s.find('|', p)) != std::string::npos; p += 2) s.replace(p, 1, "\\|");
    f << "| " << r[0] << " | " << r[1] << " | `" << r[2] << "` |\n";
  }
}

}  // namespace

TEST_SUITE("reliability") {
// A valid two-chromosome bigWig cut to `keep` bytes (-1: half its size); returns its path.
std::string truncated_bigwig(const std::string& path, int64_t keep) {
  ChromSizes cs;
  cs.add("chr1", 5000);
  cs.add("chr2", 800);
  std::vector<std::vector<float>> v{std::vector<float>(5000, 0.0f), std::vector<float>(800, 1.5f)};
  for (size_t i = 0; i < 5000; ++i) v[0][i] = float(i % 13);
  write_bigwig(path, cs, v);
  const auto size = static_cast<int64_t>(fs::file_size(path));
  fs::resize_file(path, static_cast<uintmax_t>(keep < 0 ? size / 2 : keep));
  return path;
}

TEST_CASE("bad genome inputs: FASTA, region requests, BED/narrowPeak, folds, bigWig") {
  TempDir d;
  ChromSizes cs;
  cs.add("chr1", 100);
  cs.add("chr2", 50);
  write_text(d / "g.fa", ">chr1\n" + std::string(100, 'A') + "\n>chr2\n" + std::string(50, 'C') + "\n");
  Fasta fa(d / "g.fa");
  auto bed = [&](const std::string& name, const std::string& text, BedFormat fmt = BedFormat::Auto,
                 bool sorted = false) {
    return [&, name, text, fmt, sorted] {
      write_text(d / name, text);
      BedOptions o;
      o.sizes = &cs;
      o.format = fmt;
      o.require_sorted = sorted;
      read_bed(d / name, o);
    };
  };
  auto records = [&](const std::string& name, const std::string& text) {
    return [&, name, text] {
      write_text(d / name, text);
      read_fasta_records(d / name);
    };
  };
  auto folds = [&](const std::string& name, const std::string& text) {
    return [&, name, text] {
      write_text(d / name, text);
      check_folds(read_folds(d / name), cs, d / name);
    };
  };
  std::vector<BadInput> t = {
      {"FASTA", "missing file", [&] { Fasta f(d / "none.fa"); }, {"none.fa", "not found"}},
      {"FASTA", "a directory", [&] { Fasta f(d.path); }, {"directory"}},
      {"FASTA", "lines of bytes that are not letters (faidx would divide by 0 bases per line)", [&] {
         write_text(d / "bytes.fa", ">a\n\xb5\xbc\n\xff\xff\nG=\n");  // found by fuzz_fasta
         Fasta f(d / "bytes.fa", d / "cache");
       }, {"bytes.fa:2", "0xB5", "not a sequence letter"}},
      {"FASTA", "an index beside it with 0 bases per line", [&] {
         write_text(d / "fai0.fa", ">a\nACGT\n");
         write_text(d / "fai0.fa.fai", "a\t4\t3\t0\t5\n");  // written after the FASTA: taken as current
         Fasta f(d / "fai0.fa", d / "cache");
       }, {"fai0.fa.fai", "line 1", "record 'a'", "delete the index"}},
      {"FASTA", "ragged line lengths (faidx)", [&] {
         write_text(d / "ragged.fa", ">a\nACGTACGT\nACG\nACGTACGT\n");
         Fasta f(d / "ragged.fa", d / "cache");
       }, {"ragged.fa:4", "line 3"}},
      {"FASTA", "genome with a duplicate name (htslib would keep the first record)", [&] {
         write_text(d / "dupg.fa", ">a\nACGT\n>a\nACGT\n");
         Fasta f(d / "dupg.fa", d / "cache");
       }, {"dupg.fa:3", "duplicate sequence name 'a'"}},
      {"FASTA", "genome with a space inside a line (htslib would shift the later bases)", [&] {
         write_text(d / "spaceg.fa", ">a\nACGTACGT\nACG TACGT\nACGT\n");
         Fasta f(d / "spaceg.fa", d / "cache");
       }, {"spaceg.fa:3", "0x20", "not a sequence letter"}},
      {"FASTA", "genome record without bases", [&] {
         write_text(d / "emptyg.fa", ">a\nACGT\n>b\n>c\nACGT\n");
         Fasta f(d / "emptyg.fa", d / "cache");
       }, {"emptyg.fa:3", "'b' has no bases"}},
      {"FASTA", "a UCSC .2bit genome", [&] {
         write_text(d / "g.2bit", std::string("\x43\x27\x41\x1a\0\0\0\0", 8));
         Fasta f(d / "g.2bit", d / "cache");
       }, {"g.2bit", ".2bit file", "twoBitToFa"}},
      {"FASTA", "bgzip without its end-of-file block (cut at a block boundary: htslib reads a shorter genome)", [&] {
         write_bgzf(d / "cut.fa.gz", ">a\nACGT\n");
         fs::resize_file(d / "cut.fa.gz", fs::file_size(d / "cut.fa.gz") - 28);
         Fasta f(d / "cut.fa.gz", d / "cache");
       }, {"cut.fa.gz", "end-of-file block is missing"}},
      {"FASTA", "no '>' header", records("nohdr.fa", "ACGT\n"), {"nohdr.fa:1", "before the first '>'"}},
      {"FASTA", "empty name", records("noname.fa", ">\nACGT\n"), {"noname.fa:1", "empty sequence name"}},
      {"FASTA", "record without sequence", records("empty.fa", ">a\n>b\nAC\n"), {"empty.fa:1", "'a'"}},
      {"FASTA", "digit in sequence", records("digit.fa", ">a\nAC1T\n"), {"digit.fa:2"}},
      {"FASTA", "empty file", records("zero.fa", ""), {"zero.fa", "no records"}},
      {"region", "unknown chromosome", [&] { fa.fetch("1", 0, 10, "peaks.bed:7"); }, {"peaks.bed:7", "'1'", "chr1"}},
      {"region", "start > end", [&] { fa.fetch("chr1", 20, 10, "peaks.bed:8"); }, {"peaks.bed:8", "chr1:20-10"}},
      {"region", "negative start", [&] { fa.fetch("chr1", -5, 10, "peaks.bed:9"); }, {"peaks.bed:9", "-5"}},
      {"region", "end past the chromosome", [&] { fa.fetch("chr2", 0, 51, "peaks.bed:10"); }, {"peaks.bed:10", "51"}},
      {"region", "huge region (2^62 bases)", [&] { fa.fetch("chr1", 0, int64_t(1) << 62, "regions.bed:3"); }, {"4611686018427387904"}},
      {"BED", "missing file", [&] { read_bed(d / "none.bed"); }, {"none.bed", "not found"}},
      {"BED", "2 columns", bed("c2.bed", "chr1\t5\n"), {"c2.bed:1", "at least 3 columns"}},
      {"BED", "non-integer start", bed("ni.bed", "chr1\t5x\t9\n"), {"ni.bed:1", "column 2"}},
      {"BED", "integer overflow", bed("ovf.bed", "chr1\t0\t99999999999999999999999\n"), {"ovf.bed:1", "column 3"}},
      {"BED", "negative start", bed("neg.bed", "chr1\t-1\t9\n"), {"neg.bed:1", "negative"}},
      {"BED", "start >= end", bed("rev.bed", "# c\nchr1\t9\t9\n"), {"rev.bed:2", "start 9 >= end 9"}},
      {"BED", "unknown chromosome", bed("chr.bed", "1\t0\t9\n"), {"chr.bed:1", "'1'", "chr1"}},
      {"BED", "end past chromosome end", bed("end.bed", "chr2\t0\t51\n"), {"end.bed:1", "length 50"}},
      {"BED", "narrowPeak with 9 columns", bed("np9.bed", "chr1\t0\t9\t.\t0\t.\t1\t1\t1\n", BedFormat::NarrowPeak),
       {"np9.bed:1", "10 columns"}},
      {"BED", "non-numeric signalValue", bed("sig.bed", "chr1\t0\t9\t.\t0\t.\tx\t1\t1\t2\n"), {"sig.bed:1", "column 7"}},
      {"BED", "summit outside the peak", bed("sum.bed", "chr1\t0\t9\t.\t0\t.\t1\t1\t1\t9\n"), {"sum.bed:1", "summit offset 9"}},
      {"BED", "unsorted (when required)", bed("uns.bed", "chr1\t5\t9\nchr1\t1\t3\n", BedFormat::Bed, true),
       {"uns.bed:2", "not sorted"}},
      {"BED", "no records", bed("blank.bed", "track x\n\n"), {"blank.bed", "no records"}},
      {"BED", "bgzip without its end-of-file block (cut at a block boundary: htslib reads fewer peaks)", [&] {
         write_bgzf(d / "cut.bed.gz", "chr1\t0\t9\n");
         fs::resize_file(d / "cut.bed.gz", fs::file_size(d / "cut.bed.gz") - 28);
         read_bed(d / "cut.bed.gz");
       }, {"cut.bed.gz", "end-of-file block is missing"}},
      {"folds", "missing file", [&] { read_folds(d / "none.json"); }, {"none.json", "not found"}},
      {"folds", "not JSON", folds("bad.json", "{\"train\": [\"chr1\""), {"bad.json", "not valid JSON"}},
      {"folds", "not an object", folds("arr.json", "[1]"), {"arr.json", "expected an object"}},
      {"folds", "missing \"test\"", folds("nt.json", "{\"train\": [\"chr1\"]}"), {"nt.json", "\"test\""}},
      {"folds", "list is a string", folds("str.json", "{\"train\": \"chr1\", \"test\": []}"), {"str.json", "\"train\""}},
      {"folds", "non-string entry", folds("num.json", "{\"train\": [1], \"test\": []}"), {"num.json", "\"train\"[0]"}},
      {"folds", "chromosome in two splits", folds("dup.json", "{\"train\": [\"chr1\"], \"test\": [\"chr1\"]}"),
       {"dup.json", "'chr1'", "both"}},
      {"folds", "chromosome not in the FASTA", folds("nf.json", "{\"train\": [\"1\"], \"test\": []}"), {"nf.json", "'1'", "chr1"}},
      {"bigWig", "missing file", [&] { BigWig b(d / "none.bw"); }, {"none.bw"}},
      {"bigWig", "not a bigWig", [&] { write_text(d / "text.bw", "hello\n"); BigWig b(d / "text.bw"); }, {"text.bw"}},
      // Truncated downloads: libBigWig itself would read past its buffers (found by fuzz_bigwig).
      {"bigWig", "truncated inside the header area", [&] { BigWig b(truncated_bigwig(d / "t91.bw", 91)); },
       {"t91.bw", "past the end of the file", "truncated"}},
      {"bigWig", "truncated to half", [&] { BigWig b(truncated_bigwig(d / "half.bw", -1)); },
       {"half.bw", "past the end of the file"}},
      {"bigWig", "a needed chromosome under another name (MT for chrM; an absent one reads as zeros)", [&] {
         ChromSizes ens, ucsc;
         ens.add("chr1", 100), ens.add("MT", 50);
         ucsc.add("chr1", 100), ucsc.add("chrM", 50);
         write_bigwig(d / "mt.bw", ens, {std::vector<float>(100, 1.0f), std::vector<float>(50, 2.0f)});
         BigWig b(d / "mt.bw");
         b.check_against(ucsc, ucsc.names);
       }, {"mt.bw", "'chrM'", "did you mean 'MT'"}},
  };
  std::vector<std::array<std::string, 3>> rows;
  run_table(t, rows);
  maybe_write_table(rows, d.path);
}

TEST_CASE("bad model-layer inputs: JSON config, MEME motifs") {
  TempDir d;
  auto config = [&](const std::string& name, const std::string& text) {
    return [&, name, text] {
      write_text(d / name, text);
      load_config(d / name);
    };
  };
  auto meme = [&](const std::string& name, const std::string& text) {
    return [&, name, text] {
      write_text(d / name, text);
      read_meme(d / name);
    };
  };
  const std::string mhead = "MEME version 4\n\nALPHABET= ACGT\n\nMOTIF m1 Name\n";
  std::vector<BadInput> t = {
      {"config", "missing file", [&] { load_config(d / "none.json"); }, {"none.json", "cannot open"}},
      {"config", "not JSON", config("bad.json", "{\"train\": {"), {"bad.json", "not valid JSON"}},
      {"config", "not an object", config("arr.json", "[]"), {"arr.json", "JSON object"}},
      {"config", "unknown section", config("sec.json", "{\"trian\": {}}"), {"sec.json", "'trian'"}},
      {"config", "unknown key", config("key.json", "{\"train\": {\"bach_size\": 3}}"), {"key.json", "bach_size"}},
      {"config", "wrong type", config("ty.json", "{\"data\": {\"train\": \"t.npz\"}, \"train\": {\"batch_size\": \"big\"}}"), {"ty.json", "train.batch_size"}},
      {"config", "batch_size 0", config("b0.json", "{\"data\": {\"train\": \"t.npz\"}, \"train\": {\"batch_size\": 0}}"), {"b0.json", "train.batch_size", ">= 1"}},
      {"config", "batch_size 1e30 (not an int64)", config("b30.json", "{\"data\": {\"train\": \"t.npz\"}, \"train\": {\"batch_size\": 1e30}}"),
       {"b30.json", "train.batch_size"}},
      {"config", "negative lr", config("lr.json", "{\"data\": {\"train\": \"t.npz\"}, \"train\": {\"lr\": -1}}"), {"lr.json", "train.lr"}},
      {"config", "bad model type", config("mt.json", "{\"model\": {\"type\": \"cnn\"}}"), {"mt.json", "model.type"}},
      {"config", "unknown model key", config("mk.json", "{\"model\": {\"type\": \"binary\", \"widht\": 3}}"), {"widht"}},
      {"MEME", "missing file", [&] { read_meme(d / "none.meme"); }, {"none.meme", "cannot open"}},
      {"MEME", "no 'MEME version'", meme("nv.meme", "MOTIF a\n"), {"nv.meme", "not a MEME file"}},
      {"MEME", "RNA alphabet", meme("rna.meme", "MEME version 4\nALPHABET= ACGU\n"), {"rna.meme:2", "ACGT"}},
      {"MEME", "matrix before MOTIF", meme("mb.meme", "MEME version 4\nletter-probability matrix: w= 1\n1 0 0 0\n"),
       {"mb.meme:2", "before any MOTIF"}},
      {"MEME", "alength 5", meme("al.meme", mhead + "letter-probability matrix: alength= 5 w= 1\n"), {"al.meme:6", "alength"}},
      {"MEME", "3 columns", meme("c3.meme", mhead + "letter-probability matrix: w= 1\n0.5 0.5 0\n"), {"c3.meme:7", "4 probabilities"}},
      {"MEME", "5 columns", meme("c5.meme", mhead + "letter-probability matrix: w= 1\n0.5 0.5 0 0 0\n"), {"c5.meme:7", "more than 4"}},
      {"MEME", "negative probability", meme("ng.meme", mhead + "letter-probability matrix: w= 1\n1.5 -0.5 0 0\n"),
       {"ng.meme:7", "negative"}},
      {"MEME", "row sums to 2", meme("rs.meme", mhead + "letter-probability matrix: w= 1\n1 1 0 0\n"), {"rs.meme:7", "sums to 2"}},
      {"MEME", "fewer rows than w=", meme("fw.meme", mhead + "letter-probability matrix: w= 3\n1 0 0 0\n"), {"fw.meme", "w= 3"}},
      {"MEME", "huge w=", meme("hw.meme", mhead + "letter-probability matrix: w= 99999999999999999999\n1 0 0 0\n"), {"hw.meme:6"}},
      {"MEME", "no motif", meme("nm.meme", "MEME version 4\n"), {"nm.meme", "no motif"}},
  };
  std::vector<std::array<std::string, 3>> rows;
  run_table(t, rows);
  maybe_write_table(rows, d.path);
}

TEST_CASE("bad array files: safetensors, checkpoints, npy, npz; never trusted for sizes") {
  TempDir d;
  Context ctx(1);
  auto st = [&](const std::vector<uint8_t>& b) {
    return [&ctx, b] { safetensors::parse(ctx, b.data(), b.size(), "w.safetensors"); };
  };
  auto npy = [&](const std::vector<uint8_t>& b) { return [b] { npy::parse_npy(b.data(), b.size(), "x.npy"); }; };
  auto npz = [&](const std::vector<uint8_t>& b) { return [b] { npy::parse_npz(b.data(), b.size(), "d.npz"); }; };
  // A valid npz with one stored member, to corrupt.
  npy::Array a;
  a.dtype = npy::NpyDType::F4;
  a.shape = {3};
  a.bytes.assign(12, 0);
  npy::save_npz(d / "ok.npz", {{"x", a}});
  auto good = safetensors::read_file_bytes(d / "ok.npz");
  auto crc = good;
  crc[30 + 5 + 64 + 2] ^= 0xff;  // a payload byte: local header (30) + "x.npy" + npy header (64)
  // A valid checkpoint, then one data byte flipped.
  Checkpoint ck;
  ck.model = {{"w", Tensor::from_vector(ctx, {2}, std::vector<float>{1, 2})}};
  save_checkpoint(d / "ck.safetensors", ck);
  auto ckb = safetensors::read_file_bytes(d / "ck.safetensors");
  ckb[ckb.size() - 1] ^= 0x40;
  write_bytes(d / "flip.safetensors", ckb);
  safetensors::save(d / "plain.safetensors", NamedTensors{{"w", Tensor::from_vector(ctx, {1}, std::vector<float>{1})}});
  const std::string f32 = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::vector<BadInput> t = {
      {"safetensors", "missing file", [&] { safetensors::load(ctx, d / "none.safetensors"); }, {"none.safetensors"}},
      {"safetensors", "4 bytes", st({1, 2, 3, 4}), {"w.safetensors", "8-byte header length"}},
      {"safetensors", "header length 2^62", st(le64(uint64_t(1) << 62)), {"w.safetensors", "header length"}},
      {"safetensors", "header length past the end", st([] { auto b = le64(64); b.resize(40, ' '); return b; }()),
       {"w.safetensors", "past the end"}},
      {"safetensors", "header not JSON", st(st_image("{\"w\": ", 0)), {"w.safetensors", "not valid JSON"}},
      {"safetensors", "header not an object", st(st_image("[1]", 0)), {"w.safetensors"}},
      {"safetensors", "duplicate key", st(st_image(R"({"w":{},"w":{}})", 0)), {"w.safetensors", "'w' twice"}},
      {"safetensors", "unknown dtype", st(st_image(R"({"w":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", 1)),
       {"w.safetensors", "'w'", "dtype"}},
      {"safetensors", "negative dimension", st(st_image(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)),
       {"w.safetensors", "'w'", "shape"}},
      {"safetensors", "shape 2^40 x 2^40 (numel overflow)",
       st(st_image(R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}})", 8)),
       {"w.safetensors", "shape"}},
      {"safetensors", "shape 2^40 with 8 data bytes",
       st(st_image(R"({"w":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,8]}})", 8)),
       {"w.safetensors", "data_offsets", "4398046511104"}},
      {"safetensors", "offsets past the data", st(st_image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4)),
       {"w.safetensors", "past the data section"}},
      {"safetensors", "offsets reversed", st(st_image(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8)),
       {"w.safetensors", "begin 8 > end 0"}},
      {"safetensors", "overlapping tensors",
       st(st_image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)),
       {"w.safetensors", "'b'"}},
      {"safetensors", "trailing bytes", st(st_image(f32, 12)), {"w.safetensors", "data section has 12 bytes"}},
      {"safetensors", "BOOL byte 2", st([] { auto b = st_image(R"({"w":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", 1);
                                          b.back() = 2; return b; }()), {"w.safetensors", "'w'", "BOOL"}},
      {"checkpoint", "one data byte flipped", [&] { load_checkpoint(ctx, d / "flip.safetensors"); },
       {"flip.safetensors", "checksum mismatch"}},
      {"checkpoint", "plain safetensors", [&] { load_checkpoint(ctx, d / "plain.safetensors"); },
       {"plain.safetensors", "not a lowpass checkpoint"}},
      {"checkpoint", "truncated by 1 byte", [&] {
         auto b = safetensors::read_file_bytes(d / "ck.safetensors");
         b.pop_back();
         write_bytes(d / "cut.safetensors", b);
         load_checkpoint(ctx, d / "cut.safetensors");
       }, {"cut.safetensors"}},
      {"npy", "bad magic", npy(bytes_of("NUMPY\x01\x00xxxxxxx")), {"x.npy", "bad magic"}},
      {"npy", "version 9", npy([] { auto b = npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4);
                                   b[6] = 9; return b; }()), {"x.npy", "version 9"}},
      {"npy", "big-endian", npy(npy_image("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", 4)), {"x.npy", ">f4"}},
      {"npy", "Fortran order", npy(npy_image("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", 4)), {"x.npy", "Fortran"}},
      {"npy", "structured dtype", npy(npy_image("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 4)),
       {"x.npy"}},
      {"npy", "shape (2^62, 4) (overflow)", npy(npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", 0)),
       {"x.npy", "shape"}},
      {"npy", "shape (2^30,) with 4 bytes", npy(npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824,), }", 4)),
       {"x.npy", "4294967296"}},
      {"npy", "payload 1 byte short", npy(npy_image("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 15)),
       {"x.npy", "15 bytes", "16"}},
      {"npz", "not a zip", npz(bytes_of(std::string(100, 'x'))), {"d.npz", "end-of-central-directory"}},
      {"npz", "truncated (last 10 bytes cut)", npz(std::vector<uint8_t>(good.begin(), good.end() - 10)), {"d.npz"}},
      {"npz", "payload byte flipped", npz(crc), {"d.npz", "CRC-32"}},
      {"npz", "missing key", [&] { npy::load_npz(d / "ok.npz", {"y"}); }, {"ok.npz", "'y'", "x"}},
      {"limits", "2^62 bytes asked of check_fits_in_memory", [] { safetensors::check_fits_in_memory(uint64_t(1) << 62, "big.npz: member 'x'"); },
       {"big.npz: member 'x'", "needs 4611686018427387904 bytes (4294967296.0 GiB)", "of memory"}},
  };
  std::vector<std::array<std::string, 3>> rows;
  run_table(t, rows);
  maybe_write_table(rows, d.path);
}

// ---- crash safety: `lowpass train` killed and resumed, signals, numerics guard ----
namespace {
using Clock = std::chrono::steady_clock;

// The lowpass tool beside this test binary (BUILD/tests/lowpass_tests -> BUILD/tools/lowpass), or $LOWPASS_BIN.
std::string lowpass_bin() {
  if (const char* b = std::getenv("LOWPASS_BIN")) return b;
  return (fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "tools" / "lowpass").string();
}

// Starts `lowpass <args>` with stdout/stderr to `log`; returns the pid.
pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "a", stdout);
    if (f) dup2(fileno(stdout), 2);
    std::vector<char*> argv;
    std::string bin = lowpass_bin();
    argv.push_back(bin.data());
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}
int wait_exit(pid_t pid) {  // exit code, or 128 + signal
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// A tiny binary task: data, and a config file with one thread (bit-identity needs the same thread count).
std::string crash_setup(const TempDir& d, const std::string& extra_train = "", bool valid = true) {
  Rng rng(21);
  BinarySimOptions o;
  o.n = 48;
  o.length = 40;
  o.motif_bound = 4;
  write_array_dataset(simulate_binary(default_motif(), o, rng), d / "train.npz");
  o.n = 16;
  write_array_dataset(simulate_binary(default_motif(), o, rng), d / "valid.npz");
  std::string cfg = d / "config.json";
  // extra_train (", \"key\": value, ...") overrides these keys: a config file may not repeat a key
  nlohmann::json train = {{"batch_size", 4}, {"epochs", 6},          {"seed", 3},
                          {"threads", 1},    {"progress", false},    {"early_stopping", false}};
  if (!extra_train.empty()) train.update(nlohmann::json::parse("{" + extra_train.substr(1) + "}"));
  write_text(cfg, R"({"model": {"type": "binary", "input_length": 40, "conv_depths": [4, 4, 4],
    "conv_filter_sizes": [7, 5, 5], "max_pool_size": 4, "fc_sizes": [6, 4]},
    "data": {"train": "train.npz")" + std::string(valid ? R"(, "valid": "valid.npz")" : "") + R"(},
    "train": )" + train.dump() + R"(,
    "prior": {"freq_limit": 6, "attribution_mode": "eval"}})");
  return cfg;
}

// Every finished checkpoint intact; weights files loadable. Returns how many checkpoints were checked.
int check_no_corrupt_files(const std::string& out) {
  int n = 0;
  if (fs::exists(out + "/checkpoints"))
    for (auto& e : fs::directory_iterator(out + "/checkpoints")) {
      if (e.path().extension() != ".safetensors") continue;  // temp files (.tmp.<pid>.<n>) are not checkpoints
      std::string why;
      CHECK_MESSAGE(verify_checkpoint(e.path().string(), &why), why);
      ++n;
    }
  Context ctx(1);
  for (const char* w : {"model.safetensors", "best.safetensors"})
    if (fs::exists(out + "/" + w)) CHECK_NOTHROW(safetensors::load(ctx, out + "/" + w));
  return n;
}
}  // namespace

TEST_CASE("a binary file given as a BED: the quoted bytes are escaped, the message stays one line") {
  TempDir d;
  ChromSizes cs;
  cs.add("chr1", 100);
  BedOptions o;
  o.sizes = &cs;
  struct Case { std::string name, text; std::vector<std::string> frags; };
  const std::string long_field(300, '\x01');
  for (const Case& c : {Case{"start.bed", "chr1\tab\x0b\x0c\rcd\xff\t5\n", {"column 2", "'ab\\x0B\\x0C\\x0Dcd\\xFF'"}},
                        Case{"chrom.bed", "\x89\x01" "chr\t1\t5\n", {"chromosome '\\x89\\x01chr'"}},
                        Case{"long.bed", "chr1\t" + long_field + "\t5\n", {"column 2", "\\x01...'"}}}) {
    write_text(d / c.name, c.text);
    std::string msg;
    try {
      read_bed(d / c.name, o);
    } catch (const Error& e) {
      msg = e.what();
    }
    INFO(c.name, ": ", msg);
    REQUIRE(!msg.empty());
    for (const auto& f : c.frags) CHECK(msg.find(f) != std::string::npos);
    CHECK(std::none_of(msg.begin(), msg.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x20; }));
    CHECK(msg.size() < 300);
  }
}

TEST_CASE("crash safety: SIGKILL at random moments, --resume, bit-identical weights, no corrupt checkpoint") {
  REQUIRE_MESSAGE(fs::exists(lowpass_bin()), "the lowpass tool is needed: ", lowpass_bin());
  TempDir d;
  const std::string cfg = crash_setup(d);
  // The reference run, twice: the first start of the tool can be slow (shared libraries, the CUDA ones included, read
  // from a cold disk cache), and kill moments drawn from its time could all fall after a warm run has finished (CI
  // once killed 0 of 5 that way). The faster of the two times sets the moments; the two runs must agree bit for bit.
  double ref_s = 1e30;
  for (const char* name : {"ref", "ref2"}) {
    auto t0 = Clock::now();
    REQUIRE(wait_exit(spawn({"train", "--config", cfg, "--out", d / name, "--quiet"}, d / (std::string(name) + ".log"))) == 0);
    ref_s = std::min(ref_s, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const std::string ref_model = slurp(d / "ref/model.safetensors"), ref_best = slurp(d / "ref/best.safetensors");
  REQUIRE(!ref_model.empty());
  CHECK(slurp(d / "ref2/model.safetensors") == ref_model);

  const char* env = std::getenv("LOWPASS_KILL_CYCLES");
  const int cycles = env ? std::atoi(env) : 5;
  std::mt19937_64 gen(env ? std::random_device{}() : 12345);  // fixed moments in CI, random when asked for more
  const std::string out = d / "run";
  int killed = 0, checked = 0;
  for (int c = 0; c < cycles; ++c) {
    std::vector<std::string> args = {"train", "--config", cfg, "--out", out, "--quiet"};
    if (fs::exists(out + "/checkpoints/last.safetensors")) args.push_back("--resume");
    pid_t pid = spawn(args, d / "run.log");
    // a moment anywhere in a whole run's time (start-up and checkpoint writes included)
    double at = std::uniform_real_distribution<double>(0.05, 0.6)(gen) * ref_s;
    std::this_thread::sleep_for(std::chrono::duration<double>(at));
    kill(pid, SIGKILL);
    int rc = wait_exit(pid);
    killed += rc == 128 + SIGKILL;
    CHECK_MESSAGE((rc == 128 + SIGKILL || rc == 0), "exit ", rc, "; log: ", slurp(d / "run.log"));
    checked += check_no_corrupt_files(out);
  }
  std::vector<std::string> args = {"train", "--config", cfg, "--out", out, "--quiet"};
  if (fs::exists(out + "/checkpoints/last.safetensors")) args.push_back("--resume");
  REQUIRE_MESSAGE(wait_exit(spawn(args, d / "run.log")) == 0, slurp(d / "run.log"));
  checked += check_no_corrupt_files(out);
  MESSAGE("kill/resume: ", killed, " of ", cycles, " runs killed by SIGKILL (reference run ", ref_s, " s), ",
          checked, " checkpoint checks, final weights ", std::string(slurp(out + "/model.safetensors") == ref_model ? "bit-identical" : "DIFFERENT"));
  CHECK(killed >= 1);
  CHECK(slurp(out + "/model.safetensors") == ref_model);
  CHECK(slurp(out + "/best.safetensors") == ref_best);
}

TEST_CASE("crash safety: SIGTERM and SIGINT finish the step, write a checkpoint, exit 0; resume is bit-identical") {
  REQUIRE(fs::exists(lowpass_bin()));
  TempDir d;
  const std::string cfg = crash_setup(d);
  REQUIRE(wait_exit(spawn({"train", "--config", cfg, "--out", d / "ref", "--quiet"}, d / "ref.log")) == 0);
  for (int sig : {SIGTERM, SIGINT}) {
    const std::string out = d / ("sig" + std::to_string(sig));
    pid_t pid = spawn({"train", "--config", cfg, "--out", out}, out + ".log");
    // wait for the first epoch's checkpoint so that the signal lands mid-training
    auto until = Clock::now() + std::chrono::seconds(120);
    while (!fs::exists(out + "/checkpoints/epoch_1.safetensors") && Clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    kill(pid, sig);
    int rc = wait_exit(pid);
    std::string log = slurp(out + ".log");
    CHECK_MESSAGE(rc == 0, "signal ", sig, ": exit ", rc, "; log: ", log);
    // the file --resume reads, also when the signal fell on an epoch's end (which writes epoch_<n> as well)
    CHECK_MESSAGE(log.find("; checkpoint " + out + "/checkpoints/last.safetensors written; continue with --resume") !=
                      std::string::npos, log);
    CHECK(check_no_corrupt_files(out) >= 1);
    Context ctx(1);
    Checkpoint ck = load_checkpoint(ctx, out + "/checkpoints/last.safetensors");
    CHECK(ck.step >= 1);
    REQUIRE(wait_exit(spawn({"train", "--config", cfg, "--out", out, "--quiet", "--resume"}, out + ".log")) == 0);
    CHECK(slurp(out + "/model.safetensors") == slurp(d / "ref/model.safetensors"));
    CHECK(slurp(out + "/best.safetensors") == slurp(d / "ref/best.safetensors"));
  }
}

TEST_CASE("numerics guard: a non-finite loss stops with the step, the loss terms and the last good checkpoint; --skip-nonfinite counts") {
  REQUIRE(fs::exists(lowpass_bin()));
  TempDir d;
  // no validation set: with weights blown up by lr 1e38 the validation loss is not finite either
  const std::string cfg = crash_setup(d, R"(, "optimizer": "sgd", "lr": 1e38, "epochs": 2)", false);
  const std::string out = d / "nan";
  int rc = wait_exit(spawn({"train", "--config", cfg, "--out", out, "--quiet"}, d / "nan.log"));
  std::string log = slurp(d / "nan.log");
  CHECK(rc != 0);
  for (const char* frag : {"not finite at step", "task", "prior", "last good checkpoint"})
    CHECK_MESSAGE(log.find(frag) != std::string::npos, "'", frag, "' not in: ", log);
  const std::string out2 = d / "skip";
  rc = wait_exit(spawn({"train", "--config", cfg, "--out", out2, "--quiet", "--skip-nonfinite"}, d / "skip.log"));
  log = slurp(d / "skip.log");
  CHECK_MESSAGE(rc == 0, log);
  std::ifstream m(out2 + "/metrics.jsonl");
  std::string line;
  int64_t skipped = 0;
  while (std::getline(m, line)) skipped += nlohmann::json::parse(line).value("skipped_batches", int64_t(0));
  CHECK(skipped >= 1);
  Context ctx(1);
  for (auto& kv : safetensors::load(ctx, out2 + "/model.safetensors").named())
    for (float v : kv.second.to_vector<float>()) REQUIRE_MESSAGE(std::isfinite(v), kv.first);
}

TEST_CASE("limits: a batch that cannot fit in memory is refused before training with the bytes it needs") {
  REQUIRE(fs::exists(lowpass_bin()));
  TempDir d;
  const std::string cfg = crash_setup(d, R"(, "batch_size": 1000000000000000)");
  auto t0 = Clock::now();
  int rc = wait_exit(spawn({"train", "--config", cfg, "--out", d / "big", "--quiet"}, d / "big.log"));
  std::string log = slurp(d / "big.log");
  CHECK(rc != 0);
  for (const char* frag : {"config.json", "train.batch_size", "needs 1280000000000000000 bytes", "of memory"})
    CHECK_MESSAGE(log.find(frag) != std::string::npos, "'", frag, "' not in: ", log);
  CHECK(std::chrono::duration<double>(Clock::now() - t0).count() < 60);  // refused up front, not after trying
}

TEST_CASE("train --tf32/--bf16/--cuda-conv: both math flags, either without a GPU device, a bad or CPU conv backend are refused with the reason") {
  REQUIRE(fs::exists(lowpass_bin()));
  TempDir d;
  const std::string cfg = crash_setup(d);
  struct Case { std::vector<std::string> flags; std::vector<const char*> frags; };
  for (const Case& c : {Case{{"--tf32", "--bf16"}, {"--tf32 excludes --bf16", "--help lists the options"}},
                        Case{{"--bf16"}, {"config.json", "'train.bf16' needs train.device cuda"}},
                        Case{{"--tf32"}, {"config.json", "'train.tf32' needs train.device cuda"}},
                        Case{{"--cuda-conv", "fft"},
                             {"--cuda-conv", "unknown CUDA convolution backend 'fft'", "auto, direct, tiled"}},
                        Case{{"--cuda-conv", "tune"},
                             {"config.json", "'train.cuda_conv' is \"tune\", which needs train.device cuda"}}}) {
    std::vector<std::string> args = {"train", "--config", cfg, "--out", d / "run", "--quiet"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    const std::string log_path = d / ("math" + std::to_string(c.flags.size()) + c.flags.back() + ".log");
    const int rc = wait_exit(spawn(args, log_path));
    const std::string log = slurp(log_path);
    INFO(c.flags[0], " (", c.flags.size(), " flags): ", log);
    CHECK(rc != 0);
    for (const char* frag : c.frags) CHECK(log.find(frag) != std::string::npos);
    CHECK(!fs::exists(d / "run/model.safetensors"));  // nothing trained
  }
}
}  // TEST_SUITE
