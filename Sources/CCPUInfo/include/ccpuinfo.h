// CPU identification through the cpuid instruction (x86-64); zeros elsewhere.
// Used by TensorCore's ComputeInfo to say which instruction sets this CPU offers, independently of
// what the BLAS library decided to use.
#ifndef CCPUINFO_H
#define CCPUINFO_H

#include <stdint.h>

typedef struct {
    int is_x86;          // 1 on x86-64, 0 elsewhere (every other field is then 0 or empty)
    char vendor[13];     // "GenuineIntel", "AuthenticAMD", …
    char brand[49];      // the processor brand string, as cpuid leaves 0x80000002–4 give it
    int family;          // display family (base + extended)
    int model;           // display model (base + extended where the family calls for it)
    int stepping;
    int sse3, ssse3, sse41, sse42;
    int avx;             // AVX and the OS saves the YMM state (xgetbv)
    int fma;             // FMA3 (with AVX usable)
    int avx2;            // AVX2 (with AVX usable)
    int avx512f;         // AVX-512 Foundation, and the OS saves the ZMM/opmask state
    int avx512bw, avx512dq, avx512vl, avx512vnni, avx512bf16;
    int amx_tile;        // AMX tiles (the OS must also grant them; reported as the CPU offers them)
} fqat_cpu_info;

/// Fills `info` from cpuid (and xgetbv for the OS-enabled register state).
void fqat_cpu_identify(fqat_cpu_info *info);

#endif
