/* stub_pages.h - a region with one verified stub on every page, for the
 * scenarios that spread code over many pages (mprotect_tlb,
 * dualmap_overhead, code_heap). Part of the C core.
 *
 * The stub of page i sits at offset (i * 64) % page_size, so that many pages'
 * stubs do not all fall into the same cache sets (page-aligned code would
 * measure cache-set conflicts, not TLB reach), and returns
 * WX_PAGE_STUB_VALUE(i). Every stub is first written with an older value and
 * then patched through the timed-write path (wx_code_begin/end), so a patch
 * that does not land (the test build's skip_write) shows as a wrong value,
 * never as a jump into zeroed memory.
 */
#ifndef WX_STUB_PAGES_H
#define WX_STUB_PAGES_H

#include "wx.h"

#ifdef __cplusplus
extern "C" {
#endif

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

/* Write the stubs of pages [0, pages) with their old values into img (a
 * region image of pages * page bytes, zeroed by the caller). */
void wx_page_stubs_image(unsigned char *img, size_t page, size_t pages);

/* Every stub of a prepared region (pages [first, first + pages)) returns its
 * value: 0, or -1 with why[] saying which page (when names the moment, e.g.
 * "after the timed loop"). */
int wx_page_stubs_verify(const wx_region *r, size_t page, size_t first, size_t pages, const char *when, char *why,
                         size_t len);

/* Map pages pages with strategy s, write every page (zeroes and its old
 * stub), patch every stub to its value in one writable window, make the
 * region executable, flush, and verify every stub. 0, or nonzero with why[];
 * on failure nothing stays mapped. The region is left executable. */
int wx_page_stubs_prepare(const wx_strategy *s, wx_region *r, size_t page, size_t pages, char *why, size_t len);

/* The same on a region r already mapped (pages [first, first + pages) of
 * it): write, patch, flush, verify. 0, or nonzero with why[] (r stays). */
int wx_page_stubs_fill(const wx_strategy *s, wx_region *r, size_t page, size_t first, size_t pages, char *why,
                       size_t len);

#ifdef __cplusplus
}
#endif

#endif /* WX_STUB_PAGES_H */
