// The streaming array-dataset writer against write_array_dataset (the spec): profile batches with controls, an empty
// batch, x that stops being one-hot after the first batch (uint8 spill rewritten as float32), batches that disagree.
// Run: build/tests/lowpass_tests -ts=array_dataset_writer
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

#include "engine/error.h"
#include "models/data/array_dataset.h"
#include "models/data/array_dataset_writer.h"
#include "tests/genome_fixtures.h"

namespace {

using namespace lowpass;

// Rows [from, from + B) of ds as a batch.
Batch rows(Context& ctx, const ArrayDataset& ds, int64_t from, int64_t B) {
  auto slice = [&](const std::vector<float>& v, Shape shape) {
    const int64_t row = shape_numel(shape) / shape[0];
    shape[0] = B;
    return Tensor::from_vector(ctx, shape, std::vector<float>(v.begin() + from * row, v.begin() + (from + B) * row));
  };
  Batch b;
  b.x = slice(ds.x, {ds.n, 4, ds.length});
  b.y = slice(ds.y, ds.y_shape);
  if (ds.has_control()) b.control = slice(ds.control, ds.control_shape);
  b.status.assign(ds.status.begin() + from, ds.status.begin() + from + B);
  return b;
}

std::string bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// A profile dataset of n rows, length L, T=2 tasks, S=2 strands, O=5, one control track; x one-hot except row `soft`.
ArrayDataset profile_dataset(int64_t n, int64_t L, int64_t soft) {
  ArrayDataset ds;
  ds.source = "synthetic";
  ds.type = "profile";
  ds.n = n, ds.length = L;
  Rng rng(11);
  ds.x.assign(static_cast<size_t>(n * 4 * L), 0.f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < L; ++p) {
      if (p == 3) continue;  // an N base: an all-zero column
      if (i == soft) {
        for (int c = 0; c < 4; ++c) ds.x[static_cast<size_t>((i * 4 + c) * L + p)] = 0.25f;
      } else {
        ds.x[static_cast<size_t>((i * 4 + rng.randint(0, 4)) * L + p)] = 1.f;
      }
    }
  ds.y_shape = {n, 2, 2, 5};
  for (int64_t k = 0; k < n * 20; ++k) ds.y.push_back(static_cast<float>(rng.randint(0, 7)) * 0.5f);
  ds.control_shape = {n, 1, 2, 5};
  for (int64_t k = 0; k < n * 10; ++k) ds.control.push_back(static_cast<float>(rng.randint(0, 3)));
  for (int64_t i = 0; i < n; ++i) ds.status.push_back(i % 3 == 0);
  return ds;
}

}  // namespace

TEST_SUITE("array_dataset_writer") {

TEST_CASE("array_dataset_writer: batches streamed write the file write_array_dataset writes, byte for byte") {
  Context ctx(1, 0);
  TempDir d;
  for (int64_t soft : {int64_t{-1}, int64_t{7}, int64_t{0}}) {  // one-hot throughout; soft in a later / first batch
    CAPTURE(soft);
    const ArrayDataset ds = profile_dataset(13, 9, soft);
    write_array_dataset(ds, d / "old.npz");
    ArrayDatasetWriter w(d / "new.npz", "profile", "synthetic");
    w.append(rows(ctx, ds, 0, 5));
    w.append(Batch{});  // an empty batch adds nothing
    w.append(rows(ctx, ds, 5, 1));  // batch of one
    w.append(rows(ctx, ds, 6, 7));
    CHECK(w.rows() == 13);
    CHECK(w.length() == 9);
    w.close();
    CHECK(bytes(d / "new.npz") == bytes(d / "old.npz"));
    const ArrayDataset back = read_array_dataset(d / "new.npz", "profile");
    CHECK(back.x == ds.x);
    CHECK(back.y == ds.y);
    CHECK(back.control == ds.control);
    CHECK(back.control_shape == ds.control_shape);
    CHECK(back.status == ds.status);
  }
}

TEST_CASE("array_dataset_writer: bad rows, mismatched batches and no rows are errors; nothing is written") {
  Context ctx(1, 0);
  TempDir d;
  ArrayDataset ds = profile_dataset(6, 9, -1);
  {
    ArrayDatasetWriter w(d / "a.npz", "profile", "src");
    w.append(rows(ctx, ds, 0, 3));
    ArrayDataset other = profile_dataset(6, 8, -1);  // another length
    expect_error([&] { w.append(rows(ctx, other, 0, 3)); }, {"src", "does not match the first batch"});
    ds.y[20 * 4] = -1.f;  // row 4: a negative count
    expect_error([&] { w.append(rows(ctx, ds, 3, 3)); }, {"src", "'y' counts must be >= 0"});
  }  // not closed: no file
  CHECK(!fs::exists(d / "a.npz"));
  ArrayDatasetWriter empty(d / "b.npz", "profile", "src");
  expect_error([&] { empty.close(); }, {"src", "no examples"});
  CHECK(!fs::exists(d / "b.npz"));
  CHECK(fs::directory_iterator(d.path) == fs::directory_iterator());
}

}  // TEST_SUITE
