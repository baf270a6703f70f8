// safetensors read/write (Hugging Face format): u64 LE header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [b, e]}, "__metadata__": {str: str}}, then the data section.
// Files are never trusted (every field bounds-checked); writes are atomic. Test: lowpass_tests -ts=safetensors
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace lowpass {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

namespace safetensors {

// Element types as named in the file. Floats load as float tensors (F64 stays F64; F32/F16/BF16 load
// as F32); integer and bool types load as F64 tensors (exact up to 2^53) and also as raw int64 values.
enum class FileDType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };
const char* file_dtype_name(FileDType t);      // "F32", ...
size_t file_dtype_size(FileDType t);           // bytes per element
bool file_dtype_is_int(FileDType t);           // I64 ... BOOL
FileDType file_dtype_of(DType t);              // F32 -> F32, F64 -> F64

struct Entry {
  Tensor tensor;              // host tensor: F32 for F32/F16/BF16, F64 for F64 and integer types
  FileDType dtype;            // element type in the file
  std::vector<int64_t> ints;  // exact values, filled only for integer/bool types
};

struct File {
  std::vector<std::pair<std::string, Entry>> tensors;  // in data-offset order
  std::map<std::string, std::string> metadata;         // __metadata__ (absent = empty)
  std::string path;                                    // for messages

  bool contains(const std::string& name) const;
  const Entry& at(const std::string& name) const;  // Error naming the file and tensor if missing
  NamedTensors named() const;                      // (name, tensor) pairs in file order
  std::map<std::string, Tensor> map() const;       // name -> tensor
};

// One tensor to write. dtype = element type in the file: F32/F64 store the tensor's values
// (converting if needed), F16/BF16 round to nearest-even, integer types require integral values in
// range (Error otherwise). CUDA tensors are copied to the host.
struct WriteEntry {
  std::string name;
  Tensor tensor;
  FileDType dtype;
};

// Entries for named tensors with their own dtype, except `...num_batches_tracked` stored as I64
// (PyTorch's BatchNorm counter), each name prefixed with `prefix`.
std::vector<WriteEntry> entries_from(const NamedTensors& tensors, const std::string& prefix = "");

// Parse an in-memory file image. `what` names it in error messages (usually the path).
File parse(Context& ctx, const uint8_t* bytes, size_t size, const std::string& what);
File load(Context& ctx, const std::string& path);  // header, then tensors read into place

// Serialise to bytes (header padded with spaces to a multiple of 8, tensors in the given order).
std::vector<uint8_t> serialize(const std::vector<WriteEntry>& entries,
                               const std::map<std::string, std::string>& metadata = {});
// The data section's bytes in order, streamed to sink (e.g. for a checksum), without building the file.
void visit_data(const std::vector<WriteEntry>& entries, const std::function<void(const uint8_t*, size_t)>& sink);
// Atomic write: temp file in the same directory, fsync, rename, fsync of the directory. Streams the
// tensors to the file (no whole-file copy in memory).
void save(const std::string& path, const std::vector<WriteEntry>& entries,
          const std::map<std::string, std::string>& metadata = {});
void save(const std::string& path, const NamedTensors& tensors,
          const std::map<std::string, std::string>& metadata = {});

// Limits (docs/reliability.md): throws Error "<what> needs N bytes (X GiB) but this machine has M bytes
// (Y GiB) of memory" when `bytes` exceeds physical memory, before anything is allocated.
void check_fits_in_memory(uint64_t bytes, const std::string& what);

// Helpers shared with npz/checkpoint: whole-file read (Error naming the path) and atomic write.
std::vector<uint8_t> read_file_bytes(const std::string& path);
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes);
void write_file_atomic(const std::string& path, std::string_view text);

// Removes `<name>.tmp.<pid>.<n>` files in `dir` (not below; only those of `names` when given) that a killed writer
// left: their pid runs no process here, no one holds the flock every AtomicFile keeps on its temporary, and they
// were last written over an hour ago. A live writer in another container or on another host keeps its lock, so its
// file stays. Returns the paths removed.
std::vector<std::string> remove_stale_temporaries(const std::string& dir, const std::vector<std::string>& names = {});

// A file written atomically: bytes go to `path.tmp.<pid>.<n>` in the same directory; commit() fsyncs
// and renames it over `path` (then fsyncs the directory). Destroyed uncommitted, the temp is removed.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t n);                    // append
  void pwrite(const void* data, size_t n, uint64_t offset);  // patch bytes already written
  uint64_t size() const { return size_; }
  // The temporary's path, for a writer that opens the file itself (libBigWig): it writes there while this object
  // keeps the lock, then commit() fsyncs and renames it.
  const std::string& temp_path() const { return tmp_; }
  void commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Byte offset of the data section inside a serialised file image (8 + header length); checked.
size_t data_section_offset(const uint8_t* bytes, size_t size, const std::string& what);

}  // namespace safetensors
}  // namespace lowpass
