/*
 * callbacks.c - xxfi_* callbacks: SMTP events to check requests, decisions to replies.
 */
#include "callbacks.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "engine_thread.h"
#include "conn.h"
#include "log.h"
#include "reply.h"
#include "shape.h"

static struct engine_thread *g_et;

static char g_name[] = "mxsane-milter";
static char g_header_name[] = "X-MXSane";
/* The macros asked for are in shape.h; smfi_getsymval takes a char * */
static char g_mac_i[] = "i";
static char g_mac_auth[] = "{auth_authen}";
static char g_mac_client_addr[] = "{client_addr}";
static char g_mac_client_name[] = "{client_name}";
static char g_mac_client_port[] = "{client_port}";
static char g_mac_daemon_port[] = "{daemon_port}";

/* Per-connection state, created on first use (connect may not be sent). */
static struct conn *get_conn(SMFICTX *ctx)
{
	struct conn *c = smfi_getpriv(ctx);
	if (c)
		return c;
	c = conn_new();
	if (c && smfi_setpriv(ctx, c) != MI_SUCCESS) {
		conn_free(c);
		c = NULL;
	}
	return c;
}

/* Set the reply right before returning REJECT/TEMPFAIL (a stored reply lingers). */
static sfsistat tell(SMFICTX *ctx, struct milter_reply *r)
{
	if (r->what == MV_CONTINUE)
		return SMFIS_CONTINUE;
	if (smfi_setreply(ctx, r->rcode, r->xcode, r->text) != MI_SUCCESS)
		log_msg(LOG_WARNING, "smfi_setreply(%s %s) failed: the MTA gives its own reply",
		        r->rcode, r->xcode);
	return r->what == MV_REJECT ? SMFIS_REJECT : SMFIS_TEMPFAIL;
}

static sfsistat internal_tempfail(SMFICTX *ctx, const char *what)
{
	struct milter_reply r;
	struct reply rep = reply_internal_failure();
	log_msg(LOG_ERR, "%s: out of memory, answering %d %s", what, rep.code, rep.dsn);
	milter_reply_failure(&r, rep, "temporary local problem, try again later");
	return tell(ctx, &r);
}

static void deadline_after(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Update the queue ID when the MTA has one by now (Postfix: after the first accepted RCPT). */
static void take_queue_id(SMFICTX *ctx, struct conn *c)
{
	const char *qid = smfi_getsymval(ctx, g_mac_i);
	if (qid && qid[0] && (!c->queue_id || strcmp(qid, c->queue_id) != 0))
		conn_set(&c->queue_id, qid);
}

/* Debug: the connection's client, once known (at CONNECT, or at the first MAIL). */
static void log_client(const struct conn *c)
{
	if (log_debug_enabled() && (c->client_addr || c->client_name)) {
		char n[300], a[80];
		log_escape_kv(n, sizeof(n), c->client_name ? c->client_name : "");
		log_escape_kv(a, sizeof(a), c->client_addr ? c->client_addr : "unknown");
		log_msg(LOG_DEBUG, "connect from %s [%s]", n, a);
	}
}

/* Without a CONNECT step (SMFIP_NOCONNECT), the client's address and name from the MAIL
 * macros, once per connection.  The address must be a plain IP (skip.clients): Postfix
 * and Sendmail send "192.0.2.1" or "2001:db8::1" (Sendmail may write "IPv6:..."), and
 * anything else (or nothing) leaves it unknown, as a CONNECT without an address would. */
static void take_client(SMFICTX *ctx, struct conn *c)
{
	const char *addr = smfi_getsymval(ctx, g_mac_client_addr);
	const char *name = smfi_getsymval(ctx, g_mac_client_name);
	unsigned char bin[16];
	char buf[INET6_ADDRSTRLEN + 8];

	c->have_client = true;
	if (addr && strncasecmp(addr, "IPv6:", 5) == 0)
		addr += 5;
	if (addr && strlen(addr) < sizeof(buf)) {
		/* normalised the way the CONNECT step's sockaddr would be printed */
		if (inet_pton(AF_INET, addr, bin) == 1)
			addr = inet_ntop(AF_INET, bin, buf, sizeof(buf));
		else if (inet_pton(AF_INET6, addr, bin) == 1)
			addr = inet_ntop(AF_INET6, bin, buf, sizeof(buf));
		else
			addr = NULL;
	} else {
		addr = NULL;
	}
	conn_set(&c->client_addr, addr);
	conn_set(&c->client_name, name && name[0] ? name : NULL);
	log_client(c);
}

/*
 * Was the message submitted on this machine (sendmail(1), pickup(8)) rather than by an SMTP
 * client over TCP?  Yes when the client's port is "0", the server's port is "0" or not
 * defined, and the client address is loopback or none.  Postfix's cleanup(8) presents
 * non-SMTP mail (non_smtpd_milters) as localhost [127.0.0.1] port 0 to 127.0.0.1 port 0;
 * Sendmail's "sendmail -bs" on a pipe as client address "0", port 0, without daemon macros.
 * A TCP connection has a non-zero port at both ends (the server listens on 25 or 587; the
 * kernel never gives a client port 0), so no SMTP client, on loopback or anywhere else,
 * presents this; and the MTA fills these macros itself, the client has no say.  An MTA that
 * sends neither port (no smfi_setsymlist) never has its mail taken as local.
 */
static bool local_submission(SMFICTX *ctx, const struct conn *c)
{
	const char *cport = smfi_getsymval(ctx, g_mac_client_port);
	const char *dport = smfi_getsymval(ctx, g_mac_daemon_port);

	if (!cport || strcmp(cport, "0") != 0 || (dport && strcmp(dport, "0") != 0))
		return false;
	return !c->client_addr || strcmp(c->client_addr, "127.0.0.1") == 0 ||
	       strcmp(c->client_addr, "::1") == 0;
}

/*
 * A recipient of locally submitted mail is never refused at RCPT: Postfix cannot refuse one
 * recipient of non-SMTP mail (a milter that does is a "configuration error" to it, and the
 * message stays in maildrop, retried for ever).  A rejection is held instead: when no
 * recipient of the message was let through, the answer to DATA refuses the message with
 * it, and the MTA returns the message to its sender at once; otherwise the message goes on
 * and the MTA's own delivery handles that recipient (Postfix's smtp(8) bounces a null-MX
 * domain at once).  A temporary failure lets the recipient through: the MTA's queue retries
 * the delivery and gives up after its queue lifetime, where a tempfail would keep the
 * message in maildrop with no end and no bounce.
 */
static sfsistat local_recipient(struct conn *c, const struct milter_reply *r, const char *rcpt)
{
	char qid[128], a[300];

	log_escape_kv(qid, sizeof(qid), c->queue_id ? c->queue_id : "-");
	log_escape_kv(a, sizeof(a), rcpt);
	if (r->what == MV_REJECT) {
		if (c->held.what == MV_CONTINUE)
			c->held = *r;
		log_msg(LOG_INFO,
		        "queue_id=%s: recipient %s of locally submitted mail: refusal held for "
		        "DATA",
		        qid, a);
	} else {
		c->rcpt_accepted = true;
		if (r->what == MV_TEMPFAIL)
			log_msg(LOG_INFO,
			        "queue_id=%s: recipient %s of locally submitted mail: let through "
			        "despite the temporary failure (the MTA's queue retries it)",
			        qid, a);
	}
	return SMFIS_CONTINUE;
}

/* At DATA (or end of message): refuse a locally submitted message none of whose recipients
 * was let through, with the first recipient's refusal (see local_recipient). */
static bool refuse_held(SMFICTX *ctx, struct conn *c, sfsistat *st)
{
	char qid[128];

	if (c->held.what == MV_CONTINUE)
		return false;
	log_escape_kv(qid, sizeof(qid), c->queue_id ? c->queue_id : "-");
	if (c->rcpt_accepted) {
		log_msg(LOG_INFO,
		        "queue_id=%s: locally submitted message accepted for its other "
		        "recipients; the refused ones are left to the MTA's delivery",
		        qid);
		c->held.what = MV_CONTINUE;
		return false;
	}
	struct milter_reply r = c->held;
	log_msg(LOG_INFO,
	        "queue_id=%s: locally submitted message refused at DATA: every recipient was "
	        "refused (%s %s)",
	        qid, r.rcode, r.xcode);
	conn_reset_message(c);
	*st = tell(ctx, &r);
	return true;
}

/* Ask the engine about address (role); rcpt is the recipient the check is made for (a
 * recipient check's own address, or the recipient a sender check at RCPT applies to, whose
 * recipient policy decides), NULL at MAIL FROM.  A warning's header is kept for the end of
 * the message. */
static void ask(struct conn *c, enum role role, const char *address, const char *rcpt,
                struct milter_reply *r)
{
	struct milter_check mc = {
	        .req =
	                {
	                        .role = role,
	                        .address = address,
	                        .client_addr = c->client_addr,
	                        .authenticated = c->authenticated,
	                        .local_submission = c->local_submission,
	                        .policy_recipient = role == ROLE_SENDER ? rcpt : NULL,
	                        .policy_recipient_len =
	                                role == ROLE_SENDER && rcpt ? strlen(rcpt) : 0,
	                },
	        .log =
	                {
	                        .queue_id = c->queue_id,
	                        .client_addr = c->client_addr,
	                        .client_name = c->client_name,
	                        .helo = c->helo,
	                        .sender = role == ROLE_SENDER ? address : c->sender,
	                        .recipient = rcpt,
	                },
	        .logged_verdict = role == ROLE_SENDER ? c->sender_logged : 0,
	};
	struct timespec deadline;

	deadline_after(&deadline, engine_thread_budget_ms(g_et) + CALLBACK_WAIT_MARGIN_MS);
	engine_thread_check(g_et, &mc, &deadline, r);
	if (role == ROLE_SENDER)
		c->sender_logged = (int)r->verdict + 1;
	/* Once per message: with thousands of recipients past the cap, a line each would
	 * flood the log (each decision is logged anyway). */
	if (r->what == MV_CONTINUE && r->header[0] && !conn_add_header(c, r->header) &&
	    !c->headers_dropped) {
		char qid[128];
		log_escape_kv(qid, sizeof(qid), c->queue_id ? c->queue_id : "-");
		log_msg(LOG_WARNING,
		        "queue_id=%s: cannot keep header \"X-MXSane: %s\" (out of memory or more "
		        "than %d): it and any further ones are left out of this message",
		        qid, r->header, CONN_MAX_HEADERS);
		c->headers_dropped = true;
	}
}

static sfsistat check(SMFICTX *ctx, struct conn *c, enum role role, const char *address)
{
	struct milter_reply r;

	ask(c, role, address, role == ROLE_RECIPIENT ? address : NULL, &r);
	if (role == ROLE_RECIPIENT && c->local_submission)
		return local_recipient(c, &r, address);
	return tell(ctx, &r);
}

static sfsistat cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                             unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                             unsigned long *pf2, unsigned long *pf3)
{
	/* No reply to CONNECT and HELO only when the per-connection state exists to remember
	 * the agreement. */
	struct conn *c = get_conn(ctx);
	(void)f2;
	(void)f3;
	milter_shape(ctx, SMFIF_ADDHDRS, c != NULL, f0, f1, pf0, pf1);
	if (c)
		c->noreply = *pf1 & SHAPE_NOREPLY;
	*pf2 = *pf3 = 0;
	return SMFIS_CONTINUE;
}

static sfsistat cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *sa)
{
	struct conn *c = get_conn(ctx);
	char buf[INET6_ADDRSTRLEN];
	const char *addr = NULL;

	if (!c)
		return SMFIS_CONTINUE; /* checks will tempfail; nothing to remember */
	if (sa && sa->sa_family == AF_INET)
		addr = inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->sin_addr, buf,
		                 sizeof(buf));
	else if (sa && sa->sa_family == AF_INET6)
		addr = inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)sa)->sin6_addr, buf,
		                 sizeof(buf));
	conn_set(&c->client_addr, addr);
	conn_set(&c->client_name, hostname);
	c->have_client = true;
	log_client(c);
	return (c->noreply & SMFIP_NR_CONN) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat cb_helo(SMFICTX *ctx, char *helo)
{
	struct conn *c = get_conn(ctx);
	if (!c)
		return SMFIS_CONTINUE;
	conn_set(&c->helo, helo);
	return (c->noreply & SMFIP_NR_HELO) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat cb_envfrom(SMFICTX *ctx, char **argv)
{
	struct conn *c = get_conn(ctx);
	const char *sender = argv && argv[0] ? argv[0] : "";
	if (!c)
		return internal_tempfail(ctx, "MAIL");
	conn_reset_message(c); /* a new transaction, whatever happened before */
	if (!c->have_client)
		take_client(ctx, c);
	const char *auth = smfi_getsymval(ctx, g_mac_auth);
	c->authenticated = auth && auth[0];
	c->local_submission = local_submission(ctx, c);
	take_queue_id(ctx, c);
	if (!conn_set(&c->sender, sender))
		return internal_tempfail(ctx, "MAIL");
	/* With recipient policies the sender's verdict depends on the recipient: it is applied
	 * at each RCPT under that recipient's policy, as Postfix's smtpd_delay_reject does,
	 * so that a sender some recipient accepts is not refused here. */
	if (engine_thread_sender_at_rcpt(g_et)) {
		c->sender_at_rcpt = true;
		return SMFIS_CONTINUE;
	}
	return check(ctx, c, ROLE_SENDER, sender);
}

static sfsistat cb_envrcpt(SMFICTX *ctx, char **argv)
{
	struct conn *c = get_conn(ctx);
	const char *rcpt = argv && argv[0] ? argv[0] : "";
	if (!c)
		return internal_tempfail(ctx, "RCPT");
	take_queue_id(ctx, c);
	if (c->sender_at_rcpt) {
		/* the sender, under this recipient's policy: a refusal refuses this recipient
		 * only, with the sender's reply (550 5.7.27 for a null-MX sender); the
		 * recipient itself is then not checked */
		struct milter_reply r;
		ask(c, ROLE_SENDER, c->sender ? c->sender : "", rcpt, &r);
		if (r.what != MV_CONTINUE)
			return c->local_submission ? local_recipient(c, &r, rcpt) : tell(ctx, &r);
	}
	return check(ctx, c, ROLE_RECIPIENT, rcpt);
}

/*
 * DATA: every check of the message is done.  A locally submitted message none of whose
 * recipients was let through is refused now (refuse_held).  With no X-MXSane header to add,
 * the filter has nothing left to do for this message: ACCEPT tells the MTA so, and it sends
 * no header, body or end-of-message events for it (Postfix then leaves this milter out of
 * cleanup(8)'s part of the message: about a quarter more messages per second,
 * docs/benchmarks.md).  The reply concerns this filter only; other filters and the MTA's own
 * checks still run.
 */
static sfsistat cb_data(SMFICTX *ctx)
{
	struct conn *c = smfi_getpriv(ctx);
	sfsistat st;
	if (c && refuse_held(ctx, c, &st))
		return st;
	if (!c || c->nheaders)
		return SMFIS_CONTINUE;
	conn_reset_message(c);
	return SMFIS_ACCEPT;
}

static sfsistat cb_eom(SMFICTX *ctx)
{
	struct conn *c = smfi_getpriv(ctx);
	sfsistat st;
	if (!c)
		return SMFIS_CONTINUE;
	if (refuse_held(ctx, c, &st)) /* an MTA without the DATA step */
		return st;
	take_queue_id(ctx, c);
	char qid[128];
	log_escape_kv(qid, sizeof(qid), c->queue_id ? c->queue_id : "-");
	for (size_t i = 0; i < c->nheaders; i++) {
		/* header values are printable ASCII already (milter_reply_from_result) */
		if (smfi_addheader(ctx, g_header_name, c->headers[i]) != MI_SUCCESS)
			log_msg(LOG_WARNING, "queue_id=%s: cannot add header \"X-MXSane: %s\"", qid,
			        c->headers[i]);
		else
			log_msg(LOG_INFO, "queue_id=%s: added header \"X-MXSane: %s\"", qid,
			        c->headers[i]);
	}
	conn_reset_message(c);
	return SMFIS_CONTINUE;
}

static sfsistat cb_abort(SMFICTX *ctx)
{
	conn_reset_message(smfi_getpriv(ctx)); /* the connection's client and HELO stay */
	return SMFIS_CONTINUE;
}

static sfsistat cb_close(SMFICTX *ctx)
{
	struct conn *c = smfi_getpriv(ctx);
	if (c && c->client_addr && log_debug_enabled())
		log_msg(LOG_DEBUG, "disconnect from [%s]", c->client_addr);
	conn_free(c);
	smfi_setpriv(ctx, NULL);
	return SMFIS_CONTINUE;
}

struct smfiDesc *callbacks_desc(struct engine_thread *b)
{
	static struct smfiDesc desc = {
	        .xxfi_name = g_name,
	        .xxfi_version = SMFI_VERSION,
	        .xxfi_flags = SMFIF_ADDHDRS,
	        .xxfi_connect = cb_connect,
	        .xxfi_helo = cb_helo,
	        .xxfi_envfrom = cb_envfrom,
	        .xxfi_envrcpt = cb_envrcpt,
	        .xxfi_data = cb_data,
	        .xxfi_eom = cb_eom,
	        .xxfi_abort = cb_abort,
	        .xxfi_close = cb_close,
	        .xxfi_negotiate = cb_negotiate,
	};
	g_et = b;
	return &desc;
}
