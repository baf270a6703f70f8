// Streams an array dataset to .npz batch by batch, in memory bounded by one batch plus status (4 bytes a row):
// the same file write_array_dataset writes (x uint8 when every value is 0/1 else float32, y/control float32, status
// int32, in that order), byte for byte. Rows are spilled to unlinked files beside `path` until the count is known.
// Test: build/tests/lowpass_tests -ts=array_dataset_writer,genome_train
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "models/data/batch.h"

namespace lowpass {

class ArrayDatasetWriter {
 public:
  // type "binary" or "profile"; source names the data in messages.
  ArrayDatasetWriter(std::string path, std::string type, std::string source);
  ~ArrayDatasetWriter();  // without close() nothing is left behind and `path` is untouched
  ArrayDatasetWriter(const ArrayDatasetWriter&) = delete;
  ArrayDatasetWriter& operator=(const ArrayDatasetWriter&) = delete;
  // Appends the rows of one batch (x, y, control, status), checked as ArrayDataset::validate checks a dataset.
  void append(const Batch& b);
  // Writes the npz (x, y, [control], status; temp + fsync + rename). Throws if no row was appended.
  void close();
  int64_t rows() const { return n_; }
  int64_t length() const { return length_; }
  const std::vector<int>& status() const { return status_; }  // (N)

 private:
  struct Spill;
  std::string path_, type_, source_;
  int64_t n_ = 0, length_ = 0;
  Shape y_row_, control_row_;  // trailing dims of y / control (control empty: none)
  bool onehot_ = true;         // x spilled as uint8 while true, as float32 after the first other value
  std::unique_ptr<Spill> x_, y_, control_;
  std::vector<int> status_;  // (N)
};

}  // namespace lowpass
