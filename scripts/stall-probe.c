// A stall probe for the benchmarks: sleeps 1 ms at a time for SECONDS and prints the share of the
// wall time spent in sleeps that overran to more than THRESHOLD_MS (5 by default), and the worst
// one. On a quiet machine a 1 ms sleep takes about 1.06 ms; on a shared machine that is busy
// elsewhere it can take tens of milliseconds, and any latency measured meanwhile is suspect.
// Build: gcc -O2 -o stall-probe scripts/stall-probe.c
// Usage: stall-probe SECONDS [THRESHOLD_MS]  ->  "<stalled %> <worst ms>"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: stall-probe SECONDS [THRESHOLD_MS]\n");
    return 2;
  }
  double seconds = atof(argv[1]);
  double threshold = argc > 2 ? atof(argv[2]) : 5.0;
  struct timespec one_ms = {0, 1000000};
  double start = now_ms(), end = start + seconds * 1e3, stalled = 0, worst = 0;
  double before = start;
  while (before < end) {
    nanosleep(&one_ms, NULL);
    double after = now_ms(), took = after - before;
    if (took > threshold) stalled += took;
    if (took > worst) worst = took;
    before = after;
  }
  printf("%.1f %.1f\n", 100.0 * stalled / (before - start), worst);
  return 0;
}
