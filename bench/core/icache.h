/* icache.h - making newly written code visible to instruction fetch. Part
 * of the C core. */
#ifndef WX_ICACHE_H
#define WX_ICACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Make len bytes of new code at exec visible to instruction fetch on this
 * thread (write is the address it was written through; may equal exec). */
void wx_icache_flush(void *write, void *exec, size_t len);
/* Name of the method wx_icache_flush uses here. */
const char *wx_icache_method(void);

#ifdef __cplusplus
}
#endif

#endif /* WX_ICACHE_H */
