/*
 * request.h - parser for Postfix SMTP access policy delegation requests (SMTPD_POLICY_README):
 * `name=value` lines ending with an empty line.  Bytes in, complete requests or an error out.
 *
 * Pure: no I/O, no clock, no logging, no global state, so it can be unit-tested and fuzzed.
 * One parser per connection; not thread-safe by itself.
 *
 * Bounds, enforced while the bytes arrive (nothing larger is ever buffered):
 *   - a line: at most PREQ_MAX_LINE bytes before its "\n" (one "\r" before the "\n" is
 *     dropped and not counted, so hand-typed CRLF requests work);
 *   - a request: at most PREQ_MAX_REQUEST bytes, every "\n" and the final empty line included;
 *   - a request: at most PREQ_MAX_ATTRS attribute lines.
 * Also refused: a NUL byte, a line without '=', an empty attribute name, a known attribute
 * given twice (ambiguous: which one would Postfix have meant?), and a request that ends
 * without `request=smtpd_access_policy`.  Unknown attributes are counted and dropped.
 */
#ifndef MXSANE_POLICY_REQUEST_H
#define MXSANE_POLICY_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#define PREQ_MAX_LINE    2048
#define PREQ_MAX_REQUEST 65536
#define PREQ_MAX_ATTRS   256

/* The attributes mxsane-policyd uses; everything else is ignored. */
enum preq_attr {
	PA_REQUEST = 0,
	PA_PROTOCOL_STATE,
	PA_SENDER,
	PA_RECIPIENT,
	PA_CLIENT_ADDRESS,
	PA_CLIENT_NAME,
	PA_HELO_NAME,
	PA_SASL_USERNAME,
	PA_QUEUE_ID,
	PA_INSTANCE,
	PA__COUNT
};

/* A complete request.  Values are NUL-terminated copies owned by the parser (a value never
 * contains NUL or LF; a CR inside a line is kept, only a CR ending it is dropped), NULL
 * when the attribute was absent, "" when present but empty
 * (`sender=` for the null sender).  Valid until the next preq_feed/preq_reset/preq_free. */
struct policy_request {
	const char *v[PA__COUNT];
	size_t len[PA__COUNT];
	unsigned nattrs; /* attribute lines, unknown ones included */
	size_t bytes;    /* size of the request on the wire */
};

enum preq_status {
	PREQ_MORE = 0, /* every byte consumed, the request is not complete yet */
	PREQ_DONE,     /* a request is complete: *out is filled; bytes after it are not consumed */
	PREQ_ERROR     /* malformed: *why says why; the parser stays failed until preq_reset */
};

struct preq;

/* A new parser, or NULL on out of memory.  Small: buffers are allocated only while a request
 * is being received and released when it is complete. */
struct preq *preq_new(void);
void preq_free(struct preq *p); /* accepts NULL */

/* Forget any partial request and a previous error. */
void preq_reset(struct preq *p);

/*
 * Feed len bytes.  Consumes bytes up to and including the empty line that ends a request and
 * stops there (*used tells how many; the rest belongs to the next request: feed it again after
 * the reply).  On PREQ_DONE, *out describes the request.  On PREQ_ERROR, *why (static or owned
 * by the parser, valid until the next call) says what was wrong in plain words.
 * Out of memory is reported as PREQ_ERROR too ("out of memory").
 */
enum preq_status preq_feed(struct preq *p, const char *buf, size_t len, size_t *used,
                           struct policy_request *out, const char **why);

/* True when no byte of a request has been received since the last complete one (or reset). */
bool preq_idle(const struct preq *p);

/* Name of an attribute as on the wire ("protocol_state"). */
const char *preq_attr_name(enum preq_attr a);

#endif
