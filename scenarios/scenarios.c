/* scenarios.c - the scenario table, expanded from scenarios.def. */
#include "../bench/wx.h"

#include <stddef.h>

#define WX_SCENARIO(n) extern const wx_scenario wx_scenario_##n;
#include "scenarios.def"
#undef WX_SCENARIO

const wx_scenario *const wx_scenarios[] = {
#define WX_SCENARIO(n) &wx_scenario_##n,
#include "scenarios.def"
#undef WX_SCENARIO
    NULL,
};
