// See include/cdnnl.h. oneDNN 2.x C API, resolved with dlsym from libdnnl.so.2.
#define _GNU_SOURCE
#include "cdnnl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

// The oneDNN entry points used here, each held in a pointer p_NAME of the declared type.
#define FQ_DNNL_FUNCTIONS(X)                                                                        \
    X(dnnl_engine_create) X(dnnl_stream_create) X(dnnl_stream_wait) X(dnnl_version)                 \
    X(dnnl_memory_desc_init_by_tag) X(dnnl_memory_desc_equal) X(dnnl_memory_desc_get_size)          \
    X(dnnl_convolution_forward_desc_init) X(dnnl_convolution_backward_data_desc_init)               \
    X(dnnl_convolution_backward_weights_desc_init) X(dnnl_reorder_primitive_desc_create)            \
    X(dnnl_primitive_desc_create) X(dnnl_primitive_desc_destroy) X(dnnl_primitive_desc_query_md)    \
    X(dnnl_primitive_desc_query) X(dnnl_primitive_create) X(dnnl_primitive_destroy)                 \
    X(dnnl_primitive_execute) X(dnnl_memory_create) X(dnnl_memory_destroy)                          \
    X(dnnl_memory_set_data_handle) X(dnnl_sgemm)

#define FQ_DECLARE(name) static __typeof__(name) *p_##name;
FQ_DNNL_FUNCTIONS(FQ_DECLARE)
static void (*p_omp_set_num_threads)(int);

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static int load_state;            // 0 not tried, 1 loaded, -1 failed
static char load_error[512];
static char version_text[128];
static char wait_policy_text[32];
static dnnl_engine_t engine;
static dnnl_stream_t stream;

int fqdnnl_load(const char *wait_policy, char *error, size_t error_length) {
    pthread_mutex_lock(&load_lock);
    if (load_state == 0) {
        load_state = -1;
        // libgomp reads OMP_WAIT_POLICY in its load-time constructor: set it before dlopen.
        if (wait_policy && wait_policy[0] && !getenv("OMP_WAIT_POLICY")) setenv("OMP_WAIT_POLICY", wait_policy, 0);
        const char *policy = getenv("OMP_WAIT_POLICY");
        snprintf(wait_policy_text, sizeof wait_policy_text, "%s", policy ? policy : "");
        void *lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            snprintf(load_error, sizeof load_error, "cannot load libdnnl.so.2 (%s); install libdnnl-dev (scripts/setup.sh)", dlerror());
            goto done;
        }
#define FQ_RESOLVE(name)                                                                              \
        p_##name = (__typeof__(name) *)dlsym(lib, #name);                                          \
        if (!p_##name) { snprintf(load_error, sizeof load_error, "libdnnl.so.2 has no %s (oneDNN 2.x needed)", #name); goto done; }
        FQ_DNNL_FUNCTIONS(FQ_RESOLVE)
        // libdnnl's own dependency: the OpenMP runtime it was built with.
        p_omp_set_num_threads = (void (*)(int))dlsym(lib, "omp_set_num_threads");
        if (!p_omp_set_num_threads) {
            snprintf(load_error, sizeof load_error, "libdnnl.so.2 is not the OpenMP build (no omp_set_num_threads)");
            goto done;
        }
        if (p_dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
            p_dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) {
            snprintf(load_error, sizeof load_error, "oneDNN could not create a CPU engine and stream");
            goto done;
        }
        const dnnl_version_t *v = p_dnnl_version();
        snprintf(version_text, sizeof version_text, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
        load_state = 1;
    }
done:
    if (load_state != 1 && error && error_length) snprintf(error, error_length, "%s", load_error);
    int ok = load_state == 1;
    pthread_mutex_unlock(&load_lock);
    return ok;
}

const char *fqdnnl_version(void) { return version_text; }
const char *fqdnnl_wait_policy(void) { return wait_policy_text; }

// One argument of a primitive at the NCHW boundary: the caller's plain buffer (`user`), and when
// oneDNN wants another layout a buffer of its own (`inner`) with the reorder between them.
typedef struct {
    dnnl_memory_t user;      // plain layout, data handle set per call
    dnnl_memory_t inner;     // == user when the layouts agree
    dnnl_primitive_t reorder; // user -> inner for inputs, inner -> user for outputs; NULL when equal
    size_t inner_bytes;
} boundary;

struct fqdnnl_conv {
    int threads;
    float *zero_bias;         // cout zeros, for forward calls without a bias
    dnnl_primitive_desc_t pd[3];
    dnnl_primitive_t prim[3];
    char impl[3][96];
    // forward: src, weights, bias, dst
    boundary f_src, f_wei, f_bia, f_dst;
    // backward data: diff_dst, weights, diff_src
    boundary d_ddst, d_wei, d_dsrc;
    // backward weights: src, diff_dst, diff_weights, diff_bias
    boundary w_src, w_ddst, w_dwei, w_dbia;
    int share_ddst;           // backward weights can read backward data's reordered diff_dst
};

static void boundary_free(boundary *b) {
    if (b->reorder) p_dnnl_primitive_destroy(b->reorder);
    if (b->inner && b->inner != b->user) p_dnnl_memory_destroy(b->inner);
    if (b->user) p_dnnl_memory_destroy(b->user);
    memset(b, 0, sizeof *b);
}

/// Sets up one argument: `plain` is the NCHW-side descriptor, `wanted` what the primitive chose.
static dnnl_status_t boundary_init(boundary *b, const dnnl_memory_desc_t *plain, const dnnl_memory_desc_t *wanted,
                                   int is_input) {
    memset(b, 0, sizeof *b);
    dnnl_status_t s = p_dnnl_memory_create(&b->user, plain, engine, DNNL_MEMORY_NONE);
    if (s != dnnl_success) return s;
    if (p_dnnl_memory_desc_equal(plain, wanted)) { b->inner = b->user; return dnnl_success; }
    // No buffer of its own: the call binds it into the shared arena (see bind_arena).
    s = p_dnnl_memory_create(&b->inner, wanted, engine, DNNL_MEMORY_NONE);
    if (s != dnnl_success) return s;
    b->inner_bytes = p_dnnl_memory_desc_get_size(wanted);
    dnnl_primitive_desc_t rpd;
    s = is_input ? p_dnnl_reorder_primitive_desc_create(&rpd, plain, engine, wanted, engine, NULL)
                 : p_dnnl_reorder_primitive_desc_create(&rpd, wanted, engine, plain, engine, NULL);
    if (s != dnnl_success) return s;
    s = p_dnnl_primitive_create(&b->reorder, rpd);
    p_dnnl_primitive_desc_destroy(rpd);
    return s;
}

// The blocked-layout buffers are needed only during one call, and calls are serialised by the
// caller (TensorCore holds one lock around every call), so all handles share one arena, grown to the
// largest call so far: memory is the largest convolution's buffers, not the sum over shapes.
static char *arena;
static size_t arena_bytes;

/// Points the inner buffers of `list` (those that differ from the user buffer) at consecutive,
/// 64-byte-aligned slices of the arena.
static dnnl_status_t bind_arena(boundary **list, int count) {
    size_t total = 0;
    for (int i = 0; i < count; i++) total += (list[i]->inner_bytes + 63) & ~(size_t)63;
    if (total > arena_bytes) {
        free(arena);
        arena = NULL; arena_bytes = 0;
        if (posix_memalign((void **)&arena, 64, total) != 0) { arena = NULL; return dnnl_out_of_memory; }
        arena_bytes = total;
    }
    size_t offset = 0;
    for (int i = 0; i < count; i++) {
        if (list[i]->inner == list[i]->user) continue;
        dnnl_status_t s = p_dnnl_memory_set_data_handle(list[i]->inner, arena + offset);
        if (s != dnnl_success) return s;
        offset += (list[i]->inner_bytes + 63) & ~(size_t)63;
    }
    return dnnl_success;
}

size_t fqdnnl_arena_bytes(void) { return arena_bytes; }

static dnnl_status_t reorder(const boundary *b, int is_input) {
    if (!b->reorder) return dnnl_success;
    dnnl_exec_arg_t args[2] = {
        {DNNL_ARG_FROM, is_input ? b->user : b->inner},
        {DNNL_ARG_TO, is_input ? b->inner : b->user},
    };
    return p_dnnl_primitive_execute(b->reorder, stream, 2, args);
}

void fqdnnl_conv_destroy(fqdnnl_conv *c) {
    if (!c) return;
    boundary *all[] = {&c->f_src, &c->f_wei, &c->f_bia, &c->f_dst, &c->d_ddst, &c->d_wei, &c->d_dsrc,
                       &c->w_src, &c->w_ddst, &c->w_dwei, &c->w_dbia};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) boundary_free(all[i]);
    for (int i = 0; i < 3; i++) {
        if (c->prim[i]) p_dnnl_primitive_destroy(c->prim[i]);
        if (c->pd[i]) p_dnnl_primitive_desc_destroy(c->pd[i]);
    }
    free(c->zero_bias);
    free(c);
}

#define CHECK(call, what)                                                                             \
    do { dnnl_status_t s_ = (call); if (s_ != dnnl_success) {                                         \
        if (error && error_length) snprintf(error, error_length, "oneDNN %s failed (status %d)", what, (int)s_); \
        fqdnnl_conv_destroy(c); return NULL; } } while (0)

fqdnnl_conv *fqdnnl_conv_create(int n, int cin, int h, int w, int cout, int k, int stride, int padding,
                                int threads, int src_block, int dst_block, char *error, size_t error_length) {
    if (load_state != 1) {
        if (error && error_length) snprintf(error, error_length, "oneDNN is not loaded");
        return NULL;
    }
    if (!(src_block == 0 || ((src_block == 8 || src_block == 16) && cin % src_block == 0)) ||
        !(dst_block == 0 || ((dst_block == 8 || dst_block == 16) && cout % dst_block == 0))) {
        if (error && error_length) snprintf(error, error_length, "no nChw%dc / nChw%dc layouts for %d -> %d channels",
                                            src_block, dst_block, cin, cout);
        return NULL;
    }
    dnnl_format_tag_t src_tag = src_block == 16 ? dnnl_nChw16c : src_block == 8 ? dnnl_nChw8c : dnnl_nchw;
    dnnl_format_tag_t dst_tag = dst_block == 16 ? dnnl_nChw16c : dst_block == 8 ? dnnl_nChw8c : dnnl_nchw;
    fqdnnl_conv *c = calloc(1, sizeof *c);
    if (!c) { if (error && error_length) snprintf(error, error_length, "out of memory"); return NULL; }
    c->threads = threads < 1 ? 1 : threads;
    c->zero_bias = calloc(cout > 0 ? cout : 1, sizeof(float));
    if (!c->zero_bias) { free(c); if (error && error_length) snprintf(error, error_length, "out of memory"); return NULL; }
    // The jit kernels fix their thread decomposition when the primitive is created.
    p_omp_set_num_threads(c->threads);
    int oh = (h + 2 * padding - k) / stride + 1, ow = (w + 2 * padding - k) / stride + 1;
    dnnl_dims_t src_dims = {n, cin, h, w}, wei_dims = {cout, cin, k, k}, bia_dims = {cout}, dst_dims = {n, cout, oh, ow};
    dnnl_dims_t strides = {stride, stride}, pad = {padding, padding};
    dnnl_memory_desc_t src_user, wei_plain, bia_plain, dst_user, src_any, wei_any, bia_any, dst_any;
    CHECK(p_dnnl_memory_desc_init_by_tag(&src_user, 4, src_dims, dnnl_f32, src_tag), "memory descriptor");
    CHECK(p_dnnl_memory_desc_init_by_tag(&wei_plain, 4, wei_dims, dnnl_f32, dnnl_oihw), "memory descriptor");
    CHECK(p_dnnl_memory_desc_init_by_tag(&bia_plain, 1, bia_dims, dnnl_f32, dnnl_x), "memory descriptor");
    CHECK(p_dnnl_memory_desc_init_by_tag(&dst_user, 4, dst_dims, dnnl_f32, dst_tag), "memory descriptor");
    CHECK(p_dnnl_memory_desc_init_by_tag(&src_any, 4, src_dims, dnnl_f32, dnnl_format_tag_any), "memory descriptor");
    CHECK(p_dnnl_memory_desc_init_by_tag(&wei_any, 4, wei_dims, dnnl_f32, dnnl_format_tag_any), "memory descriptor");
    CHECK(p_dnnl_memory_desc_init_by_tag(&bia_any, 1, bia_dims, dnnl_f32, dnnl_format_tag_any), "memory descriptor");
    CHECK(p_dnnl_memory_desc_init_by_tag(&dst_any, 4, dst_dims, dnnl_f32, dnnl_format_tag_any), "memory descriptor");

    dnnl_convolution_desc_t fd, dd, wd;
    CHECK(p_dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &src_any, &wei_any,
                                               &bia_any, &dst_any, strides, pad, pad), "forward descriptor");
    CHECK(p_dnnl_primitive_desc_create(&c->pd[0], &fd, NULL, engine, NULL), "forward primitive descriptor");
    CHECK(p_dnnl_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct, &src_any, &wei_any, &dst_any,
                                                     strides, pad, pad), "backward-data descriptor");
    CHECK(p_dnnl_primitive_desc_create(&c->pd[1], &dd, NULL, engine, c->pd[0]), "backward-data primitive descriptor");
    CHECK(p_dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct, &src_any, &wei_any, &bia_any,
                                                        &dst_any, strides, pad, pad), "backward-weights descriptor");
    CHECK(p_dnnl_primitive_desc_create(&c->pd[2], &wd, NULL, engine, c->pd[0]), "backward-weights primitive descriptor");
    for (int i = 0; i < 3; i++) {
        CHECK(p_dnnl_primitive_create(&c->prim[i], c->pd[i]), "primitive creation");
        const char *impl = NULL;
        if (p_dnnl_primitive_desc_query(c->pd[i], dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl) impl = "?";
        snprintf(c->impl[i], sizeof c->impl[i], "%s", impl);
    }
#define MD(i, q) p_dnnl_primitive_desc_query_md(c->pd[i], q, 0)
    CHECK(boundary_init(&c->f_src, &src_user, MD(0, dnnl_query_src_md), 1), "forward src reorder");
    CHECK(boundary_init(&c->f_wei, &wei_plain, MD(0, dnnl_query_weights_md), 1), "forward weights reorder");
    const dnnl_memory_desc_t *fb = p_dnnl_primitive_desc_query_md(c->pd[0], dnnl_query_weights_md, 1);
    CHECK(boundary_init(&c->f_bia, &bia_plain, fb, 1), "forward bias reorder");
    CHECK(boundary_init(&c->f_dst, &dst_user, MD(0, dnnl_query_dst_md), 0), "forward dst reorder");
    CHECK(boundary_init(&c->d_ddst, &dst_user, MD(1, dnnl_query_diff_dst_md), 1), "backward-data diff_dst reorder");
    CHECK(boundary_init(&c->d_wei, &wei_plain, MD(1, dnnl_query_weights_md), 1), "backward-data weights reorder");
    CHECK(boundary_init(&c->d_dsrc, &src_user, MD(1, dnnl_query_diff_src_md), 0), "backward-data diff_src reorder");
    CHECK(boundary_init(&c->w_src, &src_user, MD(2, dnnl_query_src_md), 1), "backward-weights src reorder");
    CHECK(boundary_init(&c->w_ddst, &dst_user, MD(2, dnnl_query_diff_dst_md), 1), "backward-weights diff_dst reorder");
    CHECK(boundary_init(&c->w_dwei, &wei_plain, MD(2, dnnl_query_diff_weights_md), 0), "backward-weights diff_weights reorder");
    const dnnl_memory_desc_t *wb = p_dnnl_primitive_desc_query_md(c->pd[2], dnnl_query_diff_weights_md, 1);
    CHECK(boundary_init(&c->w_dbia, &bia_plain, wb, 0), "backward-weights diff_bias reorder");
    c->share_ddst = p_dnnl_memory_desc_equal(MD(1, dnnl_query_diff_dst_md), MD(2, dnnl_query_diff_dst_md));
#undef MD
    return c;
}

int fqdnnl_preferred_block(void) {
    if (load_state != 1) return 0;
    dnnl_dims_t dims = {2, 16, 8, 8}, wdims = {16, 16, 3, 3}, strides = {1, 1}, pad = {1, 1};
    dnnl_memory_desc_t any, wany, blocked;
    if (p_dnnl_memory_desc_init_by_tag(&any, 4, dims, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        p_dnnl_memory_desc_init_by_tag(&wany, 4, wdims, dnnl_f32, dnnl_format_tag_any) != dnnl_success) return 0;
    dnnl_convolution_desc_t fd;
    if (p_dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &any, &wany, NULL,
                                             &any, strides, pad, pad) != dnnl_success) return 0;
    dnnl_primitive_desc_t pd;
    if (p_dnnl_primitive_desc_create(&pd, &fd, NULL, engine, NULL) != dnnl_success) return 0;
    const dnnl_memory_desc_t *chosen = p_dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    int block = 0;
    const int candidates[2] = {16, 8};
    for (int i = 0; i < 2 && !block; i++) {
        dnnl_format_tag_t tag = candidates[i] == 16 ? dnnl_nChw16c : dnnl_nChw8c;
        if (p_dnnl_memory_desc_init_by_tag(&blocked, 4, dims, dnnl_f32, tag) == dnnl_success &&
            p_dnnl_memory_desc_equal(chosen, &blocked)) block = candidates[i];
    }
    p_dnnl_primitive_desc_destroy(pd);
    return block;
}

const char *fqdnnl_conv_impl(const fqdnnl_conv *c, int which) { return (which >= 0 && which < 3) ? c->impl[which] : ""; }

size_t fqdnnl_conv_scratch_bytes(const fqdnnl_conv *c) {
    const boundary *all[] = {&c->f_src, &c->f_wei, &c->f_bia, &c->f_dst, &c->d_ddst, &c->d_wei, &c->d_dsrc,
                             &c->w_src, &c->w_ddst, &c->w_dwei, &c->w_dbia};
    size_t total = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) total += all[i]->inner_bytes;
    return total;
}

#define RUN(call) do { dnnl_status_t s_ = (call); if (s_ != dnnl_success) return (int)s_; } while (0)

static dnnl_status_t set(boundary *b, const void *p) { return p_dnnl_memory_set_data_handle(b->user, (void *)p); }

int fqdnnl_conv_forward(fqdnnl_conv *c, const float *x, const float *weight, const float *bias, float *y) {
    p_omp_set_num_threads(c->threads);
    boundary *used[] = {&c->f_src, &c->f_wei, &c->f_bia, &c->f_dst};
    RUN(bind_arena(used, 4));
    RUN(set(&c->f_src, x)); RUN(set(&c->f_wei, weight)); RUN(set(&c->f_dst, y));
    // The primitive was created with a bias; a layer without one gives it zeros.
    RUN(set(&c->f_bia, bias ? bias : c->zero_bias));
    RUN(reorder(&c->f_src, 1)); RUN(reorder(&c->f_wei, 1)); RUN(reorder(&c->f_bia, 1));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, c->f_src.inner}, {DNNL_ARG_WEIGHTS, c->f_wei.inner},
                               {DNNL_ARG_BIAS, c->f_bia.inner}, {DNNL_ARG_DST, c->f_dst.inner}};
    RUN(p_dnnl_primitive_execute(c->prim[0], stream, 4, args));
    RUN(reorder(&c->f_dst, 0));
    return (int)p_dnnl_stream_wait(stream);
}

int fqdnnl_conv_backward(fqdnnl_conv *c, const float *x, const float *weight, const float *dy,
                         float *dx, float *dweight, float *dbias) {
    p_omp_set_num_threads(c->threads);
    int share = dx && c->share_ddst;
    boundary *used[] = {&c->w_src, &c->w_dwei, &c->w_dbia, &c->d_ddst, &c->d_wei, &c->d_dsrc, &c->w_ddst};
    // Without dx only backward weights' buffers; with a shared dy, not w_ddst.
    if (!dx) { used[3] = &c->w_ddst; RUN(bind_arena(used, 4)); }
    else RUN(bind_arena(used, share ? 6 : 7));
    if (dx) {
        RUN(set(&c->d_ddst, dy)); RUN(set(&c->d_wei, weight)); RUN(set(&c->d_dsrc, dx));
        RUN(reorder(&c->d_ddst, 1)); RUN(reorder(&c->d_wei, 1));
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, c->d_ddst.inner}, {DNNL_ARG_WEIGHTS, c->d_wei.inner},
                                   {DNNL_ARG_DIFF_SRC, c->d_dsrc.inner}};
        RUN(p_dnnl_primitive_execute(c->prim[1], stream, 3, args));
        RUN(reorder(&c->d_dsrc, 0));
    }
    RUN(set(&c->w_src, x)); RUN(set(&c->w_dwei, dweight)); RUN(set(&c->w_dbia, dbias));
    RUN(reorder(&c->w_src, 1));
    // dy in backward-weights' layout: already there when backward data reordered it to the same one.
    dnnl_memory_t ddst = c->d_ddst.inner;
    if (!share) { RUN(set(&c->w_ddst, dy)); RUN(reorder(&c->w_ddst, 1)); ddst = c->w_ddst.inner; }
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, c->w_src.inner}, {DNNL_ARG_DIFF_DST, ddst},
                               {DNNL_ARG_DIFF_WEIGHTS, c->w_dwei.inner}, {DNNL_ARG_DIFF_BIAS, c->w_dbia.inner}};
    RUN(p_dnnl_primitive_execute(c->prim[2], stream, 4, args));
    RUN(reorder(&c->w_dwei, 0)); RUN(reorder(&c->w_dbia, 0));
    return (int)p_dnnl_stream_wait(stream);
}

int fqdnnl_sgemm(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
                 const float *b, long ldb, float beta, float *c, long ldc, int threads) {
    if (load_state != 1) return (int)dnnl_runtime_error;
    p_omp_set_num_threads(threads < 1 ? 1 : threads);
    return (int)p_dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
