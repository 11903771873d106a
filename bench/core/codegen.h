/* codegen.h - tiny functions for the host ISA: a stub returning a 32-bit
 * constant (padded with leading no-ops to a size) and one returning a 64-bit
 * constant, patched in place. Part of the C core. */
#ifndef WX_CODEGEN_H
#define WX_CODEGEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A generated function: takes nothing, returns a 32-bit constant. */
typedef uint32_t (*wx_stub_fn)(void);

/* Bytes of the smallest stub wx_emit_stub writes. */
size_t wx_stub_size(void);
/* Instruction alignment required for a stub's start. */
size_t wx_stub_align(void);
/* Write a stub returning value at buf (size bytes, >= wx_stub_size(), a
 * multiple of the instruction size): leading no-ops, then the return.
 * Returns the number of bytes written, or 0 if size is too small. */
size_t wx_emit_stub(void *buf, size_t size, uint32_t value);
/* Rewrite only the constant of a stub of size bytes emitted at buf. */
void wx_patch_stub(void *buf, size_t size, uint32_t value);
/* Read the constant back from the bytes of a stub (for tests). */
uint32_t wx_stub_value(const void *buf, size_t size);
/* Turn an executable address into a callable stub pointer. */
wx_stub_fn wx_stub_at(void *exec);
/* Name of the ISA the code generator targets ("x86_64" or "arm64"). */
const char *wx_codegen_isa(void);


/* A generated function returning a 64-bit constant. */
typedef uint64_t (*wx_stub64_fn)(void);

/* Bytes of the smallest 8-byte-constant stub (x86_64 17, arm64 20). */
size_t wx_stub64_size(void);
/* Write a stub returning value at buf (size bytes, >= wx_stub64_size(), a
 * multiple of 4 on arm64): leading no-ops, then
 *   x86_64: movabs rax, imm64 ; ret ; up to 7 int3 - the immediate on an
 *           8-byte boundary relative to buf;
 *   arm64:  movz x0 ; movk x0, lsl 16 ; movk x0, lsl 32 ; movk x0, lsl 48 ; ret.
 * Returns the number of bytes written, or 0 if size does not fit. */
size_t wx_emit_stub64(void *buf, size_t size, uint64_t value);
/* Rewrite only the constant of a stub64 of size bytes at buf: one aligned
 * 8-byte store on x86_64 when buf is 8-byte aligned; on arm64 four aligned
 * 4-byte stores, so each instruction is either old or new, never torn. */
void wx_patch_stub64(void *buf, size_t size, uint64_t value);
/* Read the constant back from the bytes of a stub64 (for tests). */
uint64_t wx_stub64_value(const void *buf, size_t size);
/* Turn an executable address into a callable stub64 pointer. */
wx_stub64_fn wx_stub64_at(void *exec);

#ifdef __cplusplus
}
#endif

#endif /* WX_CODEGEN_H */
