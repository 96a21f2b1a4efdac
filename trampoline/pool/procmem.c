/* Memory of the pool's processes, from /proc/<pid>/smaps_rollup. */
#include <stdio.h>
#include <string.h>

#include "pool_internal.h"

void procmem_read(pid_t pid, uint64_t *rss_kb, uint64_t *pss_kb)
{
    *rss_kb = *pss_kb = 0;
    if (pid <= 0) return;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) return;
    unsigned long long v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "Rss: %llu kB", &v) == 1)
            *rss_kb = v;
        else if (sscanf(line, "Pss: %llu kB", &v) == 1)
            *pss_kb = v;
    }
    fclose(f);
}
