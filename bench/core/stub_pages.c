/* stub_pages.c - a region with one verified stub on every page. */
#define _GNU_SOURCE 1 /* madvise, MADV_POPULATE_WRITE */
#include "stub_pages.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void wx_page_stubs_image(unsigned char *img, size_t page, size_t pages)
{
    for (size_t i = 0; i < pages; i++)
        wx_emit_stub(wx_page_stub(img, i, page), wx_stub_size(), WX_PAGE_STUB_OLD(i));
}

int wx_page_stubs_verify(const wx_region *r, size_t page, size_t first, size_t pages, const char *when, char *why,
                         size_t len)
{
    unsigned char *base = (unsigned char *)r->exec + first * page;
    for (size_t i = 0; i < pages; i++) {
        uint32_t got = wx_page_stub_call(wx_page_stub(base, i, page));
        if (got != WX_PAGE_STUB_VALUE(i)) {
            snprintf(why, len, "verification failed: %s the stub on page %zu returned %#x, expected %#x", when,
                     first + i, got, WX_PAGE_STUB_VALUE(i));
            return -1;
        }
    }
    return 0;
}

/* Bring pages [p, p + len) in, writable, in one call where the OS can
 * (Linux 5.14+): the same state as faulting each page by a write, at a
 * fraction of the cost of one fault per page. A no-op elsewhere, and where
 * it fails the writes that follow fault the pages in themselves. */
static void populate_write(void *p, size_t len)
{
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    (void)madvise(p, len, MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)len;
#endif
}

int wx_page_stubs_fill(const wx_strategy *s, wx_region *r, size_t page, size_t first, size_t pages, char *why,
                       size_t len)
{
    const size_t bytes = page * pages, off = first * page, stub = wx_stub_size();
    /* A copy of the code is needed only to write from (write_code) or as
     * the stage a test build's skip_write diverts the patch to. Elsewhere
     * the bytes are written in place: the same bytes land in the same pages
     * (every byte of every page, zeroes and the old stubs), without a
     * region-sized image to fault in, fill, copy and free. */
    const int staged = s->write_code != NULL || wx_injected(WX_INJ_SKIP_WRITE);
    unsigned char *img = staged ? calloc(1, bytes) : NULL;
    if (staged && !img)
        return wx_why_errno(why, len, "calloc(code image)", ENOMEM);
    int e;
    if (staged) {
        wx_page_stubs_image(img, page, pages);
        e = wx_write_code(s, r, off, img, bytes);
    } else if ((e = s->begin_write(r)) == 0) {
        unsigned char *w = (unsigned char *)r->write + off;
        populate_write(w, bytes);
        memset(w, 0, bytes);
        wx_page_stubs_image(w, page, pages);
        e = s->end_write(r);
    }
    if (e != 0) {
        free(img);
        return wx_why_errno(why, len, s->write_code ? "write_code" : "begin_write/end_write", e);
    }
    /* The patch to the final values: one window, through the timed path
     * (img, a copy of the code, is its stage where one is needed). */
    unsigned char *p = wx_code_begin(s, r, off, img, &e);
    if (e == 0) {
        for (size_t i = 0; i < pages; i++)
            wx_patch_stub(wx_page_stub(p, i, page), stub, WX_PAGE_STUB_VALUE(i));
        e = wx_code_end(s, r, off, img, bytes);
    }
    free(img);
    if (e != 0)
        return wx_why_errno(why, len, s->write_code ? "write_code" : "begin_write/end_write", e);
    wx_icache_flush((unsigned char *)r->write + off, (unsigned char *)r->exec + off, bytes);
    if (wx_page_stubs_verify(r, page, first, pages, "after writing", why, len) != 0)
        return -1;
    if (wx_injected(WX_INJ_CORRUPT_LAST_PAGE)) {
        /* Test builds: the last page now returns another value; whatever
         * visits every page must notice. */
        unsigned char stub[64];
        size_t at = off + (pages - 1) * page + wx_page_stub_off(pages - 1, page);
        wx_emit_stub(stub, wx_stub_size(), WX_PAGE_STUB_VALUE(pages - 1) ^ 0x100u);
        if ((e = wx_write_code(s, r, at, stub, wx_stub_size())) != 0)
            return wx_why_errno(why, len, "corrupt_last_page", e);
        wx_icache_flush((unsigned char *)r->write + at, (unsigned char *)r->exec + at, wx_stub_size());
    }
    return 0;
}

int wx_page_stubs_prepare(const wx_strategy *s, wx_region *r, size_t page, size_t pages, char *why, size_t len)
{
    memset(r, 0, sizeof *r);
    int e = s->map(r, page * pages, why, len);
    if (e != 0)
        return e;
    if ((e = wx_page_stubs_fill(s, r, page, 0, pages, why, len)) != 0)
        s->unmap(r);
    return e;
}
