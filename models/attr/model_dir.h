// Loading what the tools need: a trained model directory (config.json + best/model.safetensors) and
// row ranges of an npz array as tensors, so that attribution/prediction stream over large inputs.
// Test: build/tests/lowpass_tests -ts=attr
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/npz.h"
#include "models/arch/model.h"

namespace lowpass::attr {

// weights: "best" (best.safetensors, falling back to model.safetensors) or "last" (model.safetensors),
// or a path to a .safetensors file: a state_dict, or a training checkpoint (DIR/checkpoints/epoch_<n>.safetensors,
// whose "model.*" tensors are taken). Errors name the directory and the missing file, or the weights file whose
// tensors do not fit the model.
std::unique_ptr<Model> load_model_dir(const std::string& dir, Context& ctx, const std::string& weights = "best");

// Several model directories averaged as one model (the folds of one experiment: `predict`, `attribute` and
// `variants` with a repeated --model), each loaded with `weights` and moved to `device`. They must share type,
// dtype, input and output lengths, tasks and strands: an Error names the first directory that does not. A weights
// file (not best/last) with several directories is an Error (it would be averaged with itself).
struct ModelSet {
  std::vector<std::string> dirs;
  std::vector<std::unique_ptr<Model>> models;
  Device device;
  Model& front() { return *models.front(); }
  size_t size() const { return models.size(); }
  std::vector<Model*> pointers() const;
  std::vector<const Model*> const_models() const;
};
ModelSet load_model_dirs(const std::vector<std::string>& dirs, Context& ctx, const std::string& weights,
                         const std::string& device);

// The eval-mode forward pass of every model of `set` on x (rows on the host), model k with controls[k] (undefined
// when the models take none), averaged: logits, profile logits (before the softmax) and log counts; host tensors.
// One model: its own outputs. With `revcomp`, averaged with the outputs of the reverse complement (x's base and
// position axes flipped, the controls' strand and position axes), mapped back to the forward strand: profile logits
// flipped along strands and positions, log counts along strands.
ModelOutput forward_mean(ModelSet& set, const Tensor& x, const std::vector<Tensor>& controls, bool revcomp = false);

// Moves the model to `device` ("cpu", "cuda", "cuda:N": the tools' --device); Errors name the flag and, for a
// GPU that cannot be used, the reason. Returns the device.
Device place_model(Model& model, const std::string& device);

// Rows [start, start + n) of an array with a leading example axis, as a host tensor of `dtype`
// (every npy dtype lowpass reads: bool, (u)int8/16/32/64, float32/64). With `finite` (model inputs: x, control), a NaN or infinity is an Error
// naming `what`, the row and the element's index.
// `first_row`: the file's row number of a's row 0 (a holds rows read from a larger array), for messages.
Tensor array_rows(Context& ctx, const npy::Array& a, int64_t start, int64_t n, DType dtype, const std::string& what,
                  bool finite = false, int64_t first_row = 0);
// Rows [start, start + n) of array `key` of an npz read row-wise (npy::NpzRowReader), as array_rows: only those rows
// are read from the file; messages give the file's row numbers.
Tensor npz_rows(Context& ctx, npy::NpzRowReader& r, const std::string& key, int64_t start, int64_t n, DType dtype,
                const std::string& what, bool finite = false);

}  // namespace lowpass::attr
