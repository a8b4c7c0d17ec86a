/*
 * conn.h - what the milter remembers about one SMTP connection (kept with smfi_setpriv):
 * the client and HELO for the whole connection, and per message the sender, queue ID,
 * authentication, the X-MXSane header values to add at end of message and, for locally
 * submitted mail, the recipient refusal held for DATA.
 *
 * A conn is used by one connection's callbacks, which libmilter runs one at a time (maybe on
 * different threads of its worker pool): no locking inside.  Strings from the MTA are
 * copied, each cut at CONN_FIELD_MAX bytes; at most CONN_MAX_HEADERS distinct headers.
 */
#ifndef MXSANE_MILTER_CONN_H
#define MXSANE_MILTER_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "reply.h"

#define CONN_FIELD_MAX   1024
#define CONN_MAX_HEADERS 32

struct conn {
	/* connection */
	char *client_addr; /* textual IP, NULL if unknown (not IP, or no connect callback) */
	char *client_name;
	char *helo;
	bool have_client;      /* client_addr/name known (CONNECT, or the MAIL macros) */
	unsigned long noreply; /* SMFIP_NR_CONN / SMFIP_NR_HELO agreed with the MTA */
	bool local_submission; /* submitted on this machine, not over TCP (MAIL macros) */
	/* message */
	char *sender;   /* as received, "<a@b>" */
	char *queue_id; /* macro i, once the MTA has one */
	bool authenticated;
	char *headers[CONN_MAX_HEADERS];
	size_t nheaders;
	bool headers_dropped; /* a header could not be kept (logged once per message) */
	/* locally submitted mail: recipient refusals wait for DATA (callbacks.c) */
	bool rcpt_accepted;       /* some recipient was let through */
	struct milter_reply held; /* the first refused recipient's reply; MV_CONTINUE: none */
	/* recipient_policies_file is set: the sender is checked at each RCPT under that
	 * recipient's policy instead of at MAIL FROM (callbacks.c) */
	bool sender_at_rcpt;
	int sender_logged; /* verdict + 1 of this message's last sender line; 0: none yet */
};

struct conn *conn_new(void);    /* NULL on out of memory */
void conn_free(struct conn *c); /* accepts NULL */
/* Sessions (connection states) open now and made so far; any thread. */
void conn_sessions(uint64_t *open, uint64_t *total);
void conn_reset_message(struct conn *c);

/* Replace *field with a copy of value (cut at CONN_FIELD_MAX; NULL clears).  false on out
 * of memory (the field is then NULL). */
bool conn_set(char **field, const char *value);

/* Remember a header value (printable already: milter_reply_from_result) for end of message;
 * duplicates are kept once.  false when out of memory or full. */
bool conn_add_header(struct conn *c, const char *value);

#endif
