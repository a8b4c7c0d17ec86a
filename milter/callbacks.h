/*
 * callbacks.h - the libmilter callbacks of mxsane-milter: translate the SMTP dialogue
 * (connect, HELO, MAIL, RCPT, end of message) into check requests for the engine (through
 * the engine thread) and the decisions back into milter replies.
 *
 * MAIL FROM: the sender domain is checked (the engine skips it for authenticated sessions,
 * {auth_authen}, and for <>); a 5xx reply rejects, a 4xx tempfails the transaction.
 * RCPT TO: each recipient domain is checked on its own; a rejection affects that recipient
 * only.  Warnings are collected and added as X-MXSane headers at end of message.
 * Per-connection state lives in smfi_setpriv (libmilter's worker pool may run one
 * connection's callbacks on different threads).
 */
#ifndef MXSANE_MILTER_CALLBACKS_H
#define MXSANE_MILTER_CALLBACKS_H

#include <libmilter/mfapi.h>

struct engine_thread;

/* How long a callback waits beyond resolver.timeout_ms for the engine thread. */
#define CALLBACK_WAIT_MARGIN_MS 500

/* The filter description for smfi_register(); callbacks send checks to b. */
struct smfiDesc *callbacks_desc(struct engine_thread *b);

#endif
