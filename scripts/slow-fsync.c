/* For the benchmarks only: makes every fsync and fdatasync of the process that preloads it
 * take SLOW_FSYNC_US microseconds longer, so PostgreSQL's commits cost what they cost on a slow
 * disk (the condition the group-commit targets are set for) on a machine whose disk is fast.
 * Built and preloaded by scripts/bench-usage and scripts/bench-webhooks when
 * COMMIT_LATENCY_US is set. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void wait_like_a_slow_disk(void) {
    const char *setting = getenv("SLOW_FSYNC_US");
    long us = setting ? atol(setting) : 0;
    if (us > 0) {
        struct timespec pause = {us / 1000000, (us % 1000000) * 1000};
        nanosleep(&pause, NULL);
    }
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    wait_like_a_slow_disk();
    return real(fd);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    wait_like_a_slow_disk();
    return real(fd);
}
