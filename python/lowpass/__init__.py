"""lowpass: DNA-sequence models trained with the Fourier attribution prior, from Python.

NumPy in, NumPy out: one-hot sequences are float32 arrays (N, 4, L); C-contiguous float32 inputs are
read without a copy (anything else is converted once), outputs are arrays over the engine's memory.
Test: scripts/test_python.sh (pytest python/tests). Reference: docs/api.md.
"""
import json as _json

import numpy as _np

from . import _lowpass

__version__ = _lowpass.__version__
__all__ = ["Model", "load", "create", "fourier_prior_loss", "prior_loss", "version_string"]

version_string = _lowpass.version_string


def _f32(a, what):
    if a is None:
        return None
    a = _np.asarray(a)
    if a.dtype != _np.float32 or not a.flags.c_contiguous:
        a = _np.ascontiguousarray(a, dtype=_np.float32)
    return a


def _status(status, n):
    if status is None:
        return []
    a = _np.asarray(status).ravel()
    if a.dtype.kind not in "biu":  # int() would read 0.5 as 0: refuse what is not a whole number
        if a.dtype.kind != "f" or not _np.all(_np.isfinite(a) & (a == _np.round(a))):
            raise ValueError(f"status must hold integers (1: the prior applies); got {a[:8].tolist()}")
    s = [int(v) for v in a]
    if len(s) != n:
        raise ValueError(f"status has {len(s)} entries for {n} examples")
    return s


class Model:
    """A binary or profile model (wraps the C++ lowpass::api::Model). Not thread-safe; one per thread."""

    def __init__(self, handle):
        self._m = handle

    # ---- description ----
    type = property(lambda self: self._m.type, doc="'binary' or 'profile'")
    dtype = property(lambda self: self._m.dtype, doc="'float32' or 'float64' (the parameters')")
    input_length = property(lambda self: self._m.input_length)
    output_length = property(lambda self: self._m.output_length, doc="binary: tasks T; profile: O")
    tasks = property(lambda self: self._m.tasks)
    strands = property(lambda self: self._m.strands)
    uses_control = property(lambda self: self._m.uses_control, doc="profile models with controls")

    @property
    def config(self):
        """The resolved `model` config section (a dict)."""
        return _json.loads(self._m.config_json)

    def state_dict(self):
        """{name: float32 ndarray copy} in the reference PyTorch state_dict order."""
        return {n: self._m.parameter(n) for n in self._m.parameter_names()}

    def set_threads(self, threads):
        self._m.set_threads(int(threads))

    def save(self, directory):
        """Write a model directory (config.json + model.safetensors) that `lowpass predict` reads. A directory
        holding a training run (best.safetensors, checkpoints/, a config.json with more than "model") is refused:
        use a new directory, or save_weights."""
        self._m.save(str(directory))

    def save_weights(self, path):
        """Write the state_dict alone as safetensors."""
        self._m.save_weights(str(path))

    def save_checkpoint(self, path):
        """Write a training checkpoint: weights, the optimiser's state, the steps taken and the RNG (the format
        `lowpass train` writes), so that resume() goes on where train_step stopped."""
        self._m.save_checkpoint(str(path))

    def resume(self, checkpoint_path):
        """Read a training checkpoint (save_checkpoint's, or a `lowpass train` run's checkpoints/last.safetensors)
        into this model: weights, optimiser state, step count, RNG. The next train_step's lr applies."""
        self._m.resume(str(checkpoint_path))

    # ---- inference ----
    def predict(self, x, control=None, batch=64):
        """x (N, 4, L) one-hot. binary: logits (N, T); profile: (profile_logits (N, T, S, O), log_counts (N, T, S))."""
        return self._m.predict(_f32(x, "x"), _f32(control, "control"), int(batch))

    def attribute(self, x, method="grad", target=None, control=None, refs=-1, seed=20200219, first_index=0,
                  ig_steps=50, batch=16, max_batch=64, details=False, ig_tolerance=0.05, ig_max_steps=450):
        """Attribution scores (N, 4, L), hypothetical (what modisco-lite reads), by any method of
        `lowpass attribute`: grad | gradxinput | deepshap_ref | deepshap | ism | ig. target: None (the
        model's default) or logits[:t] | profile[:t] | profile_raw[:t] | counts[:t]. details=True returns
        a dict with hypothetical, actual (= hypothetical * x), delta and delta_relative (deepshap, ig) and ig_steps
        (ig: the points each example used; one whose relative completeness error exceeds ig_tolerance is redone
        with 3x the points while that stays <= ig_max_steps)."""
        r = self._m.attribute(_f32(x, "x"), method, target or "", int(refs), int(seed), int(first_index),
                              int(ig_steps), float(ig_tolerance), int(ig_max_steps), int(batch), int(max_batch),
                              _f32(control, "control"))
        return r if details else r["hypothetical"]

    # ---- training ----
    def _step(self, update, x, y, status, control, prior, weight, freq_limit, softness, smooth_sigma, l2_weight,
              attribution_mode, optimizer, lr, counts_loss_weight):
        x = _f32(x, "x")
        return self._m.train_step(x, _f32(y, "y"), _status(status, x.shape[0]), _f32(control, "control"), update,
                                  prior, weight, freq_limit, softness, float(smooth_sigma), float(l2_weight),
                                  attribution_mode, optimizer, float(lr), float(counts_loss_weight))

    def train_step(self, x, y, status=None, control=None, prior="fourier", weight=None, freq_limit=None,
                   softness=0.2, smooth_sigma=3.0, l2_weight=0.0, attribution_mode="eval", optimizer="adam",
                   lr=1e-3, counts_loss_weight=20.0):
        """One optimiser step on task + weight * prior for this batch; returns {task, prior, total, step}
        (the losses before the update). y: binary (N, T) in {1, 0, -1}; profile (N, T, S, O) counts.
        status (N): 1 where the prior applies (default: binary any label 1, profile all). prior: fourier |
        smoothness | sparsity | none; weight/freq_limit default to the model type's (binary 1 and
        round(0.15 L), i.e. 150 at L 1000; profile 50 and round(200 L / 1346)); softness None = hard cut-off.
        attribution_mode: eval (lowpass train's default) or train (the reference's). Inputs must be finite. The
        optimiser state persists between calls but is not saved by save()."""
        return self._step(True, x, y, status, control, prior, weight, freq_limit, softness, smooth_sigma, l2_weight,
                          attribution_mode, optimizer, lr, counts_loss_weight)

    def losses(self, x, y, status=None, control=None, prior="fourier", weight=None, freq_limit=None, softness=0.2,
               smooth_sigma=3.0, l2_weight=0.0, attribution_mode="eval", counts_loss_weight=20.0):
        """The losses train_step would report, without an update (running statistics and the dropout RNG
        unchanged)."""
        return self._step(False, x, y, status, control, prior, weight, freq_limit, softness, smooth_sigma, l2_weight,
                          attribution_mode, "adam", 1e-3, counts_loss_weight)

    def __repr__(self):
        return (f"lowpass.Model(type={self.type!r}, dtype={self.dtype!r}, input_length={self.input_length}, "
                f"tasks={self.tasks})")


def load(path, config=None, weights="best", threads=0):
    """Load a model directory (config.json + best/model.safetensors) or a .safetensors state_dict
    (lowpass- or PyTorch-written; config: a dict, JSON text or config.json path, or None to use the
    config.json beside the file)."""
    if isinstance(config, dict):
        config = _json.dumps(config)
    return Model(_lowpass.Model.load(str(path), str(config) if config is not None else "", weights, int(threads)))


def create(config, seed=0, threads=0):
    """A freshly initialised model from its `model` config section (dict or JSON text)."""
    if isinstance(config, dict):
        config = _json.dumps(config)
    return Model(_lowpass.Model.create(config, int(seed), int(threads)))


def prior_loss(attr, status=None, type="fourier", freq_limit=None, softness=0.2, sigma=3.0, grad=False):
    """A prior (fourier | smoothness | sparsity) on given attributions attr (N, 4, L), mean over rows with
    status 1 (default all), computed in float64. freq_limit None: round(0.15 L) (150 at L 1000); a
    freq_limit >= L/2 is refused, as in training. grad=True returns (loss, d loss / d attr)."""
    attr = _f32(attr, "attr")
    return _lowpass.prior_loss(attr, _status(status, attr.shape[0]) if attr.ndim else [], type,
                               None if freq_limit is None else int(freq_limit), softness, float(sigma), bool(grad))


def fourier_prior_loss(attr, status=None, freq_limit=None, softness=0.2, sigma=3.0, grad=False):
    """The Fourier attribution prior on given attributions attr (N, 4, L): mean over status==1 rows of
    1 - sum_k w_k m_k / sum_j m_j, m = |rfft(smooth_sigma(sum_bases |attr|))| (docs/fourier_prior.md)."""
    return prior_loss(attr, status, "fourier", freq_limit, softness, sigma, grad)
