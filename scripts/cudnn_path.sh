# Sourced (not run) by scripts/gpu_lease.sh and bench/gpu.sh on the GPU machine: puts the directory holding
# libcudnn.so.9 first on LD_LIBRARY_PATH, because binaries built with cuDNN (meson -Dcudnn) need it to load and
# scripts/gpu_bundle.sh copies no CUDA libraries. There cuDNN 9 comes with PyTorch's pip packages
# (/opt/torch/.venv/lib/python3.*/site-packages/nvidia/cudnn/lib or nvidia/cu13/lib). Sets CUDNN_LIB ("" if none).
# Usage: . scripts/cudnn_path.sh   (LOWPASS_CUDNN_LIB=DIR to name the directory yourself)
. "$(dirname "${BASH_SOURCE[0]}")/find_lib.sh"
CUDNN_LIB=""
for f in ${LOWPASS_CUDNN_LIB:+"$LOWPASS_CUDNN_LIB/libcudnn.so.9"} \
         /opt/torch/.venv/lib/python3*/site-packages/nvidia/cudnn/lib/libcudnn.so.9 \
         /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib/libcudnn.so.9 \
         /usr/local/cuda/lib64/libcudnn.so.9 /usr/lib/x86_64-linux-gnu/libcudnn.so.9; do
  if [ -e "$f" ]; then CUDNN_LIB=$(dirname "$f"); break; fi
done
[ -n "$CUDNN_LIB" ] || CUDNN_LIB=$(lib_dir_anywhere 'libcudnn.so.9')  # anywhere else (slow, last resort)
if [ -n "$CUDNN_LIB" ]; then
  case ":${LD_LIBRARY_PATH:-}:" in
    *":$CUDNN_LIB:"*) ;;
    *) export LD_LIBRARY_PATH="$CUDNN_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
  esac
fi
