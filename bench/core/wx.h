/* wx.h - the C core of wxbench in one include: strategies and the code-write
 * path, code generation, instruction-cache maintenance, the machine, and
 * fault catching. Nothing here depends on Google Benchmark (only the
 * application in bench/app/ and bench/gbench_shim.cc do); threads.h
 * (barrier, victims) and stub_pages.h (a stub on every page) are included
 * where needed. */
#ifndef WX_H
#define WX_H

#include "strategy.h"
#include "codegen.h"
#include "icache.h"
#include "platform.h"
#include "fault.h"

#endif /* WX_H */
