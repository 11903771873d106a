/* jit_workload.h - what jit_workload.c and jit_cross_thread.c share: the
 * inline-cache stub (an 8-byte constant) and the cross_thread kernel. */
#ifndef WX_JIT_WORKLOAD_H
#define WX_JIT_WORKLOAD_H

#include "../bench/app/scenario.h"

#define IC_STUB_BYTES 24u         /* 8-byte-constant stub, padded to an 8-byte multiple */
#define JIT_OPS_PER_STEP 100u
#define CORRUPT_AT 37u            /* which op a corrupt_stub test build spoils */

/* Put a 64-bit stub returning value at the start of r (through the
 * strategy's set-up write path) and check it; shadow (IC_STUB_BYTES,
 * 8-byte aligned) gets a copy of the stub's bytes: the staging buffer of
 * the in-place patches that follow. 0, or -1 with j->why. */
int jit_stub64_setup(wx_job *j, wx_region *r, uint64_t value, unsigned char *shadow);

/* cross_thread (param 1: membarrier SYNC_CORE after each patch) and
 * cross_thread_nosync (param 0), in jit_cross_thread.c. */
extern const wx_kernel jit_cross_kernel;
/* Register membarrier SYNC_CORE once per process, before any thread exists:
 * 1, or 0 with why[]. */
int jit_membarrier_setup(char *why, size_t len);

#endif /* WX_JIT_WORKLOAD_H */
