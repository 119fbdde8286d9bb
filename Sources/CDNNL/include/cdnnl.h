// A small C layer over oneDNN's C API (libdnnl, Debian's libdnnl-dev) for TensorCore's convolution
// backend. The library is loaded at run time with dlopen rather than linked, for two reasons:
//   1. oneDNN's OpenMP runtime (libgomp) reads OMP_WAIT_POLICY once, when it is loaded; loading it
//      ourselves lets fqdnnl_load set the wait policy first (docs/backends.md).
//   2. A machine without libdnnl still runs fqat-shell: the engine falls back to OpenBLAS.
// Weights and biases cross this interface plain (OIHW, x). Activations (x, y, dx, dy) cross it either
// plain NCHW or, when the caller keeps them so between layers, in oneDNN's channel-blocked nChw8c or
// nChw16c (docs/backends.md, "Blocked activations"); any other layout oneDNN prefers lives only
// inside a convolution handle.
#ifndef FQAT_CDNNL_H
#define FQAT_CDNNL_H

#include <stddef.h>

/// Loads libdnnl.so.2 (once) after setting OMP_WAIT_POLICY to `wait_policy` unless the variable is
/// already set. Returns 1 when oneDNN is usable; otherwise 0 with a reason in `error`.
int fqdnnl_load(const char *wait_policy, char *error, size_t error_length);

/// "oneDNN 2.6.3 (cpu runtime OpenMP)" once loaded, "" before.
const char *fqdnnl_version(void);

/// The OMP_WAIT_POLICY value in effect when the OpenMP runtime was loaded ("" if unset).
const char *fqdnnl_wait_policy(void);

/// Forward, backward-data and backward-weights primitives of one convolution shape, created once
/// for a thread count, with the memory formats oneDNN chose and the reorders to and from NCHW.
typedef struct fqdnnl_conv fqdnnl_conv;

/// Creates the primitives for x (n, cin, h, w) * weight (cout, cin, k, k) with the given stride and
/// symmetric padding, to run on `threads` OpenMP threads. `src_block` is the layout of the caller's
/// x and dx buffers, `dst_block` of y and dy: 0 plain NCHW, 8 nChw8c, 16 nChw16c (the channel count
/// then a multiple of it). NULL with a reason in `error` on failure.
fqdnnl_conv *fqdnnl_conv_create(int n, int cin, int h, int w, int cout, int k, int stride, int padding,
                                int threads, int src_block, int dst_block, char *error, size_t error_length);

/// The channel block oneDNN chooses for the activations of a 3×3 convolution between 16-channel
/// tensors on this CPU: 16 (nChw16c, AVX-512), 8 (nChw8c, AVX2), or 0 (plain, or not loaded).
int fqdnnl_preferred_block(void);
void fqdnnl_conv_destroy(fqdnnl_conv *conv);

/// y = conv(x, weight) + bias (bias may be NULL). Returns 0 on success, a dnnl_status_t otherwise.
int fqdnnl_conv_forward(fqdnnl_conv *conv, const float *x, const float *weight, const float *bias, float *y);

/// dx (may be NULL: not computed), dweight and dbias from x, weight and dy. Overwrites the outputs.
int fqdnnl_conv_backward(fqdnnl_conv *conv, const float *x, const float *weight, const float *dy,
                         float *dx, float *dweight, float *dbias);

/// Implementation names oneDNN picked: which 0 forward, 1 backward data, 2 backward weights.
const char *fqdnnl_conv_impl(const fqdnnl_conv *conv, int which);

/// Bytes of blocked-layout buffers one call on this handle binds (the reorder targets).
size_t fqdnnl_conv_scratch_bytes(const fqdnnl_conv *conv);

/// Bytes of the arena shared by all handles for those buffers (the largest call so far). Calls on
/// any handles must be serialised by the caller: they share this arena.
size_t fqdnnl_arena_bytes(void);

/// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major, with oneDNN's sgemm (its JIT kernels for
/// this CPU's ISA) on `threads` OpenMP threads. Returns 0 on success, a dnnl_status_t otherwise.
int fqdnnl_sgemm(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                 const float *b, long ldb, float beta, float *c, long ldc, int threads);

#endif
