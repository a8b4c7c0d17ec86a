/*
 * smtp.h - SMTP probes of mxsane-check --smtp: connect to port 25 (or --smtp-port) of many
 * addresses at once, read the banner, send EHLO (noting whether STARTTLS is offered) and,
 * when asked, MAIL FROM:<> and RCPT TO:<ADDRESS>; then QUIT.  DATA is never sent.
 *
 * All the probes of one set run in parallel on the caller's evloop and share one deadline:
 * whatever has not finished by then is reported with the step it was waiting for.  Replies
 * come from the network: a reply line is cut at 512 octets, a reply at 100 lines, and
 * control octets in reported text are replaced by '?'.
 */
#ifndef MXSANE_CLI_SMTP_H
#define MXSANE_CLI_SMTP_H

#include <stdbool.h>
#include <stddef.h>

struct evloop;
struct smtp_set;

struct smtp_result {
	char addr[48];         /* the address probed, textual */
	bool connected;        /* the TCP connection was made */
	int banner;            /* banner reply code, 0 if none came */
	int ehlo;              /* EHLO reply code, 0 if not reached */
	bool starttls;         /* the EHLO reply lists STARTTLS */
	int mail, rcpt;        /* MAIL FROM:<> / RCPT TO: reply codes, 0 if not sent */
	char banner_text[256]; /* first banner line */
	char rcpt_text[256];   /* first line of the RCPT reply (or of MAIL's when it failed) */
	char error[160];       /* "" or what went wrong, in plain words */
	unsigned ms;           /* time until the probe ended */
};

struct smtp_params {
	int port;
	int timeout_ms;   /* for the whole set */
	const char *helo; /* EHLO argument */
	const char *rcpt; /* NULL: no MAIL/RCPT; else the address for RCPT TO:<...> */
};

typedef void (*smtp_done_cb)(void *arg);

/*
 * Probe addrs[0..n) (textual IPv4/IPv6), writing out[0..n) (the caller's, kept until done).
 * done(arg) runs once from the loop, never inside this call, when every probe has ended or
 * the deadline passed.  NULL on out of memory (nothing started).  Strings are copied.
 */
struct smtp_set *smtp_start(struct evloop *loop, const char *const *addrs, size_t n,
                            const struct smtp_params *p, struct smtp_result *out, smtp_done_cb done,
                            void *arg);
/* Stop whatever still runs (done does not run after this) and free.  Accepts NULL. */
void smtp_free(struct smtp_set *s);

#endif
