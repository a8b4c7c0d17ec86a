/*
 * conn.c - per-connection and per-message state of the milter.
 */
#include "conn.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Sessions for the metrics: libmilter's threads count, the engine thread reads. */
static atomic_uint_fast64_t g_sessions_total, g_sessions_open;

struct conn *conn_new(void)
{
	struct conn *c = calloc(1, sizeof(struct conn));
	if (c) {
		atomic_fetch_add_explicit(&g_sessions_total, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&g_sessions_open, 1, memory_order_relaxed);
	}
	return c;
}

void conn_sessions(uint64_t *open, uint64_t *total)
{
	*open = atomic_load_explicit(&g_sessions_open, memory_order_relaxed);
	*total = atomic_load_explicit(&g_sessions_total, memory_order_relaxed);
}

void conn_reset_message(struct conn *c)
{
	if (!c)
		return;
	conn_set(&c->sender, NULL);
	conn_set(&c->queue_id, NULL);
	c->authenticated = false;
	for (size_t i = 0; i < c->nheaders; i++)
		free(c->headers[i]);
	c->nheaders = 0;
	c->headers_dropped = false;
	c->rcpt_accepted = false;
	c->held.what = MV_CONTINUE;
	c->sender_at_rcpt = false;
	c->sender_logged = 0;
}

void conn_free(struct conn *c)
{
	if (!c)
		return;
	atomic_fetch_sub_explicit(&g_sessions_open, 1, memory_order_relaxed);
	conn_reset_message(c);
	free(c->client_addr);
	free(c->client_name);
	free(c->helo);
	free(c);
}

bool conn_set(char **field, const char *value)
{
	free(*field);
	*field = NULL;
	if (!value)
		return true;
	*field = strndup(value, CONN_FIELD_MAX);
	return *field != NULL;
}

bool conn_add_header(struct conn *c, const char *value)
{
	char *h = strndup(value, CONN_FIELD_MAX);
	if (!h)
		return false;
	for (size_t i = 0; i < c->nheaders; i++)
		if (strcmp(c->headers[i], h) == 0) {
			free(h);
			return true;
		}
	if (c->nheaders == CONN_MAX_HEADERS) {
		free(h);
		return false;
	}
	c->headers[c->nheaders++] = h;
	return true;
}
