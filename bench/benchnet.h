/*
 * benchnet.h - small socket and clock helpers shared by the benchmark programs (bench/).
 * Address syntax: "inet:HOST:PORT", "inet:[IPv6]:PORT" or "unix:/path".
 */
#ifndef MXSANE_BENCHNET_H
#define MXSANE_BENCHNET_H

#include <stdint.h>
#include <sys/socket.h>

/* Parse spec into ss and len.  0, or -1 with a message on stderr. */
int bench_parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *len);
/* A non-blocking listening socket (SO_REUSEADDR; a stale unix socket is replaced).  -1 on
 * failure, with a message on stderr. */
int bench_listen(const char *spec);
/* Disable Nagle on a TCP socket (no-op for others). */
void bench_nodelay(int fd);
/* CLOCK_MONOTONIC in microseconds. */
uint64_t bench_now_us(void);

#endif
