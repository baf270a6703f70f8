// Streaming npz writer of array datasets: rows go to unlinked spill files (x as uint8 while one-hot), then each array
// is copied into npy::NpzWriter once N is known. Peak memory: one batch, 4 bytes of status a row, and a 4 MiB buffer.
// Test: build/tests/lowpass_tests -ts=array_dataset_writer,genome_train
#include "models/data/array_dataset_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "engine/error.h"
#include "engine/npz.h"
#include "models/data/array_dataset.h"

namespace lowpass {

// A file beside the output, unlinked as soon as it is created: a killed export leaves nothing behind.
struct ArrayDatasetWriter::Spill {
  int fd = -1;
  uint64_t size = 0;
  std::string what;

  explicit Spill(const std::string& out, const std::string& name) : what(out + ": spill file of '" + name + "'") {
    static std::atomic<uint64_t> counter{0};
    const std::string p = out + "." + name + ".spill." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    LP_CHECK(fd >= 0, out, ": cannot create the temporary file ", p, ": ", std::strerror(errno));
    ::unlink(p.c_str());
  }
  ~Spill() {
    if (fd >= 0) ::close(fd);
  }
  void write(const void* data, size_t n) {
    const char* c = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::pwrite(fd, c, n, static_cast<off_t>(size));
      if (w < 0 && errno == EINTR) continue;
      LP_CHECK(w > 0, what, ": write failed: ", w < 0 ? std::strerror(errno) : "no progress");
      c += w, n -= static_cast<size_t>(w), size += static_cast<uint64_t>(w);
    }
  }
  // Calls fn(bytes, n) on consecutive chunks of at most `chunk` bytes (a multiple of 4).
  template <class Fn>
  void read_all(Fn fn) const {
    constexpr size_t chunk = size_t{4} << 20;
    std::vector<char> buf(static_cast<size_t>(std::min<uint64_t>(chunk, size)));
    for (uint64_t at = 0; at < size;) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(chunk, size - at));
      size_t got = 0;
      while (got < want) {
        const ssize_t r = ::pread(fd, buf.data() + got, want - got, static_cast<off_t>(at + got));
        if (r < 0 && errno == EINTR) continue;
        LP_CHECK(r > 0, what, ": read failed: ", r < 0 ? std::strerror(errno) : "end of file");
        got += static_cast<size_t>(r);
      }
      fn(buf.data(), want);
      at += want;
    }
  }
};

ArrayDatasetWriter::ArrayDatasetWriter(std::string path, std::string type, std::string source)
    : path_(std::move(path)), type_(std::move(type)), source_(std::move(source)) {}

ArrayDatasetWriter::~ArrayDatasetWriter() = default;

void ArrayDatasetWriter::append(const Batch& b) {
  const int64_t B = b.size();
  if (B == 0) return;
  // The rows as a small dataset, checked like a whole one (values and shapes).
  ArrayDataset chunk;
  chunk.source = source_;
  chunk.type = type_;
  chunk.n = B;
  chunk.length = b.x.size(2);
  chunk.x = b.x.to_vector<float>();
  chunk.y_shape = b.y.shape();
  chunk.y = b.y.to_vector<float>();
  if (b.control.defined()) chunk.control_shape = b.control.shape(), chunk.control = b.control.to_vector<float>();
  chunk.status = b.status;
  chunk.validate();
  const Shape y_row(chunk.y_shape.begin() + 1, chunk.y_shape.end());
  const Shape c_row = chunk.has_control() ? Shape(chunk.control_shape.begin() + 1, chunk.control_shape.end()) : Shape{};
  if (n_ == 0) {
    length_ = chunk.length, y_row_ = y_row, control_row_ = c_row;
    x_ = std::make_unique<Spill>(path_, "x");
    y_ = std::make_unique<Spill>(path_, "y");
    if (!c_row.empty()) control_ = std::make_unique<Spill>(path_, "control");
  }
  LP_CHECK(chunk.length == length_ && y_row == y_row_ && c_row == control_row_, source_, ": a batch of shape x ",
           shape_str(b.x.shape()), ", y ", shape_str(chunk.y_shape), " does not match the first batch (length ",
           length_, ", y rows ", shape_str(y_row_), ", control rows ", shape_str(control_row_), ")");
  const bool onehot = std::all_of(chunk.x.begin(), chunk.x.end(), [](float v) { return v == 0.f || v == 1.f; });
  if (onehot_ && !onehot) {  // the first value other than 0/1: x so far becomes float32
    auto f = std::make_unique<Spill>(path_, "x");
    x_->read_all([&](const char* p, size_t n) {
      std::vector<float> v(n);
      for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(p[i]) != 0 ? 1.f : 0.f;
      f->write(v.data(), v.size() * sizeof(float));
    });
    x_ = std::move(f);
    onehot_ = false;
  }
  if (onehot_) {
    std::vector<uint8_t> xb(chunk.x.size());
    for (size_t i = 0; i < xb.size(); ++i) xb[i] = chunk.x[i] != 0.f;
    x_->write(xb.data(), xb.size());
  } else {
    x_->write(chunk.x.data(), chunk.x.size() * sizeof(float));
  }
  y_->write(chunk.y.data(), chunk.y.size() * sizeof(float));
  if (control_) control_->write(chunk.control.data(), chunk.control.size() * sizeof(float));
  status_.insert(status_.end(), chunk.status.begin(), chunk.status.end());
  n_ += B;
}

void ArrayDatasetWriter::close() {
  LP_CHECK(n_ > 0, source_, ": 'x' has no examples");
  npy::NpzWriter w(path_);
  auto copy = [&](const char* key, npy::NpyDType dtype, Shape row, const Spill& s) {
    row.insert(row.begin(), n_);
    w.begin(key, dtype, row);
    s.read_all([&](const char* p, size_t n) { w.append_raw(p, n); });
    w.end();
  };
  copy("x", onehot_ ? npy::NpyDType::U1 : npy::NpyDType::F4, {4, length_}, *x_);
  copy("y", npy::NpyDType::F4, y_row_, *y_);
  if (control_) copy("control", npy::NpyDType::F4, control_row_, *control_);
  const std::vector<int32_t> st(status_.begin(), status_.end());
  w.begin("status", npy::NpyDType::I4, {n_});
  w.append_raw(st.data(), st.size() * sizeof(int32_t));
  w.end();
  w.close();
  x_.reset(), y_.reset(), control_.reset();
}

}  // namespace lowpass
