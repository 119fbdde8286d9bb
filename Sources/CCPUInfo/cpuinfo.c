#include "ccpuinfo.h"
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

void fqat_cpu_identify(fqat_cpu_info *info) {
    memset(info, 0, sizeof *info);
    info->is_x86 = 1;
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned maxLeaf = a;
    memcpy(info->vendor + 0, &b, 4);
    memcpy(info->vendor + 4, &d, 4);
    memcpy(info->vendor + 8, &c, 4);
    info->vendor[12] = 0;

    __get_cpuid(1, &a, &b, &c, &d);
    int baseFamily = (a >> 8) & 0xf, baseModel = (a >> 4) & 0xf;
    int extFamily = (a >> 20) & 0xff, extModel = (a >> 16) & 0xf;
    info->stepping = a & 0xf;
    info->family = baseFamily == 0xf ? baseFamily + extFamily : baseFamily;
    info->model = (baseFamily == 0x6 || baseFamily == 0xf) ? (extModel << 4) + baseModel : baseModel;
    info->sse3 = (c >> 0) & 1;
    info->ssse3 = (c >> 9) & 1;
    info->sse41 = (c >> 19) & 1;
    info->sse42 = (c >> 20) & 1;
    int osxsave = (c >> 27) & 1;
    int cpuAVX = (c >> 28) & 1;
    int cpuFMA = (c >> 12) & 1;
    uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    int ymmSaved = (xcr0 & 0x6) == 0x6;            // SSE and AVX state
    int zmmSaved = ymmSaved && (xcr0 & 0xe0) == 0xe0; // opmask, ZMM_Hi256, Hi16_ZMM
    info->avx = cpuAVX && ymmSaved;
    info->fma = cpuFMA && info->avx;

    if (maxLeaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        info->avx2 = ((b >> 5) & 1) && info->avx;
        info->avx512f = ((b >> 16) & 1) && zmmSaved;
        info->avx512dq = ((b >> 17) & 1) && info->avx512f;
        info->avx512bw = ((b >> 30) & 1) && info->avx512f;
        info->avx512vl = ((b >> 31) & 1) && info->avx512f;
        info->avx512vnni = ((c >> 11) & 1) && info->avx512f;
        info->amx_tile = (d >> 24) & 1;
        unsigned subleaves = a;
        if (subleaves >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            info->avx512bf16 = ((a >> 5) & 1) && info->avx512f;
        }
    }

    __get_cpuid(0x80000000, &a, &b, &c, &d);
    if (a >= 0x80000004) {
        unsigned regs[12];
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
        memcpy(info->brand, regs, 48);
        info->brand[48] = 0;
    }
}

#else

void fqat_cpu_identify(fqat_cpu_info *info) { memset(info, 0, sizeof *info); }

#endif
