# The Python module against NumPy references: shapes and dtypes, no-copy inputs and self-owning outputs,
# the Fourier prior vs numpy.fft (and its gradient vs finite differences), attributions vs finite
# differences, training lowering the loss, save/load, errors. Run: scripts/test_python.sh
import gc

import numpy as np
import pytest

import lowpass

BINARY = {"type": "binary", "dtype": "float64", "input_length": 50, "num_tasks": 2, "conv_depths": [6, 5],
          "conv_filter_sizes": [5, 3], "max_pool_size": 4, "max_pool_stride": 4, "fc_sizes": [7]}
PROFILE = {"type": "profile", "input_length": 41, "output_length": 19, "num_tasks": 2, "num_strands": 2,
           "controls": "matched", "dil_conv_filter_sizes": [5, 3, 3], "dil_conv_dilations": [1, 2, 4],
           "dil_conv_depths": 6, "prof_conv_kernel_size": 7}


def onehot(n, length, seed):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 4, length), np.float32)
    idx = rng.integers(0, 4, (n, length))
    for b in range(n):
        x[b, idx[b], np.arange(length)] = 1
    x[:, :, rng.random(length) < 0.03] = 0  # some N columns
    return x


def np_fourier_prior(attr, status, freq_limit, softness, sigma):
    """REFERENCE §1.2 with numpy: a = smooth(sum |attr|), m = |rfft(a)|, 1 - sum_k w_k m_k / sum_j m_j."""
    a = np.abs(attr.astype(np.float64)).sum(axis=1)
    if sigma > 0:
        r = int(sigma + 0.5)  # scipy.ndimage: radius int(truncate * sigma + 0.5), truncate 1
        k = np.exp(-0.5 * np.arange(-r, r + 1) ** 2 / sigma ** 2)
        k /= k.sum()
        a = np.stack([np.convolve(np.pad(row, r), k, mode="valid") for row in a])  # zero-padded
    a = a[np.asarray(status) == 1]
    if len(a) == 0:
        return 0.0
    m = np.abs(np.fft.rfft(a, axis=1))
    den = m.sum(axis=1, keepdims=True)
    den[den == 0] = 1
    m = (m / den)[:, 1:]
    kk = np.arange(1, m.shape[1] + 1)
    w = np.ones(len(kk))
    beyond = kk > freq_limit
    w[beyond] = 0.0 if softness is None else 1 / (1 + (kk[beyond] - freq_limit) ** softness)
    return float((1 - (m * w).sum(axis=1)).mean())


def test_module_surface():
    assert lowpass.__version__
    assert "lowpass" in lowpass.version_string()
    m = lowpass.create(BINARY, seed=1, threads=1)
    assert (m.type, m.dtype, m.input_length, m.tasks) == ("binary", "float64", 50, 2)
    assert m.config["conv_depths"] == [6, 5]
    sd = m.state_dict()
    assert list(sd)[0] == "conv_layers.0.weight" and sd["conv_layers.0.weight"].shape == (6, 4, 5)
    assert "lowpass.Model" in repr(m)


def test_predict_inputs_any_layout_outputs_own_their_memory():
    m = lowpass.create(BINARY, seed=2, threads=1)
    x = onehot(5, 50, 0)
    y = m.predict(x)
    assert y.shape == (5, 2) and y.dtype == np.float32
    np.testing.assert_array_equal(m.predict(x.astype(np.float64)), y)  # converted once
    np.testing.assert_array_equal(m.predict(x.astype(np.uint8)), y)
    xf = np.asfortranarray(x)
    np.testing.assert_array_equal(m.predict(xf), y)
    big = np.zeros((5, 4, 100), np.float32)
    big[:, :, ::2] = x
    np.testing.assert_array_equal(m.predict(big[:, :, ::2]), y)  # a strided view
    np.testing.assert_array_equal(m.predict(x, batch=1), y)
    np.testing.assert_array_equal(m.predict(x[2:3])[0], y[2])
    del m
    gc.collect()
    assert np.isfinite(y).all() and y.flags.owndata is False  # a view over engine memory, still valid
    y2 = y.copy()
    assert (y2 == y).all()


def test_profile_predict_and_control():
    m = lowpass.create(PROFILE, seed=3, threads=1)
    assert m.uses_control and m.strands == 2
    x = onehot(3, 41, 1)
    c = np.arange(3 * 2 * 2 * 19, dtype=np.float32).reshape(3, 2, 2, 19) % 4
    prof, counts = m.predict(x, control=c)
    assert prof.shape == (3, 2, 2, 19) and counts.shape == (3, 2, 2)
    with pytest.raises(ValueError, match="control"):
        m.predict(x)


def test_errors_are_value_errors_naming_the_problem(tmp_path):
    m = lowpass.create(BINARY, seed=2, threads=1)
    with pytest.raises(ValueError, match="input_length is 50"):
        m.predict(onehot(2, 49, 0))
    with pytest.raises(ValueError, match=r"\(N, 4, L\)"):
        m.predict(np.zeros((2, 3, 50), np.float32))
    with pytest.raises(ValueError, match="does not exist|not a directory"):
        lowpass.load(tmp_path / "missing")
    with pytest.raises(ValueError):
        lowpass.create({"type": "binary", "bogus": 1})
    with pytest.raises(ValueError, match="status"):
        lowpass.fourier_prior_loss(np.ones((2, 4, 8), np.float32), status=[1])
    with pytest.raises(ValueError, match="status must hold integers"):  # int() once read 0.5 as 0
        lowpass.fourier_prior_loss(np.ones((2, 4, 8), np.float32), status=[1, 0.5])
    assert lowpass.fourier_prior_loss(np.ones((2, 4, 8), np.float32), status=np.array([1.0, 0.0])) == \
        lowpass.fourier_prior_loss(np.ones((2, 4, 8), np.float32), status=[1, 0])


def test_save_load_round_trip(tmp_path):
    m = lowpass.create(BINARY, seed=4, threads=1)
    x = onehot(4, 50, 2)
    m.save(tmp_path / "model")
    np.testing.assert_array_equal(lowpass.load(tmp_path / "model").predict(x), m.predict(x))
    m.save_weights(tmp_path / "w.safetensors")
    np.testing.assert_array_equal(lowpass.load(tmp_path / "w.safetensors", config=BINARY).predict(x), m.predict(x))


@pytest.mark.parametrize("method", ["grad", "gradxinput", "deepshap_ref", "deepshap", "ism", "ig"])
def test_attribute_every_method(method):
    m = lowpass.create(BINARY, seed=5, threads=1)
    x = onehot(3, 50, 3)
    r = m.attribute(x, method=method, refs=3, ig_steps=8, details=True)
    assert r["hypothetical"].shape == (3, 4, 50)
    np.testing.assert_allclose(r["actual"], r["hypothetical"] * x, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(m.attribute(x, method=method, refs=3, ig_steps=8, batch=1), r["hypothetical"])
    if method in ("deepshap", "ig"):
        assert len(r["delta"]) == 3
    if method == "ig":  # 8 points, or 3x while above the 5 % completeness error and within 450 points
        assert len(r["ig_steps"]) == 3 and all(s in (8, 24, 72, 216) for s in r["ig_steps"])
        assert all(d <= 0.05 or s == 216 for d, s in zip(r["delta_relative"], r["ig_steps"]))
        fixed = m.attribute(x, method=method, ig_steps=8, ig_tolerance=0, details=True)
        assert fixed["ig_steps"] == [8, 8, 8]


def test_grad_attribution_equals_finite_differences():
    m = lowpass.create(BINARY, seed=6, threads=1)
    x = onehot(2, 50, 4)
    g = m.attribute(x, method="grad")
    rng = np.random.default_rng(0)
    h = 1 / 256
    for i in rng.integers(0, x.size, 10):
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += h
        xm.flat[i] -= h
        b = i // (4 * 50)
        fd = (m.predict(xp)[b].astype(np.float64).sum() - m.predict(xm)[b].astype(np.float64).sum()) / (2 * h)
        assert g.flat[i] == pytest.approx(fd, rel=2e-3, abs=1e-3)


@pytest.mark.parametrize("length", [1, 2, 17, 64, 101])
def test_fourier_prior_equals_numpy_and_its_gradient_finite_differences(length):
    rng = np.random.default_rng(length)
    a = (rng.choice([-1, 1], (3, 4, length)) * rng.uniform(0.1, 1, (3, 4, length))).astype(np.float32)
    status = [1, 0, 1]
    with pytest.raises(ValueError, match="freq_limit"):  # K >= L/2 weights every frequency 1: refused, as in training
        lowpass.fourier_prior_loss(a, status, freq_limit=length // 2)
    for K, s, sigma in [(5, 0.2, 3.0), (2, None, 0.0), (150, 0.2, 1.5)]:
        K = min(K, length // 2 - 1)
        if K < 0:
            continue
        v, g = lowpass.fourier_prior_loss(a, status, freq_limit=K, softness=s, sigma=sigma, grad=True)
        assert v == pytest.approx(np_fourier_prior(a, status, K, s, sigma), rel=1e-9, abs=1e-12)
        assert g.shape == a.shape and (g[1] == 0).all()
        for i in rng.integers(0, a.size, 5):
            ap, am = a.copy(), a.copy()
            ap.flat[i] += 1 / 1024
            am.flat[i] -= 1 / 1024
            fd = (np_fourier_prior(ap, status, K, s, sigma) - np_fourier_prior(am, status, K, s, sigma)) * 512
            assert g.flat[i] == pytest.approx(fd, rel=1e-3, abs=1e-4)
    assert lowpass.fourier_prior_loss(np.zeros((2, 4, 9), np.float32), [0, 0]) == 0.0  # default K round(0.15 L)
    # The baselines are exposed too: total variation of sum |attr|.
    t = np.zeros((1, 4, 4), np.float32)
    t[0, 0, 0], t[0, 1, 2] = 1, 3
    assert lowpass.prior_loss(t, type="smoothness") == pytest.approx(7.0)


def test_train_step_lowers_the_loss_and_losses_changes_nothing():
    for cfg in (BINARY, PROFILE):
        m = lowpass.create(cfg, seed=7, threads=1)
        n = 6
        x = onehot(n, m.input_length, 5)
        if m.type == "binary":
            y, c = (np.arange(n * 2).reshape(n, 2) % 2).astype(np.float32), None
        else:
            y = (np.arange(n * 2 * 2 * 19).reshape(n, 2, 2, 19) * 7 % 4).astype(np.float32)
            c = (np.arange(n * 2 * 2 * 19).reshape(n, 2, 2, 19) % 3).astype(np.float32)
        kw = dict(control=c, freq_limit=3, attribution_mode="eval")
        before = m.predict(x, control=c)
        first = m.losses(x, y, **kw)
        again = m.predict(x, control=c)
        for p, q in zip(np.atleast_1d(before) if m.type == "binary" else before,
                        np.atleast_1d(again) if m.type == "binary" else again):
            np.testing.assert_array_equal(p, q)
        assert first["prior"] > 0 and first["step"] == 0
        s = m.train_step(x, y, lr=0.01, **kw)
        assert s["step"] == 1 and s["total"] == pytest.approx(first["total"], rel=1e-9)
        for _ in range(15):
            m.train_step(x, y, lr=0.01, **kw)
        assert m.losses(x, y, **kw)["total"] < first["total"]
        with pytest.raises(ValueError, match="y must be"):
            m.train_step(x, y[:, :1], **kw)


def test_train_step_defaults_to_lowpass_trains_attribution_mode_eval():
    x, y = onehot(4, 50, 6), (np.arange(8).reshape(4, 2) % 2).astype(np.float32)
    d = lowpass.create(BINARY, seed=8, threads=1).losses(x, y, freq_limit=3)
    e = lowpass.create(BINARY, seed=8, threads=1).losses(x, y, freq_limit=3, attribution_mode="eval")
    t = lowpass.create(BINARY, seed=8, threads=1).losses(x, y, freq_limit=3, attribution_mode="train")
    assert d == e and d["prior"] != t["prior"]


def test_non_finite_and_refused_inputs_are_value_errors(tmp_path):
    m = lowpass.create(BINARY, seed=2, threads=1)
    x = onehot(2, 50, 1)
    x[1, 2, 7] = np.nan
    y = np.zeros((2, 2), np.float32)
    for call in (lambda: m.predict(x), lambda: m.attribute(x), lambda: m.train_step(x, y)):
        with pytest.raises(ValueError, match=r"x\[1, 2, 7\] is nan"):
            call()
    x[1, 2, 7] = 0
    with pytest.raises(ValueError, match="refs must be >= 1"):
        m.attribute(x, method="deepshap", refs=0)
    with pytest.raises(ValueError, match="status\\[0\\]"):
        m.train_step(x, np.zeros((2, 2), np.float32), status=[3, 1], freq_limit=3)
    with pytest.raises(ValueError, match="neither JSON"):
        lowpass.create("not json")
    (tmp_path / "run").mkdir()
    m.save_weights(tmp_path / "run" / "best.safetensors")
    with pytest.raises(ValueError, match="best.safetensors"):
        m.save(tmp_path / "run")


def test_losses_leaves_the_dropout_rng_alone():
    cfg = dict(BINARY, conv_drop_rate=0.3, fc_drop_rate=0.3)
    a, b = lowpass.create(cfg, seed=9, threads=1), lowpass.create(cfg, seed=9, threads=1)
    x, y = onehot(4, 50, 7), (np.arange(8).reshape(4, 2) % 2).astype(np.float32)
    first = a.losses(x, y, freq_limit=3)
    assert a.losses(x, y, freq_limit=3) == first
    sa, sb = a.train_step(x, y, freq_limit=3), b.train_step(x, y, freq_limit=3)
    assert sa["total"] == sb["total"] and sa["total"] == pytest.approx(first["total"], rel=1e-9)


def test_one_model_shared_by_threads_while_the_gil_is_released():
    """predict/attribute release the GIL: threads on one Model give one thread's results; train_step runs alone."""
    from concurrent.futures import ThreadPoolExecutor
    m = lowpass.create(BINARY, seed=3, threads=1)
    x = onehot(24, 50, 5)
    p0, a0 = m.predict(x), m.attribute(x, method="deepshap", refs=3)
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda _: (m.predict(x), m.attribute(x, method="deepshap", refs=3)), range(8)))
    for p, a in got:
        np.testing.assert_array_equal(p, p0)
        np.testing.assert_array_equal(a, a0)
    y = np.zeros((24, 2), np.float32)
    y[::3] = 1
    with ThreadPoolExecutor(2) as ex:
        steps = ex.submit(lambda: [m.train_step(x, y, freq_limit=4, lr=0.05)["step"] for _ in range(3)])
        reads = ex.submit(lambda: [m.predict(x) for _ in range(6)])
        assert steps.result() == [1, 2, 3]
        assert all(r.shape == (24, 2) and np.isfinite(r).all() for r in reads.result())
