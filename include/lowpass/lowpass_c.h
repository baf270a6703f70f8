/* lowpass C API: opaque model/array handles, lp_status codes, a thread-local last-error message.
 * Same operations as the C++ API (lowpass.h): load/save, predict, attribute, train_step, prior loss.
 * Output pointers (lp_array**, lp_model**) are set to NULL on entry, even when the call then fails: free
 * what a variable holds before passing it again. Reference: docs/api.md (in the source tree). */
#ifndef LOWPASS_C_H
#define LOWPASS_C_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#pragma GCC visibility push(default) /* the library exports these declarations only (built with hidden visibility) */
#endif
#ifdef __cplusplus
extern "C" {
#endif

typedef enum lp_status {
  LP_OK = 0,
  LP_ERR_INVALID_ARGUMENT = 1, /* a NULL where a value is needed, a bad shape, option or file */
  LP_ERR_OUT_OF_MEMORY = 2,   /* an allocation failed, in the wrapper or in the engine */
  LP_ERR_INTERNAL = 3          /* anything else; the message says what */
} lp_status;

/* The message of the last failed call on this thread ("" if none). Valid until the next failing
 * call on the same thread. */
const char* lp_last_error(void);
const char* lp_version(void); /* "lowpass 0.1.0 (CPU only)" */

/* An lp_model may be used from several threads: as Model in lowpass.h, predict/attribute/save run at once and
 * train_step/resume run alone. lp_model_free while another thread uses it is undefined. */
typedef struct lp_model lp_model;
typedef struct lp_array lp_array;

/* A borrowed, contiguous row-major float32 input: data plus up to 4 sizes (data may be NULL when a size is 0). */
typedef struct lp_view {
  const float* data;
  int ndim;
  int64_t shape[4];
} lp_view;
lp_view lp_view_3d(const float* data, int64_t n, int64_t c, int64_t l);

/* Arrays the library returns (owned by the caller: free with lp_array_free). */
int lp_array_ndim(const lp_array* a);
const int64_t* lp_array_shape(const lp_array* a);
int64_t lp_array_size(const lp_array* a);
const float* lp_array_data(const lp_array* a);
void lp_array_free(lp_array* a);

/* path: a model directory or a .safetensors state_dict; config: NULL, or a config.json path / JSON
 * text for a bare state_dict; threads >= 0 (0 = all cores). */
lp_status lp_model_load(const char* path, const char* config, int threads, lp_model** out);
lp_status lp_model_create(const char* model_config_json, uint64_t seed, int threads, lp_model** out);
lp_status lp_model_save(const lp_model* m, const char* dir);
/* A training checkpoint: weights + optimiser state + steps + RNG (Model::save_checkpoint / resume in lowpass.h);
 * resume also reads a `lowpass train` checkpoint (RUN/checkpoints/last.safetensors). */
lp_status lp_model_save_checkpoint(const lp_model* m, const char* path);
lp_status lp_model_resume(lp_model* m, const char* checkpoint_path);
void lp_model_free(lp_model* m);

typedef struct lp_model_info {
  const char* type;  /* "binary" | "profile" (valid while the model lives) */
  int64_t input_length, output_length, tasks, strands;
  int uses_control;
} lp_model_info;
lp_status lp_model_get_info(const lp_model* m, lp_model_info* info);

/* x (N, 4, L); control NULL or (N, T|1, S, O). binary: *out = logits (N, T), *log_counts = NULL;
 * profile: *out = profile logits (N, T, S, O), *log_counts = (N, T, S) (log_counts may be NULL). */
lp_status lp_model_predict(lp_model* m, const lp_view* x, const lp_view* control, lp_array** out,
                           lp_array** log_counts);

/* Option structs: always fill them with their lp_*_options_init first, then set what you need. Fields are added
 * between versions (the library's soname then changes); a zeroed struct does not give the defaults (e.g.
 * counts_loss_weight 0 switches the counts loss off, ig_tolerance 0 turns IG refinement off). */
typedef struct lp_attr_options {
  const char* method; /* grad | gradxinput | deepshap_ref | deepshap | ism | ig */
  const char* target; /* NULL = the model's default */
  int64_t refs;       /* >= 1, or -1 = the method's default */
  uint64_t seed;
  int64_t ig_steps;
  double ig_tolerance;  /* ig: relative completeness error that redoes an example with 3x the points (0: never) */
  int64_t ig_max_steps; /* ig: points per example at most */
} lp_attr_options;
/* grad, default target, seed 20200219, 50 steps, tolerance 0.05, at most 450 steps */
void lp_attr_options_init(lp_attr_options* o);
/* *hypothetical = (N, 4, L) hypothetical scores. */
lp_status lp_model_attribute(lp_model* m, const lp_view* x, const lp_view* control, const lp_attr_options* o,
                             lp_array** hypothetical);

typedef struct lp_train_options {
  const char* prior;     /* fourier | smoothness | sparsity | none */
  double prior_weight;   /* < 0 = the model type's default (binary 1, profile 50) */
  int64_t freq_limit;    /* < 0 = the model type's default (binary round(0.15 L), profile round(200 L / 1346)) */
  double softness;       /* <= 0 = hard cut-off */
  double smooth_sigma;
  const char* optimizer; /* adam | sgd */
  double lr;
  const char* attribution_mode; /* NULL = eval (lowpass train's default) | "train" (the reference's) */
  double counts_loss_weight;    /* profile models; < 0 = the default 20 */
  double l2_weight;             /* >= 0: l2_weight * sum of squared parameters added to the total */
} lp_train_options;
/* fourier, defaults, softness 0.2, sigma 3, adam, 1e-3, attribution_mode NULL (eval), counts weight 20, l2 0 */
void lp_train_options_init(lp_train_options* o);
typedef struct lp_step_result {
  double task, prior, total;
  int64_t step;
} lp_step_result;
/* y: binary (N, T) in {1, 0, -1 = ignore}, profile (N, T, S, O); status: NULL or N ints (1 = the prior applies,
 * 0 = not). out->prior is the unweighted prior; out->total = task + weight * prior (+ the l2 term). */
lp_status lp_model_train_step(lp_model* m, const lp_view* x, const lp_view* y, const int* status,
                              const lp_view* control, const lp_train_options* o, lp_step_result* out);

/* The Fourier prior on given attributions attr (N, 4, L); status NULL = all rows. freq_limit < 0 = the
 * default round(0.15 L), as in lp_train_options; a freq_limit >= L/2 is refused. softness <= 0 = hard
 * cut-off. grad: NULL or a buffer of N*4*L floats receiving d loss / d attr. */
lp_status lp_fourier_prior_loss(const lp_view* attr, const int* status, int64_t freq_limit, double softness,
                                double smooth_sigma, double* loss, float* grad);

#ifdef __cplusplus
}
#endif
#if defined(__GNUC__)
#pragma GCC visibility pop
#endif
#endif /* LOWPASS_C_H */
