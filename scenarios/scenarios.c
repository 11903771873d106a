/* scenarios.c - the scenario table, expanded from scenarios.def. */
#include "../bench/app/scenario.h"

#include <string.h>

#define WX_SCENARIO(n) extern const wx_scenario wx_scenario_##n;
#include "scenarios.def"
#undef WX_SCENARIO

const wx_scenario *const wx_scenarios[] = {
#define WX_SCENARIO(n) &wx_scenario_##n,
#include "scenarios.def"
#undef WX_SCENARIO
    NULL,
};

const wx_scenario *wx_scenario_find(const char *name)
{
    for (size_t i = 0; wx_scenarios[i]; i++)
        if (strcmp(wx_scenarios[i]->name, name) == 0)
            return wx_scenarios[i];
    return NULL;
}
