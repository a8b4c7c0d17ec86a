/*
 * gate.h - which MTA connections mxsane-milter takes, under the open file limit.
 *
 * libmilter accepts the connections itself; gate.c puts its own accept() in front of libc's
 * (see there why and how).  A connection whose descriptor would be numbered at or above the
 * ceiling (open file limit less the reserve of daemon_fd_reserve) is accepted and closed at
 * once, so that the MTA learns at once (it applies milter_default_action, or F= in Sendmail)
 * and the engine always finds descriptors for its DNS queries; refusals are logged at most
 * once a second.
 *
 * gate_init from main() before smfi_main(); gate_set_reserve from any thread; accept() runs
 * in libmilter's listener thread.
 */
#ifndef MXSANE_MILTER_GATE_H
#define MXSANE_MILTER_GATE_H

#include <stdint.h>
#include <sys/resource.h>

/* nofile: the open file limit in force (0: unknown, no ceiling).  Opens the spare
 * descriptor taken to refuse a connection when none is left. */
void gate_init(rlim_t nofile, unsigned reserve);

/* A new reserve (the configuration's DNS servers changed). */
void gate_set_reserve(unsigned reserve);

/* Lowest descriptor number refused (0: none), for the start-up log line. */
unsigned gate_ceiling(void);

/* Connections refused so far. */
uint64_t gate_refused(void);

#endif
