/* codegen.c - tiny functions for the host ISA: a stub that returns a 32-bit
 * constant, optionally padded with leading no-ops to a given size, and an
 * in-place patch of that constant.
 *
 * x86_64: [nop]* ; mov eax, imm32 (B8 imm32) ; ret (C3)
 * arm64:  [nop]* ; movz w0, #lo16 ; movk w0, #hi16, lsl #16 ; ret
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

#else
#error "wxbench generates code for x86_64 and aarch64 only"
#endif

wx_stub_fn wx_stub_at(void *exec)
{
    wx_stub_fn fn;
    memcpy(&fn, &exec, sizeof fn); /* object -> function pointer, bit for bit */
    return fn;
}
