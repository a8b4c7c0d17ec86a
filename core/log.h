/*
 * log.h - logging: syslog (facility from the configuration) or stderr in the foreground,
 * and the one-line structured record of every decision (key=value or JSON lines).
 *
 * Values from the network (addresses, HELO names, DNS data) are escaped so a log line
 * cannot be forged: in key=value lines, values with spaces, quotes or '=' are quoted, and
 * control characters, backslash, quote and non-ASCII octets are written as \xHH.
 * All functions are thread-safe (a line is written with one write(2) or one syslog call).
 * A thread running an event loop may batch its stderr lines (log_batch_begin): they are
 * then written together by log_flush(), once per loop iteration.
 */
#ifndef MXSANE_LOG_H
#define MXSANE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

#include "config.h"
#include "engine.h"

/* to_stderr: write "PROG[pid]: message" lines to stderr instead of syslog. */
void log_open(const char *ident, bool to_stderr, int facility);
void log_set_format(enum log_format fmt);
void log_set_debug(bool on);  /* LOG_DEBUG messages are dropped unless on */
bool log_debug_enabled(void); /* to skip building a message that would be dropped */
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* From now on, keep the calling thread's stderr lines (up to 64 KiB) until log_flush().
 * False when logging goes to syslog (nothing to batch) or out of memory (lines go out at
 * once, as before). */
bool log_batch_begin(void);
void log_flush(void);     /* write the calling thread's kept lines, if any */
void log_batch_end(void); /* flush and stop batching */

/* Context the front-end knows; any field may be NULL. */
struct log_ctx {
	const char *peer;     /* policy: the address of the asking MTA */
	const char *instance; /* policy: instance attribute */
	const char *queue_id;
	const char *client_addr;
	const char *client_name;
	const char *helo;
	const char *sender;
	const char *recipient;
	/* Optional: peer..recipient above already rendered by log_render_ctx() in the
	 * format `rendered_fmt`; used instead of escaping them again when the format matches
	 * (a front-end logging several decisions of one request renders them once). */
	const char *rendered;
	size_t rendered_len;
	enum log_format rendered_fmt;
};

/* Render ctx's peer, instance, client_addr, client_name, helo, sender and recipient as they
 * appear in a decision line of format fmt.  Returns the length, or 0 when they do not fit
 * in len bytes (then leave ctx->rendered unset).  buf is not NUL-terminated. */
size_t log_render_ctx(char *buf, size_t len, enum log_format fmt, const struct log_ctx *ctx);
enum log_format log_get_format(void); /* the format log_decision writes now */

/* Format the decision record into buf (always NUL-terminated; cut if too long).
 * Returns the length written. */
size_t log_format_decision(char *buf, size_t len, enum log_format fmt, const struct log_ctx *ctx,
                           const struct check_result *r);
/* Format and log at LOG_INFO (LOG_WARNING when the action is not accept). */
void log_decision(const struct log_ctx *ctx, const struct check_result *r);

/* Escape s for a key=value log value (quoted if needed).  Returns bytes written. */
size_t log_escape_kv(char *out, size_t outlen, const char *s);
/* Escape s as the inside of a JSON string. */
size_t log_escape_json(char *out, size_t outlen, const char *s);

#endif
