/*
 * report.c - what mxsane-check says about one NAME: the copy of the engine's result, the
 * exit status, the advisory notes (TTLs, priorities, unanswering preferred hosts) and the
 * three renderings: the checklist, one line (-f) and one JSON object (-j).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "log.h"

#define TTL_LOW  300   /* below: every resolver asks again within minutes */
#define TTL_HIGH 86400 /* above: a change takes more than a day to be seen everywhere */

struct cres *cres_copy(struct arena *a, const struct check_result *r)
{
	struct cres *c = arena_alloc(a, sizeof(*c));
	if (!c)
		return NULL;
	c->role = r->role;
	c->verdict = r->verdict;
	c->action = r->action;
	c->configured_action = r->configured_action;
	c->code = r->reply.code;
	c->dsn = r->reply.dsn ? r->reply.dsn : "";
	c->domain = arena_strdup(a, r->domain ? r->domain : "");
	c->reason = arena_strdup(a, r->reason ? r->reason : "");
	c->text = arena_strdup(a, r->text ? r->text : "");
	c->header = r->header ? arena_strdup(a, r->header) : NULL;
	c->canonical = r->canonical ? arena_strdup(a, r->canonical) : NULL;
	c->ttl = r->ttl;
	c->cached = r->cached;
	c->implicit_mx = r->implicit_mx;
	c->ms = r->ms;
	c->nnotes = r->nnotes;
	c->notes = r->nnotes ? arena_alloc(a, sizeof(char *) * r->nnotes) : NULL;
	for (size_t i = 0; c->notes && i < r->nnotes; i++)
		c->notes[i] = arena_strdup(a, r->notes[i]);
	if (!c->notes)
		c->nnotes = 0;
	c->mx = r->nmx ? arena_alloc(a, sizeof(struct cmx) * r->nmx) : NULL;
	c->nmx = c->mx ? r->nmx : 0;
	for (size_t i = 0; i < c->nmx; i++) {
		const struct mx_info *m = &r->mx[i];
		struct cmx *x = &c->mx[i];
		x->pref = m->pref;
		x->host = arena_strdup(a, m->host ? m->host : "");
		x->usable = m->usable;
		x->alias = m->alias;
		x->temp = m->temp;
		x->problem = m->problem ? arena_strdup(a, m->problem) : NULL;
		x->ttl = m->ttl;
		size_t n = m->addrs && m->addr_bogus && m->addr_ttl ? m->naddr : 0;
		const char **ad = n ? arena_alloc(a, sizeof(char *) * n) : NULL;
		bool *bo = n ? arena_alloc(a, sizeof(bool) * n) : NULL;
		uint32_t *tt = n ? arena_alloc(a, sizeof(uint32_t) * n) : NULL;
		if (n && (!ad || !bo || !tt))
			return NULL;
		for (size_t k = 0; k < n; k++) {
			ad[k] = arena_strdup(a, m->addrs[k]);
			bo[k] = m->addr_bogus[k];
			tt[k] = m->addr_ttl[k];
		}
		x->naddr = n;
		x->addrs = ad;
		x->bogus = bo;
		x->attl = tt;
	}
	/* equal preferences share the load (RFC 5321 5.1: the client picks among them at
	 * random); not for the implicit MX or a null MX */
	for (size_t i = 0; i < c->nmx; i++) {
		c->mx[i].group = 0;
		for (size_t k = 0; k < c->nmx; k++)
			if (c->mx[k].pref == c->mx[i].pref)
				c->mx[i].group++;
		if (c->implicit_mx || c->verdict == V_NULL_MX)
			c->mx[i].group = 1;
	}
	return c;
}

int status_worst(int a, int b)
{
	static const int rank[] = {[EX_OK_] = 0, [EX_SERVERS] = 1, [EX_TEMP] = 2, [EX_REJECT] = 3};
	int ra = a == EX_INPUT ? 4 : (a >= 0 && a <= 3 ? rank[a] : 5);
	int rb = b == EX_INPUT ? 4 : (b >= 0 && b <= 3 ? rank[b] : 5);
	return rb > ra ? b : a;
}

/* Does the host's first label say it is a backup?  ("backup.example.net",
 * "mx-secondary.example.net", "relay2.example.net") */
static bool named_backup(const char *host)
{
	static const char *const words[] = {"backup",   "bkup",    "secondary", "fallback",
	                                    "failover", "standby", "spare",     "relay"};
	size_t l = strcspn(host, ".");
	char label[64];
	if (l >= sizeof(label))
		l = sizeof(label) - 1;
	memcpy(label, host, l);
	label[l] = '\0';
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(label, words[i]))
			return true;
	return false;
}

static void advise(struct report *rp, const char *s)
{
	if (rp->nadvice < sizeof(rp->advice) / sizeof(rp->advice[0]))
		rp->advice[rp->nadvice++] = s;
}

static void advise_ttl(struct report *rp, struct arena *a, const char *what, uint32_t ttl)
{
	if (ttl < TTL_LOW)
		advise(rp, arena_printf(a,
		                        "%s TTL %u s is below %u s: every resolver asks again that "
		                        "often (fine during a move, a load otherwise)",
		                        what, (unsigned)ttl, TTL_LOW));
	else if (ttl > TTL_HIGH)
		advise(rp, arena_printf(a,
		                        "%s TTL %u s is above one day: a change waits up to that "
		                        "long in resolvers' caches",
		                        what, (unsigned)ttl));
}

/* Did some address of MX target i give a 220 banner?  -1: none of its addresses probed. */
static int host_answers(const struct report *rp, size_t i)
{
	int any = -1;
	for (size_t p = 0; p < rp->nprobes; p++) {
		if (rp->probe_mx[p] != i)
			continue;
		if (rp->probes[p].banner == 220)
			return 1;
		any = 0;
	}
	return any;
}

static void judge_smtp(struct report *rp, struct arena *a)
{
	const struct cres *r = rp->r;
	const struct opts *o = rp->o;
	size_t answering = 0;
	const struct smtp_result *acc = NULL, *ref = NULL;
	size_t acc_i = 0, ref_i = 0;
	for (size_t p = 0; p < rp->nprobes; p++) {
		const struct smtp_result *s = &rp->probes[p];
		if (s->banner == 220)
			answering++;
		if (s->rcpt / 100 == 2 && !acc) {
			acc = s;
			acc_i = rp->probe_mx[p];
		}
		if (s->rcpt / 100 == 5 && !ref) {
			ref = s;
			ref_i = rp->probe_mx[p];
		}
	}
	if (answering == 0)
		rp->smtp_problem = arena_printf(
		        a,
		        "no MX target answers on port %d: none of the %zu address%s probed gave "
		        "a 220 banner",
		        o->smtp_port, rp->nprobes, rp->nprobes == 1 ? "" : "es");
	else if (acc && ref)
		rp->smtp_problem = arena_printf(
		        a,
		        "%s. [%s] refuses mail for %s (%s) while %s. [%s] accepts it: a server "
		        "that does not know the domain bounces the mail sent to it",
		        r->mx[ref_i].host, ref->addr, r->domain, ref->rcpt_text, r->mx[acc_i].host,
		        acc->addr);
	/* a more preferred host that does not answer while a less preferred one does: mail
	 * waits for the retry at the backup, or goes only there */
	for (size_t i = 0; i < r->nmx && !r->implicit_mx; i++) {
		if (host_answers(rp, i) != 0)
			continue;
		for (size_t k = 0; k < r->nmx; k++)
			if (r->mx[k].pref > r->mx[i].pref && host_answers(rp, k) == 1) {
				advise(rp,
				       arena_printf(a,
				                    "%s. (preference %u) does not answer on port "
				                    "%d while %s. (preference %u) does: senders "
				                    "try the unanswering host first",
				                    r->mx[i].host, r->mx[i].pref, o->smtp_port,
				                    r->mx[k].host, r->mx[k].pref));
				break;
			}
	}
}

void report_judge(struct report *rp, struct arena *a)
{
	const struct cres *r = rp->r;
	rp->nadvice = 0;
	rp->smtp_problem = NULL;
	if (rp->input_error || !r) {
		rp->status = EX_INPUT;
		return;
	}
	rp->status = r->action == ACT_REJECT ? EX_REJECT : r->action == ACT_TEMPFAIL ? EX_TEMP : 0;
	if (r->verdict == V_SKIPPED)
		return;
	if (r->nmx && !r->implicit_mx)
		advise_ttl(rp, a, "the MX set's", r->mx[0].ttl);
	for (size_t i = 0; i < r->nmx; i++) {
		const struct cmx *m = &r->mx[i];
		if (!m->naddr)
			continue;
		uint32_t low = m->attl[0];
		for (size_t k = 1; k < m->naddr; k++)
			if (m->attl[k] < low)
				low = m->attl[k];
		advise_ttl(rp, a, arena_printf(a, "the addresses of %s.", m->host), low);
	}
	for (size_t i = 0; i < r->nmx && !r->implicit_mx && r->verdict != V_NULL_MX; i++) {
		if (!named_backup(r->mx[i].host))
			continue;
		for (size_t k = 0; k < r->nmx; k++)
			if (r->mx[k].pref > r->mx[i].pref && !named_backup(r->mx[k].host)) {
				advise(rp,
				       arena_printf(
				               a,
				               "priorities look backwards: %s. (preference %u) "
				               "is named as a backup but is preferred over %s. "
				               "(preference %u); the lower number is tried first",
				               r->mx[i].host, r->mx[i].pref, r->mx[k].host,
				               r->mx[k].pref));
				break;
			}
	}
	if (rp->o->smtp && rp->nprobes)
		judge_smtp(rp, a);
	if (rp->smtp_problem)
		rp->status = status_worst(rp->status, EX_SERVERS);
	if (rp->prop && allns_problem(rp->prop))
		rp->status = status_worst(rp->status, EX_SERVERS);
}

/* ---------------------------------------------------------------- rendering */

static void jstr(FILE *f, const char *s)
{
	char esc[4096];
	if (!s) {
		fputs("null", f);
		return;
	}
	log_escape_json(esc, sizeof(esc), s);
	fprintf(f, "\"%s\"", esc);
}

static uint32_t cached_for(const struct report *rp)
{
	uint32_t t = rp->r->ttl;
	if (t < rp->o->cache_min_ttl)
		t = rp->o->cache_min_ttl;
	if (t > rp->o->cache_max_ttl)
		t = rp->o->cache_max_ttl;
	return t;
}

static void json_probe(FILE *f, const struct smtp_result *s)
{
	fputs("{\"address\":", f);
	jstr(f, s->addr);
	fprintf(f, ",\"ok\":%s,\"connected\":%s", s->banner == 220 ? "true" : "false",
	        s->connected ? "true" : "false");
	if (s->banner) {
		fprintf(f, ",\"banner_code\":%d,\"banner\":", s->banner);
		jstr(f, s->banner_text);
	}
	if (s->ehlo)
		fprintf(f, ",\"ehlo_code\":%d,\"starttls\":%s", s->ehlo,
		        s->starttls ? "true" : "false");
	if (s->mail)
		fprintf(f, ",\"mail_code\":%d", s->mail);
	if (s->rcpt)
		fprintf(f, ",\"rcpt_code\":%d", s->rcpt);
	if (s->rcpt_text[0]) {
		fputs(",\"rcpt_reply\":", f);
		jstr(f, s->rcpt_text);
	}
	if (s->error[0]) {
		fputs(",\"error\":", f);
		jstr(f, s->error);
	}
	fprintf(f, ",\"ms\":%u}", s->ms);
}

static void write_json(FILE *f, const struct report *rp)
{
	const struct cres *r = rp->r;
	fputs("{\"name\":", f);
	jstr(f, rp->name);
	if (rp->input_error) {
		fputs(",\"error\":", f);
		jstr(f, rp->input_error);
		fprintf(f, ",\"status\":%d}\n", rp->status);
		return;
	}
	fputs(",\"domain\":", f);
	jstr(f, r->domain);
	fprintf(f, ",\"role\":\"%s\",\"verdict\":\"%s\",\"action\":\"%s\",\"status\":%d",
	        role_name(r->role), verdict_name(r->verdict), action_name(r->action), rp->status);
	fprintf(f, ",\"configured_action\":\"%s\"", action_name(r->configured_action));
	if (r->code) {
		char buf[1200];
		fprintf(f, ",\"code\":%d,\"dsn\":\"%s\",\"reply\":", r->code, r->dsn);
		snprintf(buf, sizeof(buf), "%d %s %s", r->code, r->dsn, r->text);
		jstr(f, buf);
	} else {
		fputs(",\"code\":null,\"dsn\":null,\"reply\":null", f);
	}
	fputs(",\"header\":", f);
	jstr(f, r->header);
	fprintf(f, ",\"ttl\":%u,\"cached_for\":%u,\"cache\":\"%s\",\"ms\":%.1f,\"implicit_mx\":%s",
	        r->ttl, cached_for(rp), r->cached ? "hit" : "miss", r->ms,
	        r->implicit_mx ? "true" : "false");
	fputs(",\"canonical\":", f);
	jstr(f, r->canonical);
	fputs(",\"reason\":", f);
	jstr(f, r->reason);
	fputs(",\"notes\":[", f);
	for (size_t i = 0; i < r->nnotes; i++) {
		fputs(i ? "," : "", f);
		jstr(f, r->notes[i]);
	}
	fputs("],\"advice\":[", f);
	for (size_t i = 0; i < rp->nadvice; i++) {
		fputs(i ? "," : "", f);
		jstr(f, rp->advice[i]);
	}
	fputs("],\"smtp_problem\":", f);
	jstr(f, rp->smtp_problem);
	fputs(",\"mx\":[", f);
	for (size_t i = 0; i < r->nmx; i++) {
		const struct cmx *m = &r->mx[i];
		char host[300];
		snprintf(host, sizeof(host), "%s.", m->host);
		fprintf(f, "%s{\"pref\":%u,\"host\":", i ? "," : "", m->pref);
		jstr(f, host);
		fprintf(f, ",\"ttl\":%u,\"shares_load\":%zu,\"addresses\":[", m->ttl,
		        m->group > 1 ? m->group : 0);
		for (size_t k = 0; k < m->naddr; k++) {
			fputs(k ? "," : "", f);
			jstr(f, m->addrs[k]);
		}
		fputs("],\"address_ttls\":[", f);
		for (size_t k = 0; k < m->naddr; k++)
			fprintf(f, "%s%u", k ? "," : "", m->attl[k]);
		fputs("],\"bogus\":[", f);
		bool first = true;
		for (size_t k = 0; k < m->naddr; k++)
			if (m->bogus[k]) {
				fputs(first ? "" : ",", f);
				first = false;
				jstr(f, m->addrs[k]);
			}
		fprintf(f, "],\"usable\":%s,\"alias\":%s,\"temporary\":%s,\"problem\":",
		        m->usable ? "true" : "false", m->alias ? "true" : "false",
		        m->temp ? "true" : "false");
		jstr(f, m->problem);
		if (rp->o->smtp) {
			fputs(",\"smtp\":[", f);
			bool f2 = true;
			for (size_t p = 0; p < rp->nprobes; p++) {
				if (rp->probe_mx[p] != i)
					continue;
				fputs(f2 ? "" : ",", f);
				f2 = false;
				json_probe(f, &rp->probes[p]);
			}
			fputc(']', f);
		}
		fputc('}', f);
	}
	fputc(']', f);
	if (rp->prop) {
		fputs(",\"propagation\":", f);
		allns_write_json(f, rp->prop);
	}
	fputs("}\n", f);
}

static const char *mark(bool good)
{
	return good ? "[ok]" : "[!!]";
}

static void text_probe(FILE *f, const struct report *rp, const struct smtp_result *s)
{
	fprintf(f, "         smtp %s port %d: ", s->addr, rp->o->smtp_port);
	if (!s->banner) {
		fprintf(f, "FAILED: %s\n", s->error);
		return;
	}
	fprintf(f, "%s%s\n", s->banner == 220 ? "" : "FAILED: ", s->banner_text);
	if (s->banner != 220)
		return;
	if (s->ehlo == 250)
		fprintf(f, "           EHLO: 250, STARTTLS %s\n",
		        s->starttls ? "offered" : "not offered");
	else if (s->ehlo)
		fprintf(f, "           EHLO: FAILED: %s\n", s->error);
	if (s->mail && s->mail / 100 != 2)
		fprintf(f, "           MAIL FROM:<>: REFUSED: %s\n", s->rcpt_text);
	else if (s->rcpt)
		fprintf(f, "           RCPT TO: %s%s\n",
		        s->rcpt / 100 == 2 ? "" : "REFUSED: ", s->rcpt_text);
	if (s->error[0] && s->ehlo == 250)
		fprintf(f, "           FAILED: %s\n", s->error);
	else if (!s->ehlo && s->error[0])
		fprintf(f, "           FAILED: %s\n", s->error);
}

static void write_text(FILE *f, const struct report *rp)
{
	const struct cres *r = rp->r;
	char name[4 * 1024 + 3];
	/* the argument as the log shows network input: a terminal escape sequence or any other
	 * control octet in it is written as \xHH, never passed to the terminal */
	log_escape_kv(name, sizeof(name), rp->name);
	fprintf(f, "%s (%s)\n", name, role_name(r->role));
	if (r->verdict == V_SKIPPED) {
		fprintf(f, "  not checked: %s\n", r->reason);
		fprintf(f, "  verdict: skipped, action: accept\n\n");
		return;
	}
	if (r->canonical)
		fprintf(f, "  domain: %s (alias of %s)\n", r->domain, r->canonical);
	else
		fprintf(f, "  domain: %s\n", r->domain);
	bool exists = r->verdict != V_NXDOMAIN && r->verdict != V_DNS_ERROR;
	if (r->verdict == V_DNS_ERROR)
		fprintf(f, "  [??] could not be checked: %s\n", r->reason);
	else
		fprintf(f, "  %s domain %s\n", mark(exists), exists ? "exists" : "does not exist");
	if (r->verdict == V_NULL_MX)
		fprintf(f, "  [!!] null MX (RFC 7505): the domain says it accepts no mail\n");
	else if (r->implicit_mx)
		fprintf(f, "  [!!] no MX records: mail goes to the domain's own address (implicit "
		           "MX)\n");
	else if (exists && r->nmx)
		fprintf(f, "  [ok] %zu MX record%s, TTL %u s\n", r->nmx, r->nmx == 1 ? "" : "s",
		        r->mx[0].ttl);
	else if (exists && r->verdict != V_DNS_ERROR)
		fprintf(f, "  [!!] no MX records\n");
	for (size_t i = 0; i < r->nmx; i++) {
		const struct cmx *m = &r->mx[i];
		bool good = m->usable && !m->alias && !m->problem;
		if (r->implicit_mx)
			fprintf(f, "  %s %s (implicit MX)", mark(m->usable), m->host);
		else
			fprintf(f, "  %s MX %u %s.", r->verdict == V_NULL_MX ? "[!!]" : mark(good),
			        m->pref, m->host);
		if (m->problem)
			fprintf(f, ": %s", m->problem);
		if (m->group > 1)
			fprintf(f, "  (shares the load with %zu other host%s at preference %u)",
			        m->group - 1, m->group == 2 ? "" : "s", m->pref);
		fputc('\n', f);
		for (size_t k = 0; k < m->naddr; k++)
			fprintf(f, "         %-15s TTL %u s%s\n", m->addrs[k], m->attl[k],
			        m->bogus[k] ? "  (unusable: loopback/private/reserved)" : "");
		for (size_t p = 0; p < rp->nprobes; p++)
			if (rp->probe_mx[p] == i)
				text_probe(f, rp, &rp->probes[p]);
	}
	if (rp->o->smtp && rp->nprobes) {
		size_t answering = 0;
		for (size_t p = 0; p < rp->nprobes; p++)
			answering += rp->probes[p].banner == 220;
		fprintf(f, "  %s smtp: %zu of %zu address%s answer%s on port %d\n",
		        mark(!rp->smtp_problem), answering, rp->nprobes,
		        rp->nprobes == 1 ? "" : "es", answering == 1 ? "s" : "", rp->o->smtp_port);
	}
	if (rp->smtp_problem)
		fprintf(f, "  [!!] SMTP PROBLEM: %s\n", rp->smtp_problem);
	if (rp->prop)
		allns_write_text(f, rp->prop);
	for (size_t i = 0; i < r->nnotes; i++)
		fprintf(f, "  note: %s\n", r->notes[i]);
	for (size_t i = 0; i < rp->nadvice; i++)
		fprintf(f, "  note: %s\n", rp->advice[i]);
	fprintf(f, "  verdict: %s: %s\n", verdict_name(r->verdict), r->reason);
	if (r->code)
		fprintf(f, "  action:  %s: %d %s %s\n", action_name(r->action), r->code, r->dsn,
		        r->text);
	else if (r->action == ACT_WARN)
		fprintf(f, "  action:  warn: accepted, header X-MXSane: %s\n",
		        r->header ? r->header : "");
	else
		fprintf(f, "  action:  %s\n", action_name(r->action));
	fprintf(f, "  cache:   %s, ttl %u s (a daemon caches this verdict %u s), %.0f ms\n\n",
	        r->cached ? "hit" : "miss", r->ttl, cached_for(rp), r->ms);
}

static void write_line(FILE *f, const struct report *rp)
{
	const struct cres *r = rp->r;
	char name[4 * 1024 + 3];
	log_escape_kv(name, sizeof(name), rp->name);
	if (rp->input_error) {
		fprintf(f, "%s: error: %s\n", name, rp->input_error);
		return;
	}
	fprintf(f, "%s: %s, %s", name, verdict_name(r->verdict), action_name(r->action));
	if (r->verdict != V_SKIPPED)
		fprintf(f, ", ttl %u s", r->ttl);
	fprintf(f, ": %s", r->reason);
	if (rp->o->smtp && rp->nprobes) {
		size_t answering = 0;
		for (size_t p = 0; p < rp->nprobes; p++)
			answering += rp->probes[p].banner == 220;
		fprintf(f, "; smtp: %zu of %zu answer", answering, rp->nprobes);
	}
	if (rp->smtp_problem)
		fprintf(f, "; SMTP PROBLEM: %s", rp->smtp_problem);
	if (rp->prop)
		allns_write_line(f, rp->prop);
	if (rp->nadvice)
		fprintf(f, "; %zu note%s", rp->nadvice, rp->nadvice == 1 ? "" : "s");
	fputc('\n', f);
}

void report_write(FILE *f, const struct report *rp)
{
	if (rp->o->json)
		write_json(f, rp);
	else if (rp->o->batch)
		write_line(f, rp);
	else if (!rp->input_error)
		write_text(f, rp);
	else {
		char esc[4 * 1024 + 3];
		log_escape_kv(esc, sizeof(esc), rp->name);
		fprintf(f, "mxsane-check: %s: %s\n", esc, rp->input_error); /* for stderr */
	}
}
