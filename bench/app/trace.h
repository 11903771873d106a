/* trace.h - `wxbench trace` (a real program's W^X calls, recorded by the
 * interposer bench/interpose/wxtrace.c) and `wxbench replay` (that sequence
 * re-enacted under each strategy). Inside the application. */
#ifndef WX_TRACE_H
#define WX_TRACE_H

/* The trace directory's files. */
#define WX_TRACE_CSV "trace.csv"
#define WX_TRACE_REGIONS_CSV "regions.csv"
#define WX_TRACE_PROCESSES_CSV "processes.csv"
#define WX_TRACE_SUMMARY "summary.json"
#define WX_TRACE_META "meta.json"
#define WX_REPLAY_CSV "replay.csv"

/* Headers, exactly. */
#define WX_TRACE_HEADER                                                                                          \
    "process,thread,time_ns,duration_ns,call,region,region_size,offset,length,prot_before,prot_after,detail,"   \
    "result\n"
#define WX_TRACE_REGIONS_HEADER "process,region,size,resident_bytes,resident\n"
#define WX_TRACE_PROCESSES_HEADER "process,pid,parent,started_by,start_ns,end_ns,threads,rows,exe\n"

/* `wxbench trace [--out DIR] -- COMMAND [ARG...]`: argv[0] is "trace".
 * Returns the traced command's exit status (128 + signal when it was
 * killed), or 2 for wxbench's own usage errors and where tracing cannot
 * work (nothing is written then but what says why). */
int wx_trace_main(int argc, char **argv);

/* `wxbench replay DIR [--strategy a,b] [--repetitions N]`: argv[0] is
 * "replay". 0 when every strategy replayed or was unsupported; 1 when one
 * failed; 2 for a usage error or a missing or corrupt trace (the message
 * names the file and the line). */
int wx_replay_main(int argc, char **argv);

#endif /* WX_TRACE_H */
