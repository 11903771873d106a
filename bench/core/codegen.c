/* codegen.c - tiny functions for the host ISA: a stub that returns a 32-bit
 * constant, optionally padded with leading no-ops to a given size, and an
 * in-place patch of that constant; and the same with a 64-bit constant (an
 * inline-cache style slot patched in place).
 *
 * x86_64: [nop]* ; mov eax, imm32 (B8 imm32) ; ret (C3)
 * arm64:  [nop]* ; movz w0, #lo16 ; movk w0, #hi16, lsl #16 ; ret
 *
 * 64-bit:
 * x86_64: [nop]* ; movabs rax, imm64 (48 B8 imm64) ; ret ; [int3]*  (imm64 8-byte aligned)
 * arm64:  [nop]* ; movz x0, #c0 ; movk x0, #c1, lsl #16 ; movk x0, #c2, lsl #32 ;
 *                  movk x0, #c3, lsl #48 ; ret
 */
#include "wx.h"

#include <string.h>

#if defined(__x86_64__)

#define STUB_BYTES 6u
#define INSN_ALIGN 1u

size_t wx_stub_size(void) { return STUB_BYTES; }
size_t wx_stub_align(void) { return 16; }
const char *wx_codegen_isa(void) { return "x86_64"; }

size_t wx_emit_stub(void *buf, size_t size, uint32_t value)
{
    if (size < STUB_BYTES)
        return 0;
    unsigned char *p = buf;
    size_t pad = size - STUB_BYTES;
    memset(p, 0x90, pad); /* nop */
    p[pad] = 0xB8;        /* mov eax, imm32 */
    memcpy(p + pad + 1, &value, 4);
    p[pad + 5] = 0xC3;    /* ret */
    return size;
}

void wx_patch_stub(void *buf, size_t size, uint32_t value)
{
    memcpy((unsigned char *)buf + size - 5, &value, 4);
}

uint32_t wx_stub_value(const void *buf, size_t size)
{
    uint32_t v;
    memcpy(&v, (const unsigned char *)buf + size - 5, 4);
    return v;
}

/* 64-bit constant: the leading padding is 6 bytes modulo 8, so the
 * immediate (2 bytes after it) sits on an 8-byte boundary relative to buf;
 * what is left after the ret (0..7 bytes) is int3. */
#define STUB64_BYTES 17u /* 6 nops, 48 B8 imm64, C3 */

size_t wx_stub64_size(void) { return STUB64_BYTES; }

static size_t stub64_pad(size_t size)
{
    return 6 + ((size - STUB64_BYTES) & ~(size_t)7);
}

size_t wx_emit_stub64(void *buf, size_t size, uint64_t value)
{
    if (size < STUB64_BYTES)
        return 0;
    unsigned char *p = buf;
    size_t pad = stub64_pad(size);
    memset(p, 0x90, pad); /* nop */
    p[pad] = 0x48;        /* REX.W */
    p[pad + 1] = 0xB8;    /* movabs rax, imm64 */
    memcpy(p + pad + 2, &value, 8);
    p[pad + 10] = 0xC3;   /* ret */
    memset(p + pad + 11, 0xCC, size - pad - 11); /* int3, never reached */
    return size;
}

void wx_patch_stub64(void *buf, size_t size, uint64_t value)
{
    unsigned char *imm = (unsigned char *)buf + stub64_pad(size) + 2;
    if (((uintptr_t)imm & 7u) == 0)
        __atomic_store_n((uint64_t *)(void *)imm, value, __ATOMIC_RELAXED); /* one aligned store */
    else
        memcpy(imm, &value, 8);
}

uint64_t wx_stub64_value(const void *buf, size_t size)
{
    uint64_t v;
    memcpy(&v, (const unsigned char *)buf + stub64_pad(size) + 2, 8);
    return v;
}

#elif defined(__aarch64__)

#define STUB_BYTES 12u
#define A64_NOP 0xd503201fu
#define A64_MOVZ_W0 0x52800000u /* movz w0, #imm16 */
#define A64_MOVK_W0_16 0x72a00000u /* movk w0, #imm16, lsl #16 */
#define A64_RET 0xd65f03c0u

size_t wx_stub_size(void) { return STUB_BYTES; }
size_t wx_stub_align(void) { return 16; }
const char *wx_codegen_isa(void) { return "arm64"; }

static void put32(unsigned char *p, uint32_t insn)
{
    memcpy(p, &insn, 4); /* arm64 instructions are little-endian */
}

static void put_const(unsigned char *p, uint32_t value)
{
    put32(p, A64_MOVZ_W0 | ((value & 0xffffu) << 5));
    put32(p + 4, A64_MOVK_W0_16 | ((value >> 16) << 5));
}

size_t wx_emit_stub(void *buf, size_t size, uint32_t value)
{
    if (size < STUB_BYTES || size % 4 != 0)
        return 0;
    unsigned char *p = buf;
    size_t pad = size - STUB_BYTES;
    for (size_t i = 0; i < pad; i += 4)
        put32(p + i, A64_NOP);
    put_const(p + pad, value);
    put32(p + pad + 8, A64_RET);
    return size;
}

void wx_patch_stub(void *buf, size_t size, uint32_t value)
{
    put_const((unsigned char *)buf + size - STUB_BYTES, value);
}

uint32_t wx_stub_value(const void *buf, size_t size)
{
    const unsigned char *p = (const unsigned char *)buf + size - STUB_BYTES;
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + 4, 4);
    return ((lo >> 5) & 0xffffu) | (((hi >> 5) & 0xffffu) << 16);
}

/* 64-bit constant: movz x0 then three movk x0, one 16-bit chunk each. */
#define STUB64_BYTES 20u
#define A64_MOVZ_X0 0xd2800000u /* movz x0, #imm16, lsl #(16*hw) */
#define A64_MOVK_X0 0xf2800000u /* movk x0, #imm16, lsl #(16*hw) */

size_t wx_stub64_size(void) { return STUB64_BYTES; }

static uint32_t mov64_insn(unsigned hw, uint64_t value)
{
    uint32_t chunk = (uint32_t)(value >> (16 * hw)) & 0xffffu;
    return (hw == 0 ? A64_MOVZ_X0 : A64_MOVK_X0) | (hw << 21) | (chunk << 5);
}

size_t wx_emit_stub64(void *buf, size_t size, uint64_t value)
{
    if (size < STUB64_BYTES || size % 4 != 0)
        return 0;
    unsigned char *p = buf;
    size_t pad = size - STUB64_BYTES;
    for (size_t i = 0; i < pad; i += 4)
        put32(p + i, A64_NOP);
    for (unsigned hw = 0; hw < 4; hw++)
        put32(p + pad + 4 * hw, mov64_insn(hw, value));
    put32(p + pad + 16, A64_RET);
    return size;
}

void wx_patch_stub64(void *buf, size_t size, uint64_t value)
{
    unsigned char *p = (unsigned char *)buf + size - STUB64_BYTES;
    for (unsigned hw = 0; hw < 4; hw++) {
        if (((uintptr_t)(p + 4 * hw) & 3u) == 0)
            __atomic_store_n((uint32_t *)(void *)(p + 4 * hw), mov64_insn(hw, value), __ATOMIC_RELAXED);
        else
            put32(p + 4 * hw, mov64_insn(hw, value));
    }
}

uint64_t wx_stub64_value(const void *buf, size_t size)
{
    const unsigned char *p = (const unsigned char *)buf + size - STUB64_BYTES;
    uint64_t v = 0;
    for (unsigned hw = 0; hw < 4; hw++) {
        uint32_t insn;
        memcpy(&insn, p + 4 * hw, 4);
        v |= (uint64_t)((insn >> 5) & 0xffffu) << (16 * hw);
    }
    return v;
}

#else
#error "wxbench generates code for x86_64 and aarch64 only"
#endif

wx_stub_fn wx_stub_at(void *exec)
{
    wx_stub_fn fn;
    memcpy(&fn, &exec, sizeof fn); /* object -> function pointer, bit for bit */
    return fn;
}

wx_stub64_fn wx_stub64_at(void *exec)
{
    wx_stub64_fn fn;
    memcpy(&fn, &exec, sizeof fn); /* object -> function pointer, bit for bit */
    return fn;
}
