/*
 * vec.h — the small vector layer kernels.c is written in, one definition
 * per instruction set (PL_SIMD_ISA 3: 512-bit AVX-512, 2: 256-bit AVX2+FMA,
 * 1: 128-bit SSE2, or NEON through SIMDe on other architectures).
 *
 *   vf, VL        float vector and its lane count
 *   vtail         a "first n lanes" mask for partial vectors; vload_t
 *                 zero-fills the other lanes and never touches their memory
 *   vfma(a,b,c)   a*b + c (fused where the ISA has FMA, else mul then add;
 *                 either way the same everywhere in one build)
 *   vgt/vsel      compare (ordered, a > b) and select (m ? t : f)
 *   vhsum         horizontal sum with a fixed reduction tree
 *   veven, vodd   lanes 0,2,4,... / 1,3,5,... of the 2*VL floats lo:hi
 *   vzip_lo/hi    a0 b0 a1 b1 ...: the two halves of the interleave of a, b
 *   vmax          lane-wise maximum (softmax's range reduction only)
 *   vround_i      float to int32, rounding to nearest even; vfrom_i the way back
 *   vpow2i        2^n as a float for int32 lanes n in [-126, 127]
 * Only static inline functions: every build gets its own copies.
 */
#ifndef PL_SIMD_VEC_H
#define PL_SIMD_VEC_H

#include <string.h>

#if PL_SIMD_ISA == 3
/* ------------------------------------------------------------ AVX-512 ---- */
#include <simde/x86/avx512.h>

typedef simde__m512 vf;
typedef simde__m512i vi;
typedef simde__mmask16 vmask;
typedef simde__mmask16 vtail;
#define VL 16
#define NV 4  /* gemm micro-tile vectors (its rows: MR in kernels.c) */

static inline vf vzero(void) { return simde_mm512_setzero_ps(); }
static inline vf vset1(float a) { return simde_mm512_set1_ps(a); }
static inline vf vload(const float *p) { return simde_mm512_loadu_ps(p); }
static inline void vstore(float *p, vf v) { simde_mm512_storeu_ps(p, v); }
static inline vtail vtail_make(int n) { return (simde__mmask16)((1u << n) - 1u); }
static inline vf vload_t(const float *p, vtail t)
{
#if defined(SIMDE_X86_AVX512F_NATIVE)
    return _mm512_maskz_loadu_ps(t, p);
#else
    float tmp[VL] = {0};
    for (int i = 0; i < VL; i++)
        if ((t >> i) & 1)
            tmp[i] = p[i];
    return vload(tmp);
#endif
}
static inline void vstore_t(float *p, vf v, vtail t)
{
#if defined(SIMDE_X86_AVX512F_NATIVE)
    _mm512_mask_storeu_ps(p, t, v);
#else
    float tmp[VL];
    vstore(tmp, v);
    for (int i = 0; i < VL; i++)
        if ((t >> i) & 1)
            p[i] = tmp[i];
#endif
}
static inline vf vfma(vf a, vf b, vf c) { return simde_mm512_fmadd_ps(a, b, c); }
static inline vf vadd(vf a, vf b) { return simde_mm512_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return simde_mm512_sub_ps(a, b); }
static inline vf vmul(vf a, vf b) { return simde_mm512_mul_ps(a, b); }
static inline vf vdiv(vf a, vf b) { return simde_mm512_div_ps(a, b); }
static inline vf vsqrt(vf a) { return simde_mm512_sqrt_ps(a); }
static inline vmask vgt(vf a, vf b) { return simde_mm512_cmp_ps_mask(a, b, SIMDE_CMP_GT_OQ); }
static inline vf vsel(vmask m, vf f, vf t) { return simde_mm512_mask_blend_ps(m, f, t); }
static inline vi viset1(int32_t a) { return simde_mm512_set1_epi32(a); }
static inline vi viadd(vi a, vi b) { return simde_mm512_add_epi32(a, b); }
/* constants come from memory: SIMDe 0.7.4 builds _mm512_set_epi32 lane by lane */
static const int32_t pl__lanes[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const int32_t pl__evens[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
static inline vi viramp(int32_t step)
{
    return simde_mm512_mullo_epi32(simde_mm512_loadu_si512(pl__lanes), simde_mm512_set1_epi32(step));
}
static inline vi visel(vmask m, vi f, vi t) { return simde_mm512_mask_blend_epi32(m, f, t); }
static inline void vistore_t(int32_t *p, vi v, vtail t)
{
#if defined(SIMDE_X86_AVX512F_NATIVE)
    _mm512_mask_storeu_epi32(p, t, v);
#else
    int32_t tmp[VL];
    simde_mm512_storeu_si512(tmp, v);
    for (int i = 0; i < VL; i++)
        if ((t >> i) & 1)
            p[i] = tmp[i];
#endif
}
static inline void vistore(int32_t *p, vi v) { simde_mm512_storeu_si512(p, v); }
static inline float vhsum(vf v)
{
#if defined(SIMDE_X86_AVX512DQ_NATIVE)
    __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
#else
    simde__m256 s8 = simde_mm256_add_ps(simde_mm512_castps512_ps256(v),
                                        simde_mm256_castpd_ps(simde_mm512_extractf64x4_pd(simde_mm512_castps_pd(v), 1)));
#endif
    simde__m128 s4 = simde_mm_add_ps(simde_mm256_castps256_ps128(s8), simde_mm256_extractf128_ps(s8, 1));
    simde__m128 s2 = simde_mm_add_ps(s4, simde_mm_movehl_ps(s4, s4));
    simde__m128 s1 = simde_mm_add_ss(s2, simde_mm_shuffle_ps(s2, s2, 1));
    return simde_mm_cvtss_f32(s1);
}
static inline vf veven(vf lo, vf hi)
{
    return simde_mm512_permutex2var_ps(lo, simde_mm512_loadu_si512(pl__evens), hi);
}
static const int32_t pl__odds[16] = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
static const int32_t pl__zlo[16] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
static const int32_t pl__zhi[16] = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
static inline vf vodd(vf lo, vf hi)
{
    return simde_mm512_permutex2var_ps(lo, simde_mm512_loadu_si512(pl__odds), hi);
}
/* a0 b0 a1 b1 ... : the first and the second VL lanes of the interleave */
static inline vf vzip_lo(vf a, vf b) { return simde_mm512_permutex2var_ps(a, simde_mm512_loadu_si512(pl__zlo), b); }
static inline vf vzip_hi(vf a, vf b) { return simde_mm512_permutex2var_ps(a, simde_mm512_loadu_si512(pl__zhi), b); }
static inline vmask vieq(vi a, vi b) { return simde_mm512_cmpeq_epi32_mask(a, b); }
static inline vi viload_t(const int32_t *p, vtail t)
{
#if defined(SIMDE_X86_AVX512F_NATIVE)
    return _mm512_maskz_loadu_epi32(t, p);
#else
    int32_t tmp[VL] = {0};
    for (int i = 0; i < VL; i++)
        if ((t >> i) & 1)
            tmp[i] = p[i];
    return simde_mm512_loadu_si512(tmp);
#endif
}

static inline vf vmax(vf a, vf b) { return simde_mm512_max_ps(a, b); }
static inline vi vround_i(vf a)
{
#if defined(SIMDE_X86_AVX512F_NATIVE)
    return _mm512_cvtps_epi32(a);
#else
    float f[16];
    int32_t r[16];
    simde_mm512_storeu_ps(f, a);
    simde_mm256_storeu_si256((void *)r, simde_mm256_cvtps_epi32(simde_mm256_loadu_ps(f)));
    simde_mm256_storeu_si256((void *)(r + 8), simde_mm256_cvtps_epi32(simde_mm256_loadu_ps(f + 8)));
    return simde_mm512_loadu_si512(r);
#endif
}
static inline vf vfrom_i(vi a)
{
#if defined(SIMDE_X86_AVX512F_NATIVE)
    return _mm512_cvtepi32_ps(a);
#else
    int32_t r[16];
    float f[16];
    simde_mm512_storeu_si512(r, a);
    simde_mm256_storeu_ps(f, simde_mm256_cvtepi32_ps(simde_mm256_loadu_si256((const void *)r)));
    simde_mm256_storeu_ps(f + 8, simde_mm256_cvtepi32_ps(simde_mm256_loadu_si256((const void *)(r + 8))));
    return simde_mm512_loadu_ps(f);
#endif
}
static inline vf vpow2i(vi n)
{
    return simde_mm512_castsi512_ps(simde_mm512_slli_epi32(simde_mm512_add_epi32(n, simde_mm512_set1_epi32(127)), 23));
}

#elif PL_SIMD_ISA == 2
/* ------------------------------------------------------------ AVX2+FMA --- */
#include <simde/x86/avx2.h>
#include <simde/x86/fma.h>

typedef simde__m256 vf;
typedef simde__m256i vi;
typedef simde__m256 vmask;
typedef simde__m256i vtail;
#define VL 8
#define NV 2

static const int32_t pl__tail_bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline vf vzero(void) { return simde_mm256_setzero_ps(); }
static inline vf vset1(float a) { return simde_mm256_set1_ps(a); }
static inline vf vload(const float *p) { return simde_mm256_loadu_ps(p); }
static inline void vstore(float *p, vf v) { simde_mm256_storeu_ps(p, v); }
static inline vtail vtail_make(int n) { return simde_mm256_loadu_si256((const void *)(pl__tail_bits + 8 - n)); }
static inline vf vload_t(const float *p, vtail t) { return simde_mm256_maskload_ps(p, t); }
static inline void vstore_t(float *p, vf v, vtail t) { simde_mm256_maskstore_ps(p, t, v); }
static inline vf vfma(vf a, vf b, vf c) { return simde_mm256_fmadd_ps(a, b, c); }
static inline vf vadd(vf a, vf b) { return simde_mm256_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return simde_mm256_sub_ps(a, b); }
static inline vf vmul(vf a, vf b) { return simde_mm256_mul_ps(a, b); }
static inline vf vdiv(vf a, vf b) { return simde_mm256_div_ps(a, b); }
static inline vf vsqrt(vf a) { return simde_mm256_sqrt_ps(a); }
static inline vmask vgt(vf a, vf b) { return simde_mm256_cmp_ps(a, b, SIMDE_CMP_GT_OQ); }
static inline vf vsel(vmask m, vf f, vf t) { return simde_mm256_blendv_ps(f, t, m); }
static inline vi viset1(int32_t a) { return simde_mm256_set1_epi32(a); }
static inline vi viadd(vi a, vi b) { return simde_mm256_add_epi32(a, b); }
static const int32_t pl__lanes[8] = {0, 1, 2, 3, 4, 5, 6, 7};
static inline vi viramp(int32_t step)
{
    return simde_mm256_mullo_epi32(simde_mm256_loadu_si256((const void *)pl__lanes), simde_mm256_set1_epi32(step));
}
static inline vi visel(vmask m, vi f, vi t)
{
    return simde_mm256_castps_si256(simde_mm256_blendv_ps(simde_mm256_castsi256_ps(f), simde_mm256_castsi256_ps(t), m));
}
static inline void vistore_t(int32_t *p, vi v, vtail t) { simde_mm256_maskstore_epi32(p, t, v); }
static inline void vistore(int32_t *p, vi v) { simde_mm256_storeu_si256((void *)p, v); }
static inline float vhsum(vf v)
{
    simde__m128 s4 = simde_mm_add_ps(simde_mm256_castps256_ps128(v), simde_mm256_extractf128_ps(v, 1));
    simde__m128 s2 = simde_mm_add_ps(s4, simde_mm_movehl_ps(s4, s4));
    simde__m128 s1 = simde_mm_add_ss(s2, simde_mm_shuffle_ps(s2, s2, 1));
    return simde_mm_cvtss_f32(s1);
}
static inline vf veven(vf lo, vf hi)
{
    vf t = simde_mm256_shuffle_ps(lo, hi, 0x88); /* lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6 */
    return simde_mm256_castpd_ps(simde_mm256_permute4x64_pd(simde_mm256_castps_pd(t), 0xD8));
}
static inline vf vodd(vf lo, vf hi)
{
    vf t = simde_mm256_shuffle_ps(lo, hi, 0xDD);
    return simde_mm256_castpd_ps(simde_mm256_permute4x64_pd(simde_mm256_castps_pd(t), 0xD8));
}
static inline vf vzip_lo(vf a, vf b)
{
    return simde_mm256_permute2f128_ps(simde_mm256_unpacklo_ps(a, b), simde_mm256_unpackhi_ps(a, b), 0x20);
}
static inline vf vzip_hi(vf a, vf b)
{
    return simde_mm256_permute2f128_ps(simde_mm256_unpacklo_ps(a, b), simde_mm256_unpackhi_ps(a, b), 0x31);
}
static inline vmask vieq(vi a, vi b) { return simde_mm256_castsi256_ps(simde_mm256_cmpeq_epi32(a, b)); }
static inline vi viload_t(const int32_t *p, vtail t) { return simde_mm256_maskload_epi32(p, t); }

static inline vf vmax(vf a, vf b) { return simde_mm256_max_ps(a, b); }
static inline vi vround_i(vf a) { return simde_mm256_cvtps_epi32(a); }
static inline vf vfrom_i(vi a) { return simde_mm256_cvtepi32_ps(a); }
static inline vf vpow2i(vi n)
{
    return simde_mm256_castsi256_ps(simde_mm256_slli_epi32(simde_mm256_add_epi32(n, simde_mm256_set1_epi32(127)), 23));
}

#else
/* ------------------------------------------------ base: SSE2 / NEON ------ */
#include <simde/x86/sse4.1.h>
#include <simde/x86/fma.h>

typedef simde__m128 vf;
typedef simde__m128i vi;
typedef simde__m128 vmask;
typedef int vtail;
#define VL 4
#define NV 2

static inline vf vzero(void) { return simde_mm_setzero_ps(); }
static inline vf vset1(float a) { return simde_mm_set1_ps(a); }
static inline vf vload(const float *p) { return simde_mm_loadu_ps(p); }
static inline void vstore(float *p, vf v) { simde_mm_storeu_ps(p, v); }
static inline vtail vtail_make(int n) { return n; }
static inline vf vload_t(const float *p, vtail n)
{
    float tmp[VL] = {0};
    memcpy(tmp, p, sizeof(float) * (size_t)n);
    return vload(tmp);
}
static inline void vstore_t(float *p, vf v, vtail n)
{
    float tmp[VL];
    vstore(tmp, v);
    memcpy(p, tmp, sizeof(float) * (size_t)n);
}
static inline vf vfma(vf a, vf b, vf c) { return simde_mm_fmadd_ps(a, b, c); }
static inline vf vadd(vf a, vf b) { return simde_mm_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return simde_mm_sub_ps(a, b); }
static inline vf vmul(vf a, vf b) { return simde_mm_mul_ps(a, b); }
static inline vf vdiv(vf a, vf b) { return simde_mm_div_ps(a, b); }
static inline vf vsqrt(vf a) { return simde_mm_sqrt_ps(a); }
static inline vmask vgt(vf a, vf b) { return simde_mm_cmpgt_ps(a, b); }
static inline vf vsel(vmask m, vf f, vf t) { return simde_mm_or_ps(simde_mm_and_ps(m, t), simde_mm_andnot_ps(m, f)); }
static inline vi viset1(int32_t a) { return simde_mm_set1_epi32(a); }
static inline vi viadd(vi a, vi b) { return simde_mm_add_epi32(a, b); }
static inline vi viramp(int32_t step) { return simde_mm_set_epi32(3 * step, 2 * step, step, 0); }
static inline vi visel(vmask m, vi f, vi t)
{
    simde__m128i mi = simde_mm_castps_si128(m);
    return simde_mm_or_si128(simde_mm_and_si128(mi, t), simde_mm_andnot_si128(mi, f));
}
static inline void vistore(int32_t *p, vi v) { simde_mm_storeu_si128((void *)p, v); }
static inline void vistore_t(int32_t *p, vi v, vtail n)
{
    int32_t tmp[VL];
    vistore(tmp, v);
    memcpy(p, tmp, sizeof(int32_t) * (size_t)n);
}
static inline float vhsum(vf v)
{
    simde__m128 s2 = simde_mm_add_ps(v, simde_mm_movehl_ps(v, v));
    simde__m128 s1 = simde_mm_add_ss(s2, simde_mm_shuffle_ps(s2, s2, 1));
    return simde_mm_cvtss_f32(s1);
}
static inline vf veven(vf lo, vf hi) { return simde_mm_shuffle_ps(lo, hi, 0x88); }
static inline vf vodd(vf lo, vf hi) { return simde_mm_shuffle_ps(lo, hi, 0xDD); }
static inline vf vzip_lo(vf a, vf b) { return simde_mm_unpacklo_ps(a, b); }
static inline vf vzip_hi(vf a, vf b) { return simde_mm_unpackhi_ps(a, b); }
static inline vmask vieq(vi a, vi b) { return simde_mm_castsi128_ps(simde_mm_cmpeq_epi32(a, b)); }
static inline vi viload_t(const int32_t *p, vtail n)
{
    int32_t tmp[VL] = {0};
    memcpy(tmp, p, sizeof(int32_t) * (size_t)n);
    return simde_mm_loadu_si128((const void *)tmp);
}
static inline vf vmax(vf a, vf b) { return simde_mm_max_ps(a, b); }
static inline vi vround_i(vf a) { return simde_mm_cvtps_epi32(a); }
static inline vf vfrom_i(vi a) { return simde_mm_cvtepi32_ps(a); }
static inline vf vpow2i(vi n)
{
    return simde_mm_castsi128_ps(simde_mm_slli_epi32(simde_mm_add_epi32(n, simde_mm_set1_epi32(127)), 23));
}
#endif

#endif
