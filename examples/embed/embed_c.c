/* The same tool through the installed C API (lowpass/lowpass_c.h): create, predict, prior loss, errors.
 * Build: make (needs lowpass.pc on PKG_CONFIG_PATH); run: ./embed_c */
#include <lowpass/lowpass_c.h>

#include <stdio.h>
#include <string.h>

int main(void) {
  enum { N = 4, L = 60 };
  static float x[N * 4 * L];
  for (int i = 0; i < N * L; ++i) x[((i / L) * 4 + (i * 7 + i / 3 + i / L) % 4) * L + i % L] = 1.f; /* a different sequence per row */
  lp_model* m = NULL;
  if (lp_model_create("{\"type\": \"binary\", \"input_length\": 60, \"conv_depths\": [4], \"conv_filter_sizes\": [7],"
                      " \"max_pool_size\": 6, \"max_pool_stride\": 6, \"fc_sizes\": [5]}", 4, 1, &m) != LP_OK) {
    fprintf(stderr, "embed_c: %s\n", lp_last_error());
    return 1;
  }
  lp_view xv = lp_view_3d(x, N, 4, L);
  lp_array* logits = NULL;
  lp_array* hyp = NULL;
  lp_attr_options ao;
  lp_attr_options_init(&ao);
  double prior = 0;
  if (lp_model_predict(m, &xv, NULL, &logits, NULL) != LP_OK || lp_model_attribute(m, &xv, NULL, &ao, &hyp) != LP_OK) {
    fprintf(stderr, "embed_c: %s\n", lp_last_error());
    return 1;
  }
  lp_view hv = lp_view_3d(lp_array_data(hyp), N, 4, L);
  if (lp_fourier_prior_loss(&hv, NULL, 20, 0.2, 3.0, &prior, NULL) != LP_OK) return 1;
  printf("%s: logits[0] %.5f, Fourier prior of the input gradients %.5f\n", lp_version(), lp_array_data(logits)[0], prior);
  lp_view bad = lp_view_3d(x, N, 4, L - 1);
  lp_array* none = NULL;
  if (lp_model_predict(m, &bad, NULL, &none, NULL) != LP_ERR_INVALID_ARGUMENT || !strstr(lp_last_error(), "input_length")) {
    fprintf(stderr, "embed_c: a wrong length was not reported\n");
    return 1;
  }
  printf("a wrong length is reported: %s\n", lp_last_error());
  lp_array_free(logits);
  lp_array_free(hyp);
  lp_model_free(m);
  return 0;
}
