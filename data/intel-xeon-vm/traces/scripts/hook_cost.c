/* hook_cost.c - what the interposer adds to one intercepted call: 100,000
 * redundant mprotect calls (the cheapest protection call), best of 5, run
 * plainly, with the interposer loaded but not recording, and traced:
 *   cc -O2 -o /tmp/hook_cost hook_cost.c
 *   /tmp/hook_cost; LD_PRELOAD=build/libwxtrace.so /tmp/hook_cost
 *   mkdir -p /tmp/t/raw; LD_PRELOAD=build/libwxtrace.so WXTRACE_DIR=/tmp/t /tmp/hook_cost */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>
int main(void){ char *p=mmap(0,4096,PROT_READ|PROT_EXEC,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);
 double best=1e9; for(int r=0;r<5;r++){ struct timespec a,b; clock_gettime(CLOCK_MONOTONIC,&a);
 for(int i=0;i<100000;i++) mprotect(p,4096,PROT_READ|PROT_EXEC);
 clock_gettime(CLOCK_MONOTONIC,&b); double ns=((b.tv_sec-a.tv_sec)*1e9+(b.tv_nsec-a.tv_nsec))/100000.0; if(ns<best)best=ns;}
 printf("%.0f ns per redundant mprotect (best of 5 x 100k)\n",best); return 0;}
