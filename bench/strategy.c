/* strategy.c - the strategy table and helpers shared by strategies. */
#include "wx.h"

#include <stdio.h>
#include <string.h>

#define WX_STRATEGY(n) extern const wx_strategy wx_strategy_##n;
#include "strategies/strategies.def"
#undef WX_STRATEGY

const wx_strategy *const wx_strategies[] = {
#define WX_STRATEGY(n) &wx_strategy_##n,
#include "strategies/strategies.def"
#undef WX_STRATEGY
    NULL,
};

const wx_strategy *wx_strategy_find(const char *name)
{
    for (size_t i = 0; wx_strategies[i]; i++)
        if (strcmp(wx_strategies[i]->name, name) == 0)
            return wx_strategies[i];
    return NULL;
}

size_t wx_strategy_count(void)
{
    size_t n = 0;
    while (wx_strategies[n])
        n++;
    return n;
}

int wx_why_errno(char *why, size_t len, const char *call, int err)
{
    if (why && len)
        snprintf(why, len, "%s: %s (errno %d)", call, strerror(err), err);
    return err;
}

int wx_baseline_map(wx_region *r, size_t size, char *why, size_t len)
{
    extern const wx_strategy wx_strategy_rwx;
    return wx_strategy_rwx.map(r, size, why, len);
}

void wx_baseline_unmap(wx_region *r)
{
    extern const wx_strategy wx_strategy_rwx;
    wx_strategy_rwx.unmap(r);
}

int wx_region_prepare(const wx_strategy *s, wx_region *r, size_t size, uint32_t value, char *why, size_t len)
{
    memset(r, 0, sizeof *r);
    int e = s->map(r, size, why, len);
    if (e != 0)
        return e;
    if ((e = s->begin_write(r)) != 0) {
        s->unmap(r);
        return wx_why_errno(why, len, "begin_write", e);
    }
    memset(r->write, 0, r->size); /* touch every page */
    wx_emit_stub(r->write, wx_stub_size(), value);
    if ((e = s->end_write(r)) != 0) {
        s->unmap(r);
        return wx_why_errno(why, len, "end_write", e);
    }
    wx_icache_flush(r->write, r->exec, wx_stub_size());
    uint32_t got = wx_stub_at(r->exec)();
    if (got != value) {
        snprintf(why, len, "verification failed: the stub returned %u, expected %u", got, value);
        s->unmap(r);
        return -1;
    }
    return 0;
}
