/* stub_pages.h - a region with one verified stub on every page, for the
 * scenarios that spread code over many pages (mprotect_tlb, dualmap_overhead).
 * Static inline functions over wx.h.
 *
 * The stub of page i sits at offset (i * 64) % page_size, so that many pages'
 * stubs do not all fall into the same cache sets (page-aligned code would
 * measure cache-set conflicts, not TLB reach), and returns
 * WX_PAGE_STUB_VALUE(i). Every stub is first written with an older value and
 * then patched, so a skipped patch (the test build's skip_write) shows as a
 * wrong value, never as a jump into zeroed memory.
 */
#ifndef WX_STUB_PAGES_H
#define WX_STUB_PAGES_H

#include "../bench/wx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the stub of page i returns once the region is prepared. */
#define WX_PAGE_STUB_VALUE(i) (0x02000000u + (uint32_t)(i))
/* What it returned before the patch. */
#define WX_PAGE_STUB_OLD(i) (0x01000000u + (uint32_t)(i))

/* Offset of page i's stub inside its page. */
static inline size_t wx_page_stub_off(size_t i, size_t page)
{
    return (i * 64u) % page;
}

/* Address of page i's stub in a view (write or exec) of a region. */
static inline unsigned char *wx_page_stub(void *view, size_t i, size_t page)
{
    return (unsigned char *)view + i * page + wx_page_stub_off(i, page);
}

/* Call the stub at p. */
static inline uint32_t wx_page_stub_call(const void *p)
{
    return wx_stub_at((void *)p)();
}

/* Every stub of a prepared region returns its value: 0, or -1 with why[]
 * saying which page (when names the moment, e.g. "after the timed loop"). */
static inline int wx_page_stubs_verify(const wx_region *r, size_t page, size_t pages, const char *when, char *why,
                                       size_t len)
{
    for (size_t i = 0; i < pages; i++) {
        uint32_t got = wx_page_stub_call(wx_page_stub(r->exec, i, page));
        if (got != WX_PAGE_STUB_VALUE(i)) {
            snprintf(why, len, "verification failed: %s the stub on page %zu returned %#x, expected %#x", when, i, got,
                     WX_PAGE_STUB_VALUE(i));
            return -1;
        }
    }
    return 0;
}

/* Map pages pages with strategy s, write every page (zeroes, then its stub),
 * make the region executable, flush, and verify every stub. 0, or nonzero
 * with why[]; on failure nothing stays mapped. The region is left executable.
 * A strategy writable only inside write_code (mapjit_callback) gets the same
 * bytes built aside and copied in by one write_code call. */
static inline int wx_page_stubs_prepare(const wx_strategy *s, wx_region *r, size_t page, size_t pages, char *why,
                                        size_t len)
{
    memset(r, 0, sizeof *r);
    int e = s->map(r, page * pages, why, len);
    if (e != 0)
        return e;
    const size_t stub = wx_stub_size();
    const int patch = !wx_test_inject("skip_write");
    if (s->write_code) {
        unsigned char *img = calloc(1, r->size);
        if (!img) {
            s->unmap(r);
            return wx_why_errno(why, len, "calloc(code image)", ENOMEM);
        }
        for (size_t i = 0; i < pages; i++) {
            wx_emit_stub(wx_page_stub(img, i, page), stub, WX_PAGE_STUB_OLD(i));
            if (patch)
                wx_patch_stub(wx_page_stub(img, i, page), stub, WX_PAGE_STUB_VALUE(i));
        }
        e = s->write_code(r, 0, img, r->size);
        free(img);
        if (e != 0) {
            s->unmap(r);
            return wx_why_errno(why, len, "write_code", e);
        }
    } else {
        if ((e = s->begin_write(r)) != 0) {
            s->unmap(r);
            return wx_why_errno(why, len, "begin_write", e);
        }
        for (size_t i = 0; i < pages; i++) {
            memset((unsigned char *)r->write + i * page, 0, page);
            wx_emit_stub(wx_page_stub(r->write, i, page), stub, WX_PAGE_STUB_OLD(i));
        }
        if (patch)
            for (size_t i = 0; i < pages; i++)
                wx_patch_stub(wx_page_stub(r->write, i, page), stub, WX_PAGE_STUB_VALUE(i));
        if ((e = s->end_write(r)) != 0) {
            s->unmap(r);
            return wx_why_errno(why, len, "end_write", e);
        }
    }
    wx_icache_flush(r->write, r->exec, r->size);
    if (wx_page_stubs_verify(r, page, pages, "after writing", why, len) != 0) {
        s->unmap(r);
        return -1;
    }
    return 0;
}

#endif /* WX_STUB_PAGES_H */
