/*
 * decision.h - the one-line structured record of every decision (key=value or JSON lines),
 * with the context the front-end knows (client, HELO, sender, recipient, queue id).  Above
 * the engine (it formats a check result) and below the front-ends; written through log.h,
 * with its escaping, so a line cannot be forged.
 */
#ifndef MXSANE_DECISION_H
#define MXSANE_DECISION_H

#include <stddef.h>

#include "config.h"
#include "engine.h"
#include "log.h"

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
	/* This sender verdict repeats one already logged for the same transaction (the policy
	 * service checks the sender again for every recipient): the line says repeat=yes, so
	 * sender verdicts can be counted once per message. */
	bool repeat;
	/* The time of the decision, written in JSON records as "time" (RFC 3339, UTC, to the
	 * millisecond): milliseconds since the epoch, 0 for none.  log_decision sets it; key=value
	 * lines get their time from syslog or the journal. */
	long long time_ms;
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

/* Format the decision record into buf (always NUL-terminated; cut if too long).
 * Returns the length written. */
size_t log_format_decision(char *buf, size_t len, enum log_format fmt, const struct log_ctx *ctx,
                           const struct check_result *r);
/* Format and log at LOG_INFO (LOG_WARNING when the action is not accept). */
void log_decision(const struct log_ctx *ctx, const struct check_result *r);

#endif
