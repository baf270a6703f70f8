/* The C API (include/lowpass/lowpass_c.h), compiled as C: create/save/load round trip, predict and
 * attribute shapes, batch independence, a training step lowering the loss, the prior loss and its
 * gradient by finite differences, error codes and messages. Run: build-api/tests/lowpass_c_tests */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "include/lowpass/lowpass_c.h"

static int failures = 0;
#define CHECK(cond)                                                             \
  do {                                                                          \
    if (!(cond)) {                                                              \
      fprintf(stderr, "%s:%d: CHECK(%s) failed (%s)\n", __FILE__, __LINE__, #cond, lp_last_error()); \
      ++failures;                                                               \
    }                                                                           \
  } while (0)

static const char* kBinary =
    "{\"type\": \"binary\", \"input_length\": 33, \"num_tasks\": 1, \"conv_depths\": [5, 4],"
    " \"conv_filter_sizes\": [5, 3], \"max_pool_size\": 4, \"max_pool_stride\": 4, \"fc_sizes\": [6]}";

static void onehot(float* x, int64_t n, int64_t l, unsigned seed) {
  memset(x, 0, sizeof(float) * (size_t)(n * 4 * l));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < l; ++i) {
      seed = seed * 1103515245u + 12345u;
      x[(b * 4 + (seed >> 16) % 4) * l + i] = 1.f;
    }
}

int main(void) {
  enum { N = 6, L = 33 };
  static float x[N * 4 * L];
  onehot(x, N, L, 7);
  CHECK(strstr(lp_version(), "lowpass") != NULL);

  lp_model* m = NULL;
  CHECK(lp_model_create(kBinary, 3, 1, &m) == LP_OK);
  if (!m) return 1;
  lp_model_info info;
  CHECK(lp_model_get_info(m, &info) == LP_OK);
  CHECK(strcmp(info.type, "binary") == 0 && info.input_length == L && info.tasks == 1 && !info.uses_control);

  /* predict: (N, T); predicting one row alone gives that row's value. */
  lp_view xv = lp_view_3d(x, N, 4, L);
  lp_array* logits = NULL;
  CHECK(lp_model_predict(m, &xv, NULL, &logits, NULL) == LP_OK);
  CHECK(lp_array_ndim(logits) == 2 && lp_array_shape(logits)[0] == N && lp_array_shape(logits)[1] == 1);
  lp_view x3 = lp_view_3d(x + 3 * 4 * L, 1, 4, L);
  lp_array* one = NULL;
  CHECK(lp_model_predict(m, &x3, NULL, &one, NULL) == LP_OK);
  CHECK(lp_array_size(one) == 1 && lp_array_data(one)[0] == lp_array_data(logits)[3]);
  lp_array_free(one);

  /* save + load: identical predictions. */
  char dir[256];
  snprintf(dir, sizeof dir, "/tmp/lowpass_c_api_%d", (int)getpid());
  CHECK(lp_model_save(m, dir) == LP_OK);
  lp_model* m2 = NULL;
  CHECK(lp_model_load(dir, NULL, 1, &m2) == LP_OK);
  lp_array* logits2 = NULL;
  CHECK(m2 && lp_model_predict(m2, &xv, NULL, &logits2, NULL) == LP_OK);
  if (logits2) CHECK(memcmp(lp_array_data(logits), lp_array_data(logits2), sizeof(float) * N) == 0);
  lp_array_free(logits2);
  lp_model_free(m2);

  /* attribute: gradxinput is zero off the one-hot and grad × x on it. */
  lp_attr_options ao;
  lp_attr_options_init(&ao);
  CHECK(ao.ig_steps == 50 && ao.ig_tolerance == 0.05 && ao.ig_max_steps == 450);
  lp_array *g = NULL, *gx = NULL;
  CHECK(lp_model_attribute(m, &xv, NULL, &ao, &g) == LP_OK);
  ao.method = "gradxinput";
  CHECK(lp_model_attribute(m, &xv, NULL, &ao, &gx) == LP_OK);
  if (g && gx) {
    CHECK(lp_array_size(g) == N * 4 * L);
    double nz = 0;
    for (int64_t i = 0; i < N * 4 * L; ++i) {
      CHECK(fabsf(lp_array_data(gx)[i] - lp_array_data(g)[i] * x[i]) <= 1e-6f * (1 + fabsf(lp_array_data(g)[i])));
      nz += fabsf(lp_array_data(g)[i]);
    }
    CHECK(nz > 0);
  }
  lp_array_free(g);
  lp_array_free(gx);

  /* train_step: Adam on a fixed batch lowers its loss. */
  float y[N];
  int status[N];
  for (int i = 0; i < N; ++i) y[i] = (float)(i % 2), status[i] = i % 2;
  lp_view yv = {y, 2, {N, 1, 0, 0}};
  lp_train_options to;
  lp_train_options_init(&to);
  to.lr = 0.01;
  to.freq_limit = 4;
  lp_step_result first, last;
  CHECK(lp_model_train_step(m, &xv, &yv, status, NULL, &to, &first) == LP_OK);
  for (int i = 0; i < 20; ++i) CHECK(lp_model_train_step(m, &xv, &yv, status, NULL, &to, &last) == LP_OK);
  CHECK(last.step == 21);
  CHECK(last.total < first.total);
  /* A checkpoint resumed into another model goes on with the same step: step 22 equals the original's. */
  {
    char ck[512];
    snprintf(ck, sizeof ck, "%s/ck.safetensors", dir);
    CHECK(lp_model_save_checkpoint(m, ck) == LP_OK);
    lp_model* r = NULL;
    CHECK(lp_model_load(dir, NULL, 1, &r) == LP_OK);
    CHECK(r && lp_model_resume(r, ck) == LP_OK);
    lp_step_result s1, s2;
    for (int k = 0; k < 2; ++k) { /* the second step's losses follow the first update: Adam's state must match */
      CHECK(lp_model_train_step(m, &xv, &yv, status, NULL, &to, &s1) == LP_OK);
      if (r) CHECK(lp_model_train_step(r, &xv, &yv, status, NULL, &to, &s2) == LP_OK);
    }
    CHECK(s1.step == 23 && s2.step == 23 && s1.total == s2.total);
    CHECK(lp_model_resume(r, "no_such_checkpoint.safetensors") != LP_OK);
    lp_model_free(r);
  }

  /* The prior on given attributions and its gradient by central differences. */
  static float a[2 * 4 * 20], ga[2 * 4 * 20];
  for (int i = 0; i < 2 * 4 * 20; ++i) a[i] = (float)(0.2 + 0.8 * ((i * 37) % 11) / 11.0) * (i % 3 ? 1.f : -1.f);
  lp_view av = lp_view_3d(a, 2, 4, 20);
  double loss = -1, lp = 0, lm = 0;
  CHECK(lp_fourier_prior_loss(&av, NULL, 3, 0.2, 1.0, &loss, ga) == LP_OK);
  CHECK(loss > 0 && loss < 1);
  for (int k = 0; k < 5; ++k) {
    int i = (k * 29) % (2 * 4 * 20);
    float keep = a[i], h = 1.0f / 1024;
    a[i] = keep + h;
    lp_fourier_prior_loss(&av, NULL, 3, 0.2, 1.0, &lp, NULL);
    a[i] = keep - h;
    lp_fourier_prior_loss(&av, NULL, 3, 0.2, 1.0, &lm, NULL);
    a[i] = keep;
    double fd = (lp - lm) / (2 * h);
    CHECK(fabs(ga[i] - fd) <= 1e-3 * fabs(fd) + 1e-4);
  }

  /* Errors: codes and a message naming the problem; the message is per thread and stays until the next failure. */
  lp_view bad = lp_view_3d(x, N, 4, L - 1);
  lp_array* none = NULL;
  CHECK(lp_model_predict(m, &bad, NULL, &none, NULL) == LP_ERR_INVALID_ARGUMENT);
  CHECK(none == NULL);
  CHECK(strstr(lp_last_error(), "input_length") != NULL);
  /* lp_train_options: attribution_mode (NULL = eval), counts_loss_weight (< 0 = 20) and l2_weight reach the step. */
  lp_train_options_init(&to);
  CHECK(to.attribution_mode == NULL && to.counts_loss_weight < 0 && to.l2_weight == 0);
  to.freq_limit = 4;
  to.attribution_mode = "bogus";
  CHECK(lp_model_train_step(m, &xv, &yv, status, NULL, &to, &first) == LP_ERR_INVALID_ARGUMENT);
  CHECK(strstr(lp_last_error(), "attribution_mode") != NULL);
  to.attribution_mode = "train";
  to.l2_weight = -1;
  CHECK(lp_model_train_step(m, &xv, &yv, status, NULL, &to, &first) == LP_ERR_INVALID_ARGUMENT);
  CHECK(strstr(lp_last_error(), "l2_weight") != NULL);
  to.l2_weight = 0;
  to.counts_loss_weight = NAN;
  CHECK(lp_model_train_step(m, &xv, &yv, status, NULL, &to, &first) == LP_ERR_INVALID_ARGUMENT);
  CHECK(strstr(lp_last_error(), "counts_loss_weight") != NULL);
  to.counts_loss_weight = -1;
  CHECK(lp_model_train_step(m, &xv, &yv, status, NULL, &to, &first) == LP_OK);
  /* x's shape is checked before status is read: a negative N is an invalid argument, not an internal error. */
  lp_view negx = lp_view_3d(x, -1, 4, L);
  CHECK(lp_model_train_step(m, &negx, &yv, status, NULL, &to, &first) == LP_ERR_INVALID_ARGUMENT);
  /* Status values other than 0 and 1 are refused. */
  int bad_status[N] = {0, 1, 2, 0, 1, 0};
  CHECK(lp_model_train_step(m, &xv, &yv, bad_status, NULL, &to, &first) == LP_ERR_INVALID_ARGUMENT);
  CHECK(strstr(lp_last_error(), "status[2]") != NULL);
  /* freq_limit < 0 is the default round(0.15 L) (3 at L 20), as in lp_train_options; K >= L/2 is refused. */
  double dflt = -1;
  CHECK(lp_fourier_prior_loss(&av, NULL, -1, 0.2, 1.0, &dflt, NULL) == LP_OK);
  CHECK(dflt == loss);
  CHECK(lp_fourier_prior_loss(&av, NULL, 10, 0.2, 1.0, &dflt, NULL) == LP_ERR_INVALID_ARGUMENT);
  CHECK(strstr(lp_last_error(), "freq_limit") != NULL);

  lp_model* nm = NULL;
  CHECK(lp_model_load("/nonexistent/dir", NULL, 1, &nm) == LP_ERR_INVALID_ARGUMENT && nm == NULL);
  CHECK(strstr(lp_last_error(), "/nonexistent/dir") != NULL);
  CHECK(lp_model_predict(NULL, &xv, NULL, &none, NULL) == LP_ERR_INVALID_ARGUMENT);
  CHECK(strstr(lp_last_error(), "model") != NULL);
  CHECK(lp_model_create("{\"type\": \"nope\"}", 0, 1, &nm) == LP_ERR_INVALID_ARGUMENT);

  /* Output pointers are NULL after every failure, also one found before the call reached them (a NULL model/path). */
  lp_array* stale = logits; /* a value the call must overwrite, not free */
  lp_array* stale_lc = logits;
  CHECK(lp_model_predict(NULL, &xv, NULL, &stale, &stale_lc) == LP_ERR_INVALID_ARGUMENT && stale == NULL &&
        stale_lc == NULL);
  stale = logits;
  CHECK(lp_model_attribute(m, NULL, NULL, NULL, &stale) == LP_ERR_INVALID_ARGUMENT && stale == NULL);
  nm = m;
  CHECK(lp_model_load(NULL, NULL, 1, &nm) == LP_ERR_INVALID_ARGUMENT && nm == NULL);
  nm = m;
  CHECK(lp_model_create(NULL, 0, 1, &nm) == LP_ERR_INVALID_ARGUMENT && nm == NULL);
  /* An empty batch may have NULL data (an empty result, as in C++); NULL data with a non-empty shape is refused. */
  lp_view empty = lp_view_3d(NULL, 0, 4, L);
  CHECK(lp_model_predict(m, &empty, NULL, &stale, NULL) == LP_OK && lp_array_size(stale) == 0 &&
        lp_array_ndim(stale) == 2 && lp_array_shape(stale)[0] == 0);
  lp_array_free(stale);
  CHECK(lp_fourier_prior_loss(&empty, NULL, -1, 0.2, 1.0, &dflt, NULL) == LP_OK && dflt == 0);
  lp_view nodata = lp_view_3d(NULL, N, 4, L);
  CHECK(lp_model_predict(m, &nodata, NULL, &stale, NULL) == LP_ERR_INVALID_ARGUMENT && stale == NULL);
  CHECK(strstr(lp_last_error(), "x.data is NULL") != NULL);
  /* A NaN weight or softness is refused, as in C++ (it once fell back to the default and to a hard cut-off). */
  lp_train_options_init(&to);
  to.freq_limit = 4;
  to.prior_weight = NAN;
  CHECK(lp_model_train_step(m, &xv, &yv, status, NULL, &to, &first) == LP_ERR_INVALID_ARGUMENT);
  CHECK(strstr(lp_last_error(), "weight") != NULL);
  to.prior_weight = -1;
  to.softness = NAN;
  CHECK(lp_model_train_step(m, &xv, &yv, status, NULL, &to, &first) == LP_ERR_INVALID_ARGUMENT);
  CHECK(strstr(lp_last_error(), "softness") != NULL);
  CHECK(lp_fourier_prior_loss(&av, NULL, -1, NAN, 1.0, &dflt, NULL) == LP_ERR_INVALID_ARGUMENT);
  CHECK(strstr(lp_last_error(), "softness") != NULL);

  lp_array_free(logits);
  lp_model_free(m);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  if (failures) {
    fprintf(stderr, "test_c_api: %d check(s) failed\n", failures);
    return 1;
  }
  printf("test_c_api: all checks passed\n");
  return 0;
}
