# Measured ceilings of the GPU for bench/gpu.sh (METHOD: measure, don't quote datasheets): device-to-device copy
# bandwidth (bytes read + written), float32 GEMM rate without and with TF32, via PyTorch on the same card.
# Usage: python3 bench/gpu_ceilings.py   (prints one JSON line)
import json

import torch


def timed(fn, reps=10, warm=3):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(reps):
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b) / 1e3)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    n = 1 << 29  # 2 GiB of float32
    src = torch.rand(n, device="cuda")
    dst = torch.empty_like(src)
    t = timed(lambda: dst.copy_(src))
    bw = 2 * n * 4 / t / 1e9
    del src, dst
    m = 8192
    a = torch.randn(m, m, device="cuda")
    b = torch.randn(m, m, device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    f32 = 2 * m ** 3 / timed(lambda: a @ b) / 1e12
    torch.backends.cuda.matmul.allow_tf32 = True
    tf32 = 2 * m ** 3 / timed(lambda: a @ b) / 1e12
    torch.backends.cuda.matmul.allow_tf32 = False
    print(json.dumps({"impl": "ceilings", "device": torch.cuda.get_device_name(), "copy_GBps": bw,
                      "sgemm_fp32_TFLOPs": f32, "sgemm_tf32_TFLOPs": tf32, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
