/*
 * test_engine.c - the engine's verdicts from scripted DNS on a fake clock, as unbound's
 * testbound replays scenarios: every verdict class, temporary against permanent answers, the
 * cache's TTLs (positive, negative, errors, clamps), in-flight sharing, the AAAA hedge, the
 * budget, the gates, monitor mode, the outage guard, and the engine's own life cycle.
 *
 * The script is a table keyed by (name, type): the reply's rcode, flags and records (built on
 * the wire by dnswire.h, so the engine parses them as it parses a resolver's), a delay, or a
 * failure without reply (timeout, refused).  A name nobody scripted is answered "refused", a
 * temporary failure, so an unexpected question shows in the verdict.  Each key counts the
 * questions it received.  Time only moves when a test moves it, one millisecond at a time,
 * running the timers that came due.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <ares.h>
#include <cmocka.h>

#include "config.h"
#include "dnsmsg.h"
#include "engine.h"
#include "evloop.h"
#include "log.h"
#include "metrics.h"

#include "dnswire.h"

/* ---- the script ---- */

#define MAXREC   48
#define MAXNS    4
#define MAXENT   256
#define MAXOUT   12
#define MAXMX    48
#define GOOD4    "93.184.216.34"
#define GOOD4B   "185.12.64.1"
#define GOOD6    "2a00:1450:4001:82b::1a"
#define START_MS 1000000

struct rec {
	uint16_t type;
	const char *owner;
	uint32_t ttl;
	unsigned num; /* MX preference, SOA minimum */
	const char *data;
};

enum how { H_REPLY, H_TIMEOUT, H_FAIL };

struct entry {
	const char *name;
	uint16_t qtype;
	bool scripted;
	enum how how;
	int status; /* H_FAIL: the ARES_* code */
	unsigned rcode, flags, delay;
	size_t nan, nns;
	struct rec an[MAXREC];
	struct rec ns[MAXNS];
	unsigned queries;
	uint64_t first_at, last_at; /* fake time of the first and last question */
};

struct pending {
	struct pending *next, **prevp;
	struct ev_timer *timer;
	resolver_cb cb;
	void *arg;
	int status;
	size_t len;
	uint8_t buf[];
};

/* What a check's callback was handed, copied. */
struct outcome {
	unsigned ncb;
	uint64_t at;
	enum verdict verdict;
	enum action action, configured;
	bool monitor, outage, cached, implicit;
	int code;
	char dsn[16];
	char text[1024], reason[1024], header[1024], canonical[300], domain[300];
	char policy[300]; /* the recipient policy entry that applied, "" for none */
	uint32_t ttl;
	double ms;
	size_t nmx;
	struct {
		unsigned pref;
		char host[300];
		bool usable, alias, temp;
		char problem[300];
		size_t naddr;
		char addr[4][64];
		bool bogus[4];
	} mx[MAXMX];
	size_t nnotes;
	char notes[4][400];
};

struct fixture {
	uint64_t now;
	struct evloop *loop;
	struct config *cfg;
	struct engine *e;
	struct entry ent[MAXENT];
	size_t nent;
	struct pending *pend;
	unsigned queries;
	struct outcome out[MAXOUT];
	size_t nout;
	char pool[1 << 16];
	size_t npool;
};

static struct fixture *fx;

static const char *str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *str(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = fx->pool + fx->npool;
	int n = vsnprintf(p, sizeof(fx->pool) - fx->npool, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(fx->pool) - fx->npool);
	fx->npool += (size_t)n + 1;
	return p;
}

static struct entry *find(const char *name, uint16_t qtype)
{
	for (size_t i = 0; i < fx->nent; i++)
		if (fx->ent[i].qtype == qtype && strcasecmp(fx->ent[i].name, name) == 0)
			return &fx->ent[i];
	return NULL;
}

static struct entry *entry_get(const char *name, uint16_t qtype)
{
	struct entry *en = find(name, qtype);
	if (en)
		return en;
	assert_true(fx->nent < MAXENT);
	en = &fx->ent[fx->nent++];
	en->name = str("%s", name);
	en->qtype = qtype;
	return en;
}

/* (Re)script a key: an empty NOERROR reply from a recursive resolver, at once (1 ms). */
static struct entry *script(const char *name, uint16_t qtype)
{
	struct entry *en = entry_get(name, qtype);
	unsigned q = en->queries;
	uint64_t first = en->first_at, last = en->last_at;
	const char *n = en->name;
	memset(en, 0, sizeof(*en));
	en->name = n;
	en->qtype = qtype;
	en->queries = q;
	en->first_at = first;
	en->last_at = last;
	en->scripted = true;
	en->how = H_REPLY;
	en->flags = F_RA;
	en->delay = 1;
	return en;
}

/* A key already scripted keeps its records; otherwise it is scripted afresh. */
static struct entry *scripted(const char *name, uint16_t qtype)
{
	struct entry *en = find(name, qtype);
	return en && en->scripted ? en : script(name, qtype);
}

static void add_an(struct entry *en, uint16_t type, const char *owner, uint32_t ttl, unsigned num,
                   const char *data)
{
	assert_true(en->nan < MAXREC);
	en->an[en->nan++] = (struct rec){type, owner, ttl, num, data};
}

static void add_ns(struct entry *en, uint16_t type, const char *owner, uint32_t ttl, unsigned num,
                   const char *data)
{
	assert_true(en->nns < MAXNS);
	en->ns[en->nns++] = (struct rec){type, owner, ttl, num, data};
}

/* One more MX record in name's MX answer. */
static void mx(const char *name, uint32_t ttl, unsigned pref, const char *host)
{
	add_an(scripted(name, DNS_T_MX), DNS_T_MX, name, ttl, pref, host);
}

static void addr_a(const char *host, uint32_t ttl, const char *ip)
{
	add_an(scripted(host, DNS_T_A), DNS_T_A, host, ttl, 0, ip);
}

static void addr_aaaa(const char *host, uint32_t ttl, const char *ip)
{
	add_an(scripted(host, DNS_T_AAAA), DNS_T_AAAA, host, ttl, 0, ip);
}

/* The answer to (name, qtype) is an alias: the reply holds the CNAME only. */
static struct entry *cname(const char *name, uint16_t qtype, uint32_t ttl, const char *target)
{
	struct entry *en = script(name, qtype);
	add_an(en, DNS_T_CNAME, name, ttl, 0, target);
	return en;
}

/* The name exists without data of the type: NOERROR, SOA of zone in authority. */
static struct entry *nodata(const char *name, uint16_t qtype, uint32_t soa_ttl, uint32_t minimum)
{
	struct entry *en = script(name, qtype);
	add_ns(en, DNS_T_SOA, name, soa_ttl, minimum, NULL);
	return en;
}

static struct entry *nxdomain(const char *name, uint16_t qtype, uint32_t soa_ttl, uint32_t minimum)
{
	struct entry *en = script(name, qtype);
	en->rcode = 3;
	add_ns(en, DNS_T_SOA, name, soa_ttl, minimum, NULL);
	return en;
}

/* No answer: the resolver gives up with ARES_ETIMEOUT after delay ms (as c-ares does after
 * three tries of a quarter of the budget: 2250 ms of the default 3000). */
static struct entry *timeout_after(const char *name, uint16_t qtype, unsigned delay)
{
	struct entry *en = script(name, qtype);
	en->how = H_TIMEOUT;
	en->delay = delay;
	return en;
}

/* SERVFAIL or REFUSED: c-ares reports ARES_ECONNREFUSED once every server failed. */
static struct entry *servfail(const char *name, uint16_t qtype)
{
	struct entry *en = script(name, qtype);
	en->how = H_FAIL;
	en->status = ARES_ECONNREFUSED;
	return en;
}

/* A host with one usable IPv4 address, and nothing else asked of it. */
static void good_host(const char *host, uint32_t ttl)
{
	addr_a(host, ttl, GOOD4);
}

/* A host that has no address at all: A and AAAA NODATA. */
static void addressless_host(const char *host)
{
	nodata(host, DNS_T_A, 3600, 300);
	nodata(host, DNS_T_AAAA, 3600, 300);
}

static unsigned queries(const char *name, uint16_t qtype)
{
	struct entry *en = find(name, qtype);
	return en ? en->queries : 0;
}

static void put_rec(struct msg *m, const struct rec *r)
{
	uint8_t ip[16];
	switch (r->type) {
	case DNS_T_MX: rr_mx(m, r->owner, r->ttl, r->num, r->data); break;
	case DNS_T_CNAME: rr_cname(m, r->owner, r->ttl, r->data); break;
	case DNS_T_A:
		assert_int_equal(inet_pton(AF_INET, r->data, ip), 1);
		rr_a(m, r->owner, r->ttl, ip);
		break;
	case DNS_T_AAAA:
		assert_int_equal(inet_pton(AF_INET6, r->data, ip), 1);
		rr_aaaa(m, r->owner, r->ttl, ip);
		break;
	case DNS_T_SOA: rr_soa(m, r->owner, r->ttl, r->num); break;
	case DNS_T_NS: rr_ns(m, r->owner, r->data); break;
	default: fail_msg("record type %u not scripted", r->type);
	}
}

static void deliver(struct evloop *loop, void *arg)
{
	struct pending *p = arg;
	(void)loop;
	*p->prevp = p->next;
	if (p->next)
		p->next->prevp = p->prevp;
	p->cb(p->arg, p->status, p->len ? p->buf : NULL, p->len);
	free(p);
}

/* The engine's one way to ask DNS: answered later, from the loop, as the resolver does. */
static void fake_query(void *ctx, const char *name, uint16_t qtype, resolver_cb cb, void *arg)
{
	struct fixture *f = ctx;
	struct entry *en = entry_get(name, qtype);
	static struct msg m;
	int status = ARES_ECONNREFUSED;
	unsigned delay = 1;
	size_t len = 0;

	en->queries++;
	f->queries++;
	if (en->queries == 1)
		en->first_at = f->now;
	en->last_at = f->now;
	if (en->scripted) {
		delay = en->delay;
		switch (en->how) {
		case H_TIMEOUT: status = ARES_ETIMEOUT; break;
		case H_FAIL: status = en->status; break;
		case H_REPLY:
			header_flags(&m, en->rcode, (unsigned)en->nan, (unsigned)en->nns,
			             en->flags);
			question(&m, name, qtype);
			for (size_t i = 0; i < en->nan; i++)
				put_rec(&m, &en->an[i]);
			for (size_t i = 0; i < en->nns; i++)
				put_rec(&m, &en->ns[i]);
			assert_true(m.n < sizeof(m.b));
			len = m.n;
			status = en->rcode == 3 ? ARES_ENOTFOUND
			         : en->nan == 0 ? ARES_ENODATA
			                        : ARES_SUCCESS;
			break;
		}
	}
	struct pending *p = malloc(sizeof(*p) + len);
	assert_non_null(p);
	p->cb = cb;
	p->arg = arg;
	p->status = status;
	p->len = len;
	memcpy(p->buf, m.b, len);
	p->next = f->pend;
	p->prevp = &f->pend;
	if (f->pend)
		f->pend->prevp = &p->next;
	f->pend = p;
	p->timer = evloop_timer(f->loop, f->now + delay, deliver, p);
	assert_non_null(p->timer);
}

static uint64_t fake_clock(void *arg)
{
	return ((struct fixture *)arg)->now;
}

/* ---- running checks ---- */

static void on_result(void *arg, const struct check_result *r)
{
	struct outcome *o = arg;
	o->ncb++;
	o->at = fx->now;
	o->verdict = r->verdict;
	o->action = r->action;
	o->configured = r->configured_action;
	o->monitor = r->monitor;
	o->outage = r->outage;
	o->cached = r->cached;
	o->implicit = r->implicit_mx;
	o->code = r->reply.code;
	snprintf(o->dsn, sizeof(o->dsn), "%s", r->reply.dsn ? r->reply.dsn : "");
	snprintf(o->text, sizeof(o->text), "%s", r->text ? r->text : "");
	snprintf(o->reason, sizeof(o->reason), "%s", r->reason ? r->reason : "");
	snprintf(o->header, sizeof(o->header), "%s", r->header ? r->header : "");
	snprintf(o->canonical, sizeof(o->canonical), "%s", r->canonical ? r->canonical : "");
	snprintf(o->domain, sizeof(o->domain), "%s", r->domain ? r->domain : "");
	snprintf(o->policy, sizeof(o->policy), "%s", r->policy ? r->policy : "");
	o->ttl = r->ttl;
	o->ms = r->ms;
	o->nmx = r->nmx;
	for (size_t i = 0; i < r->nmx && i < MAXMX; i++) {
		o->mx[i].pref = r->mx[i].pref;
		snprintf(o->mx[i].host, sizeof(o->mx[i].host), "%s", r->mx[i].host);
		o->mx[i].usable = r->mx[i].usable;
		o->mx[i].alias = r->mx[i].alias;
		o->mx[i].temp = r->mx[i].temp;
		snprintf(o->mx[i].problem, sizeof(o->mx[i].problem), "%s",
		         r->mx[i].problem ? r->mx[i].problem : "");
		o->mx[i].naddr = r->mx[i].naddr;
		for (size_t k = 0; k < r->mx[i].naddr && k < 4; k++) {
			snprintf(o->mx[i].addr[k], sizeof(o->mx[i].addr[k]), "%s",
			         r->mx[i].addrs[k]);
			o->mx[i].bogus[k] = r->mx[i].addr_bogus[k];
		}
	}
	o->nnotes = r->nnotes;
	for (size_t i = 0; i < r->nnotes && i < 4; i++)
		snprintf(o->notes[i], sizeof(o->notes[i]), "%s", r->notes[i]);
}

static struct outcome *new_outcome(void)
{
	assert_true(fx->nout < MAXOUT);
	struct outcome *o = &fx->out[fx->nout++];
	memset(o, 0, sizeof(*o));
	return o;
}

static struct check_request rcpt_req(const char *domain)
{
	const char *a = str("<user@%s>", domain);
	return (struct check_request){
	        .role = ROLE_RECIPIENT, .address = a, .address_len = strlen(a)};
}

static struct check_request sender_req(const char *domain)
{
	const char *a = str("<user@%s>", domain);
	return (struct check_request){.role = ROLE_SENDER, .address = a, .address_len = strlen(a)};
}

/* Move the fake clock ms milliseconds forward, running the timers as they come due. */
static void advance(unsigned ms)
{
	for (unsigned i = 0; i < ms; i++) {
		fx->now++;
		evloop_run_once(fx->loop, 0);
	}
}

/* Until o has its result (at most max_ms). */
static void run_until(struct outcome *o, unsigned max_ms)
{
	for (unsigned i = 0; i < max_ms && o->ncb == 0; i++) {
		fx->now++;
		evloop_run_once(fx->loop, 0);
	}
}

static struct check *start(const struct check_request *req, struct outcome *o)
{
	return engine_check(fx->e, req, on_result, o);
}

/* One check, run to its result. */
static struct outcome *run(const struct check_request *req)
{
	struct outcome *o = new_outcome();
	start(req, o);
	run_until(o, 120000);
	assert_int_equal(o->ncb, 1);
	return o;
}

static struct outcome *rcpt(const char *domain)
{
	struct check_request req = rcpt_req(domain);
	return run(&req);
}

static struct outcome *sender(const char *domain)
{
	struct check_request req = sender_req(domain);
	return run(&req);
}

/* Swap in a configuration loaded from text (the engine keeps its cache). */
static void reconfigure_text(const char *text)
{
	char path[] = "/tmp/mxsane-test-engine-XXXXXX";
	char err[512];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct config *c = config_load(path, err, sizeof(err));
	unlink(path);
	if (!c)
		fail_msg("config: %s", err);
	assert_int_equal(engine_reconfigure(fx->e, c, err, sizeof(err)), 0);
	config_unref(fx->cfg);
	fx->cfg = c;
}

/* A copy of the defaults to edit, swapped in by reconfigure(). */
static struct config *fresh_config(void)
{
	struct config *c = config_defaults();
	assert_non_null(c);
	return c;
}

static void reconfigure(struct config *c)
{
	char err[256];
	assert_int_equal(engine_reconfigure(fx->e, c, err, sizeof(err)), 0);
	config_unref(fx->cfg);
	fx->cfg = c;
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

static int setup(void **state)
{
	(void)state;
	char err[256];
	fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	fx->now = START_MS;
	fx->loop = evloop_new();
	assert_non_null(fx->loop);
	evloop_set_clock(fx->loop, fake_clock, fx);
	fx->cfg = config_defaults();
	assert_non_null(fx->cfg);
	fx->e = engine_new_dns(fx->loop, fx->cfg, &(struct engine_dns){fake_query, fx}, err,
	                       sizeof(err));
	assert_non_null(fx->e);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	/* Answers still scripted to come are delivered first: the engine owns what waits
	 * for them. */
	while (fx->pend) {
		fx->now += 1000;
		evloop_run_once(fx->loop, 0);
	}
	engine_free(fx->e);
	evloop_free(fx->loop);
	config_unref(fx->cfg);
	free(fx);
	fx = NULL;
	return 0;
}

/* ---- verdict classes ---- */

static void test_mx_with_usable_host_is_ok(void **state)
{
	(void)state;
	mx("ok.test", 3600, 10, "mx.ok.test");
	good_host("mx.ok.test", 600);
	struct outcome *o = rcpt("ok.test");
	assert_int_equal(o->verdict, V_OK);
	assert_int_equal(o->action, ACT_ACCEPT);
	assert_int_equal(o->code, 0);
	assert_int_equal(o->ttl, 600); /* the shortest answer behind it */
	assert_false(o->cached);
	assert_false(o->implicit);
	assert_int_equal(o->nmx, 1);
	assert_string_equal(o->mx[0].host, "mx.ok.test");
	assert_true(o->mx[0].usable);
	assert_string_equal(o->mx[0].problem, "");
	assert_int_equal(queries("ok.test", DNS_T_MX), 1);
	assert_int_equal(queries("mx.ok.test", DNS_T_A), 1);
	assert_int_equal(queries("mx.ok.test", DNS_T_AAAA), 0); /* A was enough */
	assert_int_equal(o->ms, 2);                             /* MX, then A: 1 ms each */
}

static void test_null_mx_rejects_with_556(void **state)
{
	(void)state;
	mx("null.test", 3600, 0, "");
	struct outcome *o = rcpt("null.test");
	assert_int_equal(o->verdict, V_NULL_MX);
	assert_int_equal(o->action, ACT_REJECT);
	assert_int_equal(o->code, 556);
	assert_string_equal(o->dsn, "5.1.10");
	assert_int_equal(o->ttl, 3600);
	assert_int_equal(o->nmx, 1);
	assert_string_equal(o->mx[0].host, "");
	assert_string_equal(o->text, "<user@null.test>: null.test does not accept mail (null MX)");
	assert_int_equal(fx->queries, 1); /* nothing else asked */
}

static void test_null_mx_sender_rejects_with_550_5_7_27(void **state)
{
	(void)state;
	mx("null.test", 3600, 0, "");
	struct outcome *o = sender("null.test");
	assert_int_equal(o->verdict, V_NULL_MX);
	assert_int_equal(o->code, 550);
	assert_string_equal(o->dsn, "5.7.27");
}

static void test_nxdomain_rejects_with_550_5_1_2(void **state)
{
	(void)state;
	nxdomain("gone.test", DNS_T_MX, 900, 450);
	struct outcome *o = rcpt("gone.test");
	assert_int_equal(o->verdict, V_NXDOMAIN);
	assert_int_equal(o->action, ACT_REJECT);
	assert_int_equal(o->code, 550);
	assert_string_equal(o->dsn, "5.1.2");
	assert_int_equal(o->ttl, 450); /* min(SOA TTL, MINIMUM) */
	assert_int_equal(o->nmx, 0);
	assert_int_equal(fx->queries, 1);
}

static void test_nxdomain_sender_rejects_with_5_1_8(void **state)
{
	(void)state;
	nxdomain("gone.test", DNS_T_MX, 240, 1800);
	struct outcome *o = sender("gone.test");
	assert_int_equal(o->verdict, V_NXDOMAIN);
	assert_int_equal(o->code, 550);
	assert_string_equal(o->dsn, "5.1.8");
	assert_int_equal(o->ttl, 240);
}

static void test_no_mx_and_no_address_is_no_mail_host(void **state)
{
	(void)state;
	nodata("bare.test", DNS_T_MX, 3600, 600);
	addressless_host("bare.test");
	struct outcome *o = rcpt("bare.test");
	assert_int_equal(o->verdict, V_NO_MAIL_HOST);
	assert_int_equal(o->action, ACT_REJECT);
	assert_int_equal(o->code, 550);
	assert_string_equal(o->dsn, "5.1.2");
	assert_true(o->implicit);
	assert_int_equal(o->nmx, 1);
	assert_string_equal(o->mx[0].host, "bare.test");
	assert_int_equal(o->ttl, 300);
	assert_int_equal(queries("bare.test", DNS_T_AAAA), 1);
}

static void test_implicit_mx_with_own_address_is_ok(void **state)
{
	(void)state;
	nodata("self.test", DNS_T_MX, 450, 450);
	good_host("self.test", 3600);
	struct outcome *o = rcpt("self.test");
	assert_int_equal(o->verdict, V_OK);
	assert_true(o->implicit);
	assert_int_equal(o->ttl, 450); /* the "no MX" answer behind the implicit MX */
}

static void test_implicit_mx_with_only_bogus_address_is_broken_mx_not_no_mail_host(void **state)
{
	(void)state;
	nodata("parked.test", DNS_T_MX, 3600, 3600);
	addr_a("parked.test", 3600, "0.0.0.0");
	nodata("parked.test", DNS_T_AAAA, 3600, 3600);
	struct outcome *o = rcpt("parked.test");
	assert_int_equal(o->verdict, V_BROKEN_MX);
	assert_int_equal(o->action, ACT_TEMPFAIL);
	assert_int_equal(o->code, 450);
	assert_string_equal(o->dsn, "4.4.4");
	assert_true(o->implicit);
}

static void test_mx_host_nxdomain_is_broken_mx(void **state)
{
	(void)state;
	mx("dead.test", 3600, 10, "nowhere.dead.test");
	nxdomain("nowhere.dead.test", DNS_T_A, 600, 600);
	struct outcome *o = rcpt("dead.test");
	assert_int_equal(o->verdict, V_BROKEN_MX);
	assert_int_equal(o->code, 450);
	assert_string_equal(o->mx[0].problem, "does not exist (NXDOMAIN)");
	assert_false(o->mx[0].temp);
	assert_int_equal(o->ttl, 600);
}

static void test_nxdomain_for_A_settles_host_without_AAAA(void **state)
{
	(void)state;
	/* RFC 8020: nothing exists below an NXDOMAIN, so AAAA is not asked; had it been,
	 * its failure would not have mattered */
	mx("dead.test", 3600, 10, "nowhere.dead.test");
	nxdomain("nowhere.dead.test", DNS_T_A, 600, 600);
	servfail("nowhere.dead.test", DNS_T_AAAA);
	struct outcome *o = rcpt("dead.test");
	assert_int_equal(o->verdict, V_BROKEN_MX);
	assert_int_equal(queries("nowhere.dead.test", DNS_T_AAAA), 0);
}

static void test_nxdomain_for_AAAA_settles_host_despite_A_timeout(void **state)
{
	(void)state;
	mx("dead.test", 3600, 10, "nowhere.dead.test");
	timeout_after("nowhere.dead.test", DNS_T_A, 2250);
	nxdomain("nowhere.dead.test", DNS_T_AAAA, 600, 600);
	struct outcome *o = rcpt("dead.test");
	assert_int_equal(o->verdict, V_BROKEN_MX);
	assert_false(o->mx[0].temp);
	assert_int_equal(queries("nowhere.dead.test", DNS_T_AAAA), 1);
}

static void test_mx_host_without_addresses_is_broken_mx(void **state)
{
	(void)state;
	mx("noaddr.test", 3600, 10, "mx.noaddr.test");
	addressless_host("mx.noaddr.test");
	struct outcome *o = rcpt("noaddr.test");
	assert_int_equal(o->verdict, V_BROKEN_MX);
	assert_string_equal(o->mx[0].problem, "has no address records");
	assert_contains(o->reason, "mx.noaddr.test has no address records");
}

static void test_bogus_only_addresses_broken_mx(void **state)
{
	(void)state;
	mx("lan.test", 3600, 10, "mx.lan.test");
	addr_a("mx.lan.test", 3600, "10.1.2.3");
	addr_a("mx.lan.test", 3600, "127.0.0.1");
	addr_aaaa("mx.lan.test", 3600, "fd00::25");
	struct outcome *o = rcpt("lan.test");
	assert_int_equal(o->verdict, V_BROKEN_MX);
	assert_int_equal(o->action, ACT_TEMPFAIL);
	assert_contains(o->mx[0].problem, "only unusable addresses");
	assert_int_equal(queries("mx.lan.test", DNS_T_AAAA), 1); /* A gave nothing usable */
}

static void test_mx_cname_verdict(void **state)
{
	(void)state;
	mx("alias.test", 3600, 10, "mail.alias.test");
	struct entry *en = cname("mail.alias.test", DNS_T_A, 300, "real.alias.test");
	add_an(en, DNS_T_A, "real.alias.test", 900, 0, GOOD4);
	struct outcome *o = rcpt("alias.test");
	assert_int_equal(o->verdict, V_MX_CNAME);
	assert_int_equal(o->action, ACT_WARN);
	assert_int_equal(o->code, 0);
	assert_true(o->mx[0].alias);
	assert_true(o->mx[0].usable);
	assert_contains(o->header, "mx_cname alias.test");
	assert_int_equal(o->ttl, 300); /* the CNAME's */
}

static void test_mx_cname_followed_across_replies(void **state)
{
	(void)state;
	mx("alias.test", 3600, 10, "mail.alias.test");
	cname("mail.alias.test", DNS_T_A, 3600, "real.alias.test");
	good_host("real.alias.test", 120);
	/* the alias's AAAA is asked too: an alias may hide a plain host of the other family */
	cname("mail.alias.test", DNS_T_AAAA, 3600, "real.alias.test");
	nodata("real.alias.test", DNS_T_AAAA, 60, 60);
	struct outcome *o = rcpt("alias.test");
	assert_int_equal(o->verdict, V_MX_CNAME);
	assert_int_equal(queries("real.alias.test", DNS_T_A), 1);
	assert_true(o->ttl <= 120);
}

static void test_plain_host_beats_alias_host(void **state)
{
	(void)state;
	mx("both.test", 3600, 10, "alias.both.test");
	mx("both.test", 3600, 20, "plain.both.test");
	struct entry *en = cname("alias.both.test", DNS_T_A, 300, "real.both.test");
	add_an(en, DNS_T_A, "real.both.test", 300, 0, GOOD4);
	cname("alias.both.test", DNS_T_AAAA, 300, "real.both.test");
	nodata("real.both.test", DNS_T_AAAA, 300, 300);
	good_host("plain.both.test", 3600);
	struct outcome *o = rcpt("both.test");
	assert_int_equal(o->verdict, V_OK);
	assert_int_equal(o->nmx, 2);
	assert_true(o->mx[0].alias);
	assert_contains(o->mx[0].problem, "alias");
	assert_false(o->mx[1].alias);
}

/* ---- temporary failures ---- */

static void test_timeout_on_mx_is_dns_error(void **state)
{
	(void)state;
	timeout_after("slow.test", DNS_T_MX, 2250);
	struct outcome *o = rcpt("slow.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_int_equal(o->action, ACT_TEMPFAIL);
	assert_int_equal(o->code, 451);
	assert_string_equal(o->dsn, "4.4.3");
	assert_int_equal(o->ttl, 30); /* cache.error_ttl */
	assert_contains(o->reason, "timeout");
	assert_int_equal(o->ms, 2250);
}

static void test_mx_never_answered_ends_at_the_deadline(void **state)
{
	(void)state;
	timeout_after("silent.test", DNS_T_MX, 60000);
	struct outcome *o = rcpt("silent.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_int_equal(o->ms, 3000); /* resolver.timeout_ms */
	assert_contains(o->reason, "no answer for the MX lookup of silent.test within 3000 ms");
}

static void test_request_deadline_shortens_the_budget(void **state)
{
	(void)state;
	timeout_after("silent.test", DNS_T_MX, 60000);
	struct outcome *o = new_outcome();
	struct check_request req = rcpt_req("silent.test");
	req.deadline = fx->now + 500;
	start(&req, o);
	run_until(o, 10000);
	assert_int_equal(o->ncb, 1);
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_int_equal(o->ms, 500);
}

static void test_servfail_on_mx_is_dns_error(void **state)
{
	(void)state;
	servfail("broken.test", DNS_T_MX);
	struct outcome *o = rcpt("broken.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_int_equal(o->code, 451);
	assert_contains(o->reason, "SERVFAIL");
}

static void test_referral_is_tempfail_not_5xx(void **state)
{
	(void)state;
	/* an authoritative-only server refers the question elsewhere: NS, no SOA, no RA */
	struct entry *en = script("deleg.test", DNS_T_MX);
	en->flags = 0;
	add_ns(en, DNS_T_NS, "deleg.test", 3600, 0, "ns1.elsewhere.test");
	struct outcome *o = rcpt("deleg.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_int_equal(o->action, ACT_TEMPFAIL);
	assert_true(o->code >= 400 && o->code < 500);
	assert_contains(o->reason, "referral");
}

static void test_nxdomain_without_aa_or_ra_proves_nothing(void **state)
{
	(void)state;
	struct entry *en = nxdomain("maybe.test", DNS_T_MX, 600, 600);
	en->flags = 0;
	struct outcome *o = rcpt("maybe.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_int_equal(o->code, 451);
}

static void test_nxdomain_from_authoritative_server_is_proof(void **state)
{
	(void)state;
	struct entry *en = nxdomain("gone.test", DNS_T_MX, 600, 600);
	en->flags = F_AA;
	struct outcome *o = rcpt("gone.test");
	assert_int_equal(o->verdict, V_NXDOMAIN);
	assert_int_equal(o->code, 550);
}

static void test_empty_answer_without_soa_is_dns_error(void **state)
{
	(void)state;
	script("nosoa.test", DNS_T_MX); /* NOERROR, nothing at all, from a resolver */
	struct outcome *o = rcpt("nosoa.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
}

static void test_truncated_reply_is_dns_error(void **state)
{
	(void)state;
	struct entry *en = script("big.test", DNS_T_MX);
	en->flags |= F_TC;
	add_an(en, DNS_T_MX, "big.test", 3600, 10, "mx.big.test");
	good_host("mx.big.test", 3600);
	struct outcome *o = rcpt("big.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_contains(o->reason, "truncated");
	assert_int_equal(queries("mx.big.test", DNS_T_A), 0);
}

static void test_odd_rcode_is_dns_error(void **state)
{
	(void)state;
	struct entry *en = script("yx.test", DNS_T_MX);
	en->rcode = 6; /* YXDOMAIN: a DNAME substitution too long; nothing proved absent */
	struct outcome *o = rcpt("yx.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
}

static void test_answer_for_another_name_is_dns_error(void **state)
{
	(void)state;
	struct entry *en = script("victim.test", DNS_T_MX);
	add_an(en, DNS_T_MX, "attacker.test", 3600, 10, "mx.attacker.test");
	struct outcome *o = rcpt("victim.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_int_equal(queries("mx.attacker.test", DNS_T_A), 0);
}

static void test_timeout_on_only_mx_host_is_dns_error_not_broken_mx(void **state)
{
	(void)state;
	mx("t.test", 3600, 10, "mx.t.test");
	timeout_after("mx.t.test", DNS_T_A, 2250);
	nodata("mx.t.test", DNS_T_AAAA, 300, 300);
	struct outcome *o = rcpt("t.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_int_equal(o->code, 451);
	assert_true(o->mx[0].temp);
	assert_contains(o->mx[0].problem, "temporary DNS failure");
}

static void test_one_dead_mx_host_and_one_good_is_ok(void **state)
{
	(void)state;
	mx("two.test", 3600, 10, "dead.two.test");
	mx("two.test", 3600, 20, "good.two.test");
	nxdomain("dead.two.test", DNS_T_A, 600, 600);
	good_host("good.two.test", 3600);
	struct outcome *o = rcpt("two.test");
	assert_int_equal(o->verdict, V_OK);
	assert_int_equal(o->nmx, 2);
	assert_string_equal(o->mx[0].problem, "does not exist (NXDOMAIN)");
	assert_false(o->mx[0].usable);
	assert_true(o->mx[1].usable);
	assert_string_equal(o->mx[1].problem, "");
}

static void test_temporary_failure_beats_permanent_negative(void **state)
{
	(void)state;
	mx("mixed.test", 3600, 10, "dead.mixed.test");
	mx("mixed.test", 3600, 20, "flaky.mixed.test");
	nxdomain("dead.mixed.test", DNS_T_A, 600, 600);
	servfail("flaky.mixed.test", DNS_T_A);
	servfail("flaky.mixed.test", DNS_T_AAAA);
	struct outcome *o = rcpt("mixed.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_int_equal(o->code, 451);
	assert_contains(o->reason, "flaky.mixed.test");
	assert_false(o->mx[0].temp);
	assert_true(o->mx[1].temp);
}

static void test_usable_host_settles_without_waiting_for_a_slow_one(void **state)
{
	(void)state;
	mx("fast.test", 3600, 10, "slow.fast.test");
	mx("fast.test", 3600, 20, "quick.fast.test");
	timeout_after("slow.fast.test", DNS_T_A, 2250);
	good_host("quick.fast.test", 3600);
	struct outcome *o = rcpt("fast.test");
	assert_int_equal(o->verdict, V_OK);
	assert_int_equal(o->ms, 2);                /* not the 2250 ms of the slow host */
	assert_string_equal(o->mx[0].problem, ""); /* still pending: nothing known against it */
}

/* ---- A and AAAA ---- */

static void test_aaaa_asked_when_A_has_nothing(void **state)
{
	(void)state;
	mx("v6.test", 3600, 10, "mx.v6.test");
	nodata("mx.v6.test", DNS_T_A, 300, 300);
	addr_aaaa("mx.v6.test", 3600, GOOD6);
	struct outcome *o = rcpt("v6.test");
	assert_int_equal(o->verdict, V_OK);
	assert_int_equal(queries("mx.v6.test", DNS_T_AAAA), 1);
	assert_int_equal(o->ms, 3); /* MX, A, then AAAA */
}

static void test_private_A_and_public_AAAA_is_ok(void **state)
{
	(void)state;
	mx("privv4.test", 3600, 10, "mx.privv4.test");
	addr_a("mx.privv4.test", 3600, "192.168.1.1");
	addr_aaaa("mx.privv4.test", 3600, GOOD6);
	struct outcome *o = rcpt("privv4.test");
	assert_int_equal(o->verdict, V_OK);
}

static void test_aaaa_hedge_asks_aaaa_after_quarter_budget(void **state)
{
	(void)state;
	mx("hedge.test", 3600, 10, "mx.hedge.test");
	timeout_after("mx.hedge.test", DNS_T_A, 2250);
	addr_aaaa("mx.hedge.test", 3600, GOOD6);
	uint64_t t0 = fx->now;
	struct outcome *o = rcpt("hedge.test");
	assert_int_equal(o->verdict, V_OK);
	/* MX at +1, A asked at +1, AAAA at +1 + 750 (a quarter of 3000), answered 1 ms later */
	assert_int_equal(find("mx.hedge.test", DNS_T_AAAA)->first_at, t0 + 1 + 750);
	assert_int_equal(o->ms, 752);
}

static void test_no_hedge_when_A_answers_within_the_quarter(void **state)
{
	(void)state;
	mx("nohedge.test", 3600, 10, "mx.nohedge.test");
	nodata("mx.nohedge.test", DNS_T_A, 300, 300)->delay = 700;
	addr_aaaa("mx.nohedge.test", 3600, GOOD6);
	uint64_t t0 = fx->now;
	struct outcome *o = rcpt("nohedge.test");
	assert_int_equal(o->verdict, V_OK);
	/* AAAA asked once, after A ended (at +701), not by the hedge at +751 */
	assert_int_equal(queries("mx.nohedge.test", DNS_T_AAAA), 1);
	assert_int_equal(find("mx.nohedge.test", DNS_T_AAAA)->first_at, t0 + 701);
}

static void test_hedge_follows_configured_timeout(void **state)
{
	(void)state;
	fx->cfg->timeout_ms = 8000;
	mx("hedge.test", 3600, 10, "mx.hedge.test");
	timeout_after("mx.hedge.test", DNS_T_A, 6000);
	addr_aaaa("mx.hedge.test", 3600, GOOD6);
	uint64_t t0 = fx->now;
	struct outcome *o = rcpt("hedge.test");
	assert_int_equal(o->verdict, V_OK);
	assert_int_equal(find("mx.hedge.test", DNS_T_AAAA)->first_at, t0 + 1 + 2000);
}

static void test_wait_all_asks_both_families(void **state)
{
	(void)state;
	engine_set_wait_all(fx->e, true);
	mx("all.test", 3600, 10, "mx1.all.test");
	mx("all.test", 3600, 20, "mx2.all.test");
	good_host("mx1.all.test", 3600);
	addr_aaaa("mx1.all.test", 3600, GOOD6);
	good_host("mx2.all.test", 3600);
	nodata("mx2.all.test", DNS_T_AAAA, 300, 300);
	struct check_request req = rcpt_req("all.test");
	req.want_addresses = true;
	struct outcome *o = run(&req);
	assert_int_equal(o->verdict, V_OK);
	assert_int_equal(queries("mx1.all.test", DNS_T_AAAA), 1);
	assert_int_equal(queries("mx2.all.test", DNS_T_A), 1); /* every host, not just the first */
	assert_int_equal(o->mx[0].naddr, 2);
	assert_string_equal(o->mx[0].addr[0], GOOD4);
	assert_string_equal(o->mx[0].addr[1], GOOD6);
	assert_int_equal(o->ttl, 300);
}

static void test_want_addresses_marks_bogus_ones(void **state)
{
	(void)state;
	mx("some.test", 3600, 10, "mx.some.test");
	addr_a("mx.some.test", 3600, "127.0.0.1");
	addr_a("mx.some.test", 3600, GOOD4);
	struct check_request req = rcpt_req("some.test");
	req.want_addresses = true;
	struct outcome *o = run(&req);
	assert_int_equal(o->verdict, V_OK);
	assert_int_equal(o->mx[0].naddr, 2);
	assert_true(o->mx[0].bogus[0]);
	assert_false(o->mx[0].bogus[1]);
}

/* ---- the domain's own CNAME ---- */

static void test_cname_at_domain_is_followed(void **state)
{
	(void)state;
	cname("alias.test", DNS_T_MX, 420, "target.test");
	mx("target.test", 3600, 10, "mx.target.test");
	good_host("mx.target.test", 3600);
	struct outcome *o = rcpt("alias.test");
	assert_int_equal(o->verdict, V_OK);
	assert_string_equal(o->canonical, "target.test");
	assert_int_equal(o->ttl, 420); /* every hop counts */
	assert_int_equal(queries("target.test", DNS_T_MX), 1);
}

static void test_cname_and_mx_in_one_reply(void **state)
{
	(void)state;
	struct entry *en = cname("alias.test", DNS_T_MX, 500, "target.test");
	add_an(en, DNS_T_MX, "target.test", 3600, 10, "mx.target.test");
	good_host("mx.target.test", 3600);
	struct outcome *o = rcpt("alias.test");
	assert_int_equal(o->verdict, V_OK);
	assert_string_equal(o->canonical, "target.test");
	assert_int_equal(queries("target.test", DNS_T_MX), 0);
	assert_int_equal(o->ttl, 500);
}

static void test_cname_loop(void **state)
{
	(void)state;
	cname("a.loop.test", DNS_T_MX, 300, "b.loop.test");
	cname("b.loop.test", DNS_T_MX, 300, "a.loop.test");
	struct outcome *o = rcpt("a.loop.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_int_equal(o->code, 451);
	assert_contains(o->reason, "CNAME loop");
	assert_int_equal(queries("a.loop.test", DNS_T_MX), 1);
	assert_int_equal(queries("b.loop.test", DNS_T_MX), 1);
}

static void test_cname_chain_longer_than_8_is_dns_error(void **state)
{
	(void)state;
	for (int i = 0; i < 9; i++)
		cname(str("c%d.chain.test", i), DNS_T_MX, 300, str("c%d.chain.test", i + 1));
	mx("c9.chain.test", 3600, 10, "mx.chain.test");
	good_host("mx.chain.test", 3600);
	struct outcome *o = rcpt("c0.chain.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_contains(o->reason, "longer than 8");
	assert_int_equal(queries("c9.chain.test", DNS_T_MX), 0);
}

static void test_cname_chain_of_8_is_followed(void **state)
{
	(void)state;
	for (int i = 0; i < 8; i++)
		cname(str("c%d.chain.test", i), DNS_T_MX, 300, str("c%d.chain.test", i + 1));
	mx("c8.chain.test", 3600, 10, "mx.chain.test");
	good_host("mx.chain.test", 3600);
	struct outcome *o = rcpt("c0.chain.test");
	assert_int_equal(o->verdict, V_OK);
	assert_string_equal(o->canonical, "c8.chain.test");
}

static void test_cname_to_nxdomain_is_nxdomain(void **state)
{
	(void)state;
	cname("alias.test", DNS_T_MX, 30, "gone.test");
	nxdomain("gone.test", DNS_T_MX, 450, 450);
	struct outcome *o = rcpt("alias.test");
	assert_int_equal(o->verdict, V_NXDOMAIN);
	assert_int_equal(o->code, 550);
	assert_contains(o->reason, "alias target gone.test does not exist");
	assert_int_equal(o->ttl, 30); /* the CNAME expires first */
}

static void test_cname_to_null_mx_is_null_mx(void **state)
{
	(void)state;
	cname("alias.test", DNS_T_MX, 150, "null.test");
	mx("null.test", 3600, 0, "");
	struct outcome *o = rcpt("alias.test");
	assert_int_equal(o->verdict, V_NULL_MX);
	assert_int_equal(o->ttl, 150);
}

static void test_cname_to_unanswered_name_is_dns_error(void **state)
{
	(void)state;
	cname("alias.test", DNS_T_MX, 300, "unserved.test");
	servfail("unserved.test", DNS_T_MX);
	struct outcome *o = rcpt("alias.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
}

static void test_mx_host_cname_loop_is_dns_error(void **state)
{
	(void)state;
	mx("hl.test", 3600, 10, "a.hl.test");
	cname("a.hl.test", DNS_T_A, 300, "b.hl.test");
	cname("b.hl.test", DNS_T_A, 300, "a.hl.test");
	cname("a.hl.test", DNS_T_AAAA, 300, "b.hl.test");
	cname("b.hl.test", DNS_T_AAAA, 300, "a.hl.test");
	struct outcome *o = rcpt("hl.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_contains(o->mx[0].problem, "CNAME chain too long or looping");
	/* the loop goes round through the cache, not by asking again */
	assert_int_equal(queries("a.hl.test", DNS_T_A), 1);
	assert_int_equal(queries("b.hl.test", DNS_T_A), 1);
}

/* ---- the MX set ---- */

static void test_mixed_null_mx_is_ignored_by_default(void **state)
{
	(void)state;
	mx("mixed.test", 3600, 0, "");
	mx("mixed.test", 3600, 10, "mx.mixed.test");
	good_host("mx.mixed.test", 3600);
	struct outcome *o = rcpt("mixed.test");
	assert_int_equal(o->verdict, V_OK);
	assert_int_equal(o->nnotes, 1);
	assert_contains(o->notes[0], "ignored");
	assert_int_equal(o->nmx, 1);
}

static void test_mixed_null_mx_is_null_mx_when_configured(void **state)
{
	(void)state;
	fx->cfg->mixed_null_mx = MIXED_NULL_IS_NULL;
	mx("mixed.test", 3600, 0, "");
	mx("mixed.test", 3600, 10, "mx.mixed.test");
	good_host("mx.mixed.test", 3600);
	struct outcome *o = rcpt("mixed.test");
	assert_int_equal(o->verdict, V_NULL_MX);
	assert_int_equal(o->code, 556);
	assert_int_equal(queries("mx.mixed.test", DNS_T_A), 0);
}

static void test_null_mx_with_nonzero_preference_is_broken_mx(void **state)
{
	(void)state;
	mx("notnull.test", 3600, 10, "");
	struct outcome *o = rcpt("notnull.test");
	assert_int_equal(o->verdict, V_BROKEN_MX);
	assert_int_equal(o->code, 450);
	assert_contains(o->mx[0].problem, "RFC 7505 requires 0");
}

static void test_ip_literal_mx_host_is_broken_mx_without_lookup(void **state)
{
	(void)state;
	mx("lit.test", 3600, 10, "93.184.216.34");
	struct outcome *o = rcpt("lit.test");
	assert_int_equal(o->verdict, V_BROKEN_MX);
	assert_string_equal(o->mx[0].problem, "is an IP address written as a host name");
	assert_int_equal(fx->queries, 1);
}

static void test_mx_hosts_judged_in_preference_order(void **state)
{
	(void)state;
	mx("order.test", 3600, 30, "c.order.test");
	mx("order.test", 3600, 10, "a.order.test");
	mx("order.test", 3600, 20, "b.order.test");
	good_host("a.order.test", 3600);
	good_host("b.order.test", 3600);
	good_host("c.order.test", 3600);
	struct outcome *o = rcpt("order.test");
	assert_int_equal(o->verdict, V_OK);
	assert_string_equal(o->mx[0].host, "a.order.test");
	assert_int_equal(o->mx[2].pref, 30);
	/* all three started at once; the first usable one ends the check */
	assert_int_equal(queries("a.order.test", DNS_T_A), 1);
}

static void test_duplicate_mx_host_is_asked_once(void **state)
{
	(void)state;
	mx("dup.test", 3600, 10, "mx.dup.test");
	mx("dup.test", 3600, 20, "mx.dup.test");
	addressless_host("mx.dup.test");
	struct outcome *o = rcpt("dup.test");
	assert_int_equal(o->verdict, V_BROKEN_MX);
	assert_int_equal(o->nmx, 1);
	assert_int_equal(queries("mx.dup.test", DNS_T_A), 1);
}

/* ---- the budget and the window of hosts ---- */

static void test_every_host_is_looked_at_beyond_the_window(void **state)
{
	(void)state;
	for (int i = 0; i < 40; i++) {
		const char *h = str("mx%02d.many.test", i);
		mx("many.test", 3600, (unsigned)i, h);
		if (i < 39)
			nxdomain(h, DNS_T_A, 600, 600);
	}
	good_host("mx39.many.test", 3600);
	struct outcome *o = rcpt("many.test");
	assert_int_equal(o->verdict, V_OK);
	assert_int_equal(o->nmx, 40);
	assert_true(o->mx[39].usable);
	assert_int_equal(fx->queries, 41);
}

static void test_window_bounds_lookups_in_flight_to_32(void **state)
{
	(void)state;
	for (int i = 0; i < 40; i++) {
		const char *h = str("mx%02d.many.test", i);
		mx("many.test", 3600, (unsigned)i, h);
		nxdomain(h, DNS_T_A, 600, 600)->delay = 100;
	}
	struct outcome *o = new_outcome();
	struct check_request req = rcpt_req("many.test");
	start(&req, o);
	advance(50); /* the MX set is in, the first addresses are not */
	assert_int_equal(fx->queries, 1 + 32);
	assert_int_equal(queries("mx32.many.test", DNS_T_A), 0);
	run_until(o, 10000);
	assert_int_equal(o->verdict, V_BROKEN_MX);
	assert_int_equal(fx->queries, 1 + 40);
	assert_int_equal(o->ms, 201); /* two rounds of 100 ms */
}

static void test_budget_ends_with_unlooked_hosts_is_dns_error(void **state)
{
	(void)state;
	/* the 32 hosts of the window never answer; the 8 behind them, good ones, are never
	 * reached: nothing is proved against the domain */
	for (int i = 0; i < 40; i++) {
		const char *h = str("mx%02d.many.test", i);
		mx("many.test", 3600, (unsigned)i, h);
		if (i < 32) {
			timeout_after(h, DNS_T_A, 60000);
			timeout_after(h, DNS_T_AAAA, 60000);
		} else {
			good_host(h, 3600);
		}
	}
	struct outcome *o = rcpt("many.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_int_equal(o->code, 451);
	assert_int_equal(o->ms, 3000);
	assert_int_equal(queries("mx32.many.test", DNS_T_A), 0);
	assert_true(o->mx[0].temp);
	assert_string_equal(o->mx[39].problem, ""); /* never looked at: nothing against it */
}

/* ---- actions, monitor mode, the outage guard ---- */

static void test_broken_mx_sender_tempfails_with_4_1_8(void **state)
{
	(void)state;
	mx("dead.test", 3600, 10, "nowhere.dead.test");
	nxdomain("nowhere.dead.test", DNS_T_A, 600, 600);
	struct outcome *o = sender("dead.test");
	assert_int_equal(o->verdict, V_BROKEN_MX);
	assert_int_equal(o->code, 450);
	assert_string_equal(o->dsn, "4.1.8");
}

static void test_configured_reject_for_broken_mx_gives_5xx(void **state)
{
	(void)state;
	fx->cfg->actions[V_BROKEN_MX] = ACT_REJECT;
	mx("dead.test", 3600, 10, "nowhere.dead.test");
	nxdomain("nowhere.dead.test", DNS_T_A, 600, 600);
	struct outcome *o = rcpt("dead.test");
	assert_int_equal(o->action, ACT_REJECT);
	assert_int_equal(o->code, 550);
	assert_string_equal(o->dsn, "5.4.4");
}

static void test_configured_tempfail_for_nxdomain_gives_450(void **state)
{
	(void)state;
	fx->cfg->actions[V_NXDOMAIN] = ACT_TEMPFAIL;
	nxdomain("gone.test", DNS_T_MX, 600, 600);
	struct outcome *o = rcpt("gone.test");
	assert_int_equal(o->action, ACT_TEMPFAIL);
	assert_int_equal(o->code, 450);
	assert_string_equal(o->dsn, "4.1.2");
}

static void test_monitor_mode_turns_reject_into_warn(void **state)
{
	(void)state;
	fx->cfg->mode = MODE_MONITOR;
	mx("null.test", 3600, 0, "");
	struct outcome *o = rcpt("null.test");
	assert_int_equal(o->verdict, V_NULL_MX);
	assert_int_equal(o->configured, ACT_REJECT);
	assert_int_equal(o->action, ACT_WARN);
	assert_true(o->monitor);
	assert_int_equal(o->code, 0);
	assert_contains(o->header, "would reject");
}

/* The value of one sample line "NAME{LABELS} V" in the engine's exposition, or -1. */
static long long metric_value(const char *sample)
{
	struct expo x;
	expo_init(&x);
	engine_write_metrics(fx->e, &x);
	assert_false(x.failed);
	long long v = -1;
	size_t n = strlen(sample);
	for (const char *p = x.buf; p && *p;) {
		const char *eol = strchr(p, '\n');
		if (strncmp(p, sample, n) == 0 && p[n] == ' ')
			v = strtoll(p + n + 1, NULL, 10);
		p = eol ? eol + 1 : NULL;
	}
	expo_free(&x);
	return v;
}

static void test_metrics_count_decisions_with_would_in_monitor_mode(void **state)
{
	(void)state;
	mx("null.test", 3600, 0, "");
	rcpt("null.test");
	rcpt("null.test");
	fx->cfg->mode = MODE_MONITOR;
	rcpt("null.test");
	assert_int_equal(
	        metric_value("mxsane_decisions_total{verdict=\"null_mx\",action=\"reject\","
	                     "role=\"recipient\"}"),
	        2);
	assert_int_equal(metric_value("mxsane_decisions_total{verdict=\"null_mx\",action=\"warn\","
	                              "role=\"recipient\",would=\"reject\"}"),
	                 1);
	assert_int_equal(metric_value("mxsane_decision_duration_seconds_count"), 3);
	/* the first asked DNS (1 ms), the others came from the cache (0 ms) */
	assert_int_equal(metric_value("mxsane_decision_duration_seconds_bucket{le=\"0.001\"}"), 3);
	assert_int_equal(metric_value("mxsane_cache_misses_total"), 1);
	assert_int_equal(metric_value("mxsane_cache_hits_total"), 2);
	assert_int_equal(metric_value("mxsane_cache_entries"), 1);
	assert_int_equal(metric_value("mxsane_dns_queries_total{type=\"MX\",outcome=\"noerror\"}"),
	                 1);
}

static void test_metrics_count_dns_outcomes_and_round_trips(void **state)
{
	(void)state;
	fx->cfg->cache_error_ttl = 0;
	nxdomain("gone.test", DNS_T_MX, 300, 300);
	servfail("broken.test", DNS_T_MX);
	timeout_after("slow.test", DNS_T_MX, 5000);
	mx("nohost.test", 3600, 10, "mx.nohost.test");
	nodata("mx.nohost.test", DNS_T_A, 300, 300);
	nodata("mx.nohost.test", DNS_T_AAAA, 300, 300);
	rcpt("gone.test");
	rcpt("broken.test");
	rcpt("slow.test");
	rcpt("nohost.test");
	assert_int_equal(metric_value("mxsane_dns_queries_total{type=\"MX\",outcome=\"nxdomain\"}"),
	                 1);
	assert_int_equal(metric_value("mxsane_dns_queries_total{type=\"MX\",outcome=\"servfail\"}"),
	                 1);
	assert_int_equal(metric_value("mxsane_dns_queries_total{type=\"MX\",outcome=\"noerror\"}"),
	                 1);
	assert_int_equal(metric_value("mxsane_dns_queries_total{type=\"A\",outcome=\"nodata\"}"),
	                 1);
	assert_int_equal(metric_value("mxsane_dns_queries_total{type=\"AAAA\",outcome=\"nodata\"}"),
	                 1);
	assert_int_equal(metric_value("mxsane_checks_in_flight"), 0);
	/* the timed-out query is still in flight: not counted until it ends */
	assert_int_equal(metric_value("mxsane_dns_round_trip_seconds_count"), 5);
	assert_int_equal(
	        metric_value("mxsane_decisions_total{verdict=\"dns_error\",action=\"tempfail\","
	                     "role=\"recipient\"}"),
	        2);
}

static void test_metrics_checks_in_flight(void **state)
{
	(void)state;
	timeout_after("slow.test", DNS_T_MX, 500);
	struct check_request req = rcpt_req("slow.test");
	struct outcome *o = new_outcome();
	start(&req, o);
	assert_int_equal(metric_value("mxsane_checks_in_flight"), 1);
	assert_int_equal(metric_value("mxsane_dns_queries_in_flight"), 1);
	run_until(o, 120000);
	assert_int_equal(metric_value("mxsane_checks_in_flight"), 0);
}

static void test_monitor_mode_turns_tempfail_into_warn(void **state)
{
	(void)state;
	fx->cfg->mode = MODE_MONITOR;
	servfail("broken.test", DNS_T_MX);
	struct outcome *o = rcpt("broken.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_int_equal(o->action, ACT_WARN);
	assert_int_equal(o->code, 0);
	assert_contains(o->header, "would tempfail");
}

/* n checks of distinct domains whose MX lookups fail (no cache between them) */
static struct outcome *failing_checks(int n)
{
	struct outcome *o = NULL;
	for (int i = 0; i < n; i++) {
		const char *d = str("down%d.test", i);
		servfail(d, DNS_T_MX);
		fx->nout = 0;
		o = rcpt(d);
	}
	return o;
}

static void test_outage_guard_accepts_when_most_checks_fail(void **state)
{
	(void)state;
	fx->cfg->on_dns_outage = OUTAGE_ACCEPT;
	fx->cfg->outage_window = 10;
	struct outcome *o = failing_checks(9);
	assert_int_equal(o->action, ACT_TEMPFAIL); /* 9 checks: too few to judge */
	assert_false(o->outage);
	o = failing_checks(1);
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_int_equal(o->action, ACT_WARN);
	assert_true(o->outage);
	assert_int_equal(o->code, 0);
	assert_contains(o->header, "DNS outage");
}

static void test_outage_guard_never_softens_a_proved_verdict(void **state)
{
	(void)state;
	fx->cfg->on_dns_outage = OUTAGE_ACCEPT;
	fx->cfg->outage_window = 10;
	failing_checks(12);
	mx("null.test", 3600, 0, "");
	fx->nout = 0;
	struct outcome *o = rcpt("null.test");
	assert_int_equal(o->action, ACT_REJECT);
	assert_int_equal(o->code, 556);
}

static void test_outage_guard_tempfails_by_default(void **state)
{
	(void)state;
	fx->cfg->outage_window = 10;
	struct outcome *o = failing_checks(12);
	assert_int_equal(o->action, ACT_TEMPFAIL);
	assert_false(o->outage);
	assert_int_equal(o->code, 451);
}

/* ---- the skip and check gates ---- */

static void test_skip_gates_sender_checks_disabled(void **state)
{
	(void)state;
	fx->cfg->check_sender = false;
	mx("null.test", 3600, 0, "");
	struct outcome *o = new_outcome();
	struct check_request req = sender_req("null.test");
	assert_null(start(&req, o)); /* at once */
	assert_int_equal(o->ncb, 1);
	assert_int_equal(o->verdict, V_SKIPPED);
	assert_int_equal(o->action, ACT_ACCEPT);
	assert_contains(o->reason, "sender checks are disabled");
	assert_int_equal(fx->queries, 0);
	/* recipients are still checked */
	o = rcpt("null.test");
	assert_int_equal(o->verdict, V_NULL_MX);
}

static void test_skip_gates_recipient_checks_disabled(void **state)
{
	(void)state;
	fx->cfg->check_recipient = false;
	struct outcome *o = rcpt("null.test");
	assert_int_equal(o->verdict, V_SKIPPED);
	assert_int_equal(fx->queries, 0);
}

static void test_skip_gates_authenticated_sender(void **state)
{
	(void)state;
	struct check_request req = sender_req("null.test");
	req.authenticated = true;
	struct outcome *o = run(&req);
	assert_int_equal(o->verdict, V_SKIPPED);
	assert_string_equal(o->reason, "authenticated sender");
	assert_int_equal(fx->queries, 0);
}

static void test_skip_gates_local_submission_unless_configured(void **state)
{
	(void)state;
	mx("null.test", 3600, 0, "");
	struct check_request req = sender_req("null.test");
	req.local_submission = true;
	struct outcome *o = run(&req);
	assert_int_equal(o->verdict, V_SKIPPED);
	assert_int_equal(fx->queries, 0);
	fx->cfg->check_local_sender = true;
	o = run(&req);
	assert_int_equal(o->verdict, V_NULL_MX);
	assert_int_equal(o->code, 550);
}

static void test_skip_gates_null_sender_and_literal(void **state)
{
	(void)state;
	struct check_request req = {.role = ROLE_SENDER, .address = "<>", .address_len = 2};
	struct outcome *o = run(&req);
	assert_int_equal(o->verdict, V_SKIPPED);
	assert_string_equal(o->reason, "null sender");
	const char *lit = "<user@[192.0.2.1]>";
	req = (struct check_request){
	        .role = ROLE_RECIPIENT, .address = lit, .address_len = strlen(lit)};
	o = run(&req);
	assert_int_equal(o->verdict, V_SKIPPED);
	assert_string_equal(o->reason, "address literal");
	assert_int_equal(fx->queries, 0);
}

static void test_skip_gates_skip_domains_and_clients(void **state)
{
	(void)state;
	reconfigure_text("skip = { domains = [\"null.test\"]; clients = [\"10.9.0.0/16\"]; };\n");
	mx("null.test", 3600, 0, "");
	mx("other.test", 3600, 0, "");
	struct outcome *o = rcpt("null.test");
	assert_int_equal(o->verdict, V_SKIPPED);
	assert_contains(o->reason, "skip.domains");
	struct check_request req = rcpt_req("other.test");
	req.client_addr = "10.9.8.7";
	o = run(&req);
	assert_int_equal(o->verdict, V_SKIPPED);
	assert_contains(o->reason, "skip.clients");
	assert_int_equal(fx->queries, 0);
	req.client_addr = "10.10.8.7";
	o = run(&req);
	assert_int_equal(o->verdict, V_NULL_MX);
}

/* ---- recipient policies (recipient_policies_file) ---- */

/* Swap in a configuration whose recipient_policies_file holds lines; extra is the rest of
 * the main file. */
static void reconfigure_policies(const char *lines, const char *extra)
{
	char path[] = "/tmp/mxsane-test-rpol-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, lines, strlen(lines)), (ssize_t)strlen(lines));
	close(fd);
	reconfigure_text(str("recipient_policies_file = \"%s\";\n%s", path, extra));
	unlink(path); /* loaded: the configuration holds the table */
}

static struct outcome *sender_for(const char *domain, const char *rcpt_addr)
{
	struct check_request req = sender_req(domain);
	req.policy_recipient = rcpt_addr;
	req.policy_recipient_len = rcpt_addr ? strlen(rcpt_addr) : 0;
	return run(&req);
}

static void test_recipient_policy_decides_the_senders_verdict(void **state)
{
	(void)state;
	reconfigure_policies("optout.test check_sender=false   # customer wants no sender checks\n"
	                     ".hosted.test mode=monitor\n",
	                     "");
	mx("null.test", 3600, 0, "");
	/* opted out: skipped without a question, and the line names the entry */
	struct outcome *o = sender_for("null.test", "<bob@OptOut.test>");
	assert_int_equal(o->verdict, V_SKIPPED);
	assert_int_equal(o->action, ACT_ACCEPT);
	assert_string_equal(o->policy, "optout.test");
	assert_contains(o->reason, "optout.test");
	assert_int_equal(fx->queries, 0);
	/* a recipient without an entry: the main configuration, 550 5.7.27 */
	o = sender_for("null.test", "<bob@other.test>");
	assert_int_equal(o->verdict, V_NULL_MX);
	assert_int_equal(o->action, ACT_REJECT);
	assert_int_equal(o->code, 550);
	assert_string_equal(o->dsn, "5.7.27");
	assert_string_equal(o->policy, "");
	/* the same verdict for a subdomain in monitor mode: a warning, would reject */
	o = sender_for("null.test", "<bob@shop.hosted.test>");
	assert_int_equal(o->verdict, V_NULL_MX);
	assert_int_equal(o->configured, ACT_REJECT);
	assert_int_equal(o->action, ACT_WARN);
	assert_true(o->monitor);
	assert_int_equal(o->code, 0);
	assert_string_equal(o->policy, ".hosted.test");
	/* ".hosted.test" is its subdomains only; no recipient at all: the main configuration */
	o = sender_for("null.test", "<bob@hosted.test>");
	assert_int_equal(o->action, ACT_REJECT);
	o = sender_for("null.test", NULL);
	assert_int_equal(o->action, ACT_REJECT);
	assert_string_equal(o->policy, "");
}

static void test_recipient_policy_most_specific_entry_then_main_config(void **state)
{
	(void)state;
	/* x.example.test has an entry of its own without settings: the main configuration's,
	 * not its parent's monitor mode */
	reconfigure_policies(".example.test mode=monitor null_mx=tempfail\n"
	                     "x.example.test\n"
	                     "strict.test mx_cname=reject\n",
	                     "actions = { null_mx = \"reject\"; };\n");
	mx("y.example.test", 3600, 0, "");
	mx("x.example.test", 3600, 0, "");
	struct outcome *o = rcpt("y.example.test");
	assert_int_equal(o->configured, ACT_TEMPFAIL);
	assert_int_equal(o->action, ACT_WARN);
	assert_string_equal(o->policy, ".example.test");
	assert_contains(o->header, "would tempfail");
	o = rcpt("x.example.test");
	assert_int_equal(o->action, ACT_REJECT);
	assert_int_equal(o->code, 556);
	assert_false(o->monitor);
	assert_string_equal(o->policy, "x.example.test");
	/* a class the main file warns about is refused for one customer */
	mx("strict.test", 3600, 10, "alias.strict.test");
	struct entry *en = cname("alias.strict.test", DNS_T_A, 300, "real.strict.test");
	add_an(en, DNS_T_A, "real.strict.test", 900, 0, GOOD4);
	o = rcpt("strict.test");
	assert_int_equal(o->verdict, V_MX_CNAME);
	assert_int_equal(o->action, ACT_REJECT);
	assert_int_equal(o->code / 100, 5);
}

/* The milter's path: a cache miss prepares the request, the engine thread runs it; the
 * recipient's policy applies on the second pass too. */
static void test_recipient_policy_applies_to_a_prepared_request(void **state)
{
	(void)state;
	reconfigure_policies(".hosted.test mode=monitor\n", "");
	mx("null.test", 3600, 0, "");
	const char *r = "<bob@a.hosted.test>";
	struct check_request req = sender_req("null.test");
	req.policy_recipient = r;
	req.policy_recipient_len = strlen(r);
	char prepared[DOMAIN_MAX + 1];
	struct outcome *o = new_outcome();
	assert_false(engine_check_cached(fx->e, &req, on_result, o, prepared));
	req.prepared_domain = prepared;
	o = run(&req);
	assert_int_equal(o->verdict, V_NULL_MX);
	assert_int_equal(o->action, ACT_WARN);
	assert_string_equal(o->policy, ".hosted.test");
	/* and from the cache, at once */
	o = new_outcome();
	req.prepared_domain = NULL;
	assert_true(engine_check_cached(fx->e, &req, on_result, o, NULL));
	assert_int_equal(o->action, ACT_WARN);
}

static void test_invalid_domain_is_skipped(void **state)
{
	(void)state;
	struct check_request req = {.role = ROLE_RECIPIENT, .domain = "bad..test"};
	struct outcome *o = run(&req);
	assert_int_equal(o->verdict, V_SKIPPED);
	assert_contains(o->reason, "invalid domain");
	assert_int_equal(fx->queries, 0);
}

static void test_bare_domain_request_is_checked(void **state)
{
	(void)state;
	mx("null.test", 3600, 0, "");
	struct check_request req = {.role = ROLE_RECIPIENT, .domain = "NULL.test."};
	struct outcome *o = run(&req);
	assert_int_equal(o->verdict, V_NULL_MX);
	assert_string_equal(o->domain, "null.test");
}

/* ---- the cache ---- */

static void test_second_check_is_answered_from_the_cache(void **state)
{
	(void)state;
	mx("ok.test", 3600, 10, "mx.ok.test");
	good_host("mx.ok.test", 600);
	rcpt("ok.test");
	advance(100000); /* 100 s */
	struct outcome *o = new_outcome();
	struct check_request req = rcpt_req("ok.test");
	assert_null(start(&req, o)); /* synchronously */
	assert_int_equal(o->ncb, 1);
	assert_int_equal(o->verdict, V_OK);
	assert_true(o->cached);
	assert_int_equal(o->ttl, 500); /* counted down */
	assert_int_equal(fx->queries, 2);
}

static void test_cache_entry_expires_after_its_ttl(void **state)
{
	(void)state;
	mx("ok.test", 3600, 10, "mx.ok.test");
	good_host("mx.ok.test", 600);
	rcpt("ok.test");
	advance(600000 + 1);
	struct outcome *o = rcpt("ok.test");
	assert_int_equal(o->verdict, V_OK);
	assert_false(o->cached);
	assert_int_equal(queries("ok.test", DNS_T_MX), 1); /* still cached */
	assert_int_equal(queries("mx.ok.test", DNS_T_A), 2);
	assert_int_equal(o->ttl, 600);
}

static void test_cached_negative_answer_expires_after_soa_minimum(void **state)
{
	(void)state;
	nxdomain("gone.test", DNS_T_MX, 900, 60);
	struct outcome *o = rcpt("gone.test");
	assert_int_equal(o->ttl, 60);
	advance(59000);
	o = rcpt("gone.test");
	assert_int_equal(o->verdict, V_NXDOMAIN);
	assert_true(o->cached);
	assert_int_equal(o->ttl, 1);
	assert_int_equal(queries("gone.test", DNS_T_MX), 1);
	advance(1001);
	o = rcpt("gone.test");
	assert_false(o->cached);
	assert_int_equal(queries("gone.test", DNS_T_MX), 2);
}

static void test_cached_nodata_keeps_implicit_mx_verdict(void **state)
{
	(void)state;
	nodata("bare.test", DNS_T_MX, 300, 300);
	addressless_host("bare.test");
	rcpt("bare.test");
	struct outcome *o = rcpt("bare.test");
	assert_int_equal(o->verdict, V_NO_MAIL_HOST);
	assert_true(o->cached);
	assert_int_equal(fx->queries, 3);
}

static void test_cache_ttl_clamped_to_min(void **state)
{
	(void)state;
	fx->cfg->cache_min_ttl = 300;
	mx("short.test", 10, 10, "mx.short.test");
	good_host("mx.short.test", 5);
	struct outcome *o = rcpt("short.test");
	assert_int_equal(o->ttl, 300);
	advance(200000);
	o = rcpt("short.test");
	assert_true(o->cached);
	assert_int_equal(fx->queries, 2);
}

static void test_cache_ttl_clamped_to_max(void **state)
{
	(void)state;
	fx->cfg->cache_max_ttl = 600;
	mx("long.test", 86400, 10, "mx.long.test");
	good_host("mx.long.test", 86400);
	struct outcome *o = rcpt("long.test");
	assert_int_equal(o->ttl, 600);
	advance(600001);
	o = rcpt("long.test");
	assert_false(o->cached);
	assert_int_equal(queries("long.test", DNS_T_MX), 2);
}

static void test_negative_ttl_clamped_to_max(void **state)
{
	(void)state;
	fx->cfg->cache_max_ttl = 100;
	nxdomain("gone.test", DNS_T_MX, 3600, 3600);
	struct outcome *o = rcpt("gone.test");
	assert_int_equal(o->ttl, 100);
}

static void test_error_ttl_keeps_a_failure_for_a_while(void **state)
{
	(void)state;
	servfail("broken.test", DNS_T_MX);
	struct outcome *o = rcpt("broken.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_int_equal(o->ttl, 30);
	advance(29000);
	o = rcpt("broken.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_true(o->cached);
	assert_int_equal(queries("broken.test", DNS_T_MX), 1);
	/* the server is back after error_ttl */
	script("broken.test", DNS_T_MX);
	mx("broken.test", 3600, 0, "");
	advance(1001);
	o = rcpt("broken.test");
	assert_int_equal(o->verdict, V_NULL_MX);
	assert_int_equal(queries("broken.test", DNS_T_MX), 2);
}

static void test_error_ttl_zero_asks_again_at_once(void **state)
{
	(void)state;
	fx->cfg->cache_error_ttl = 0;
	servfail("broken.test", DNS_T_MX);
	struct outcome *o = rcpt("broken.test");
	assert_int_equal(o->ttl, 0);
	o = rcpt("broken.test");
	assert_false(o->cached);
	assert_int_equal(queries("broken.test", DNS_T_MX), 2);
}

static void test_timeout_is_cached_for_error_ttl(void **state)
{
	(void)state;
	fx->cfg->cache_error_ttl = 10;
	timeout_after("slow.test", DNS_T_MX, 2250);
	rcpt("slow.test");
	advance(5000);
	struct outcome *o = rcpt("slow.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_true(o->cached);
	assert_int_equal(o->ttl, 10);
	assert_int_equal(queries("slow.test", DNS_T_MX), 1);
}

static void test_no_cache_when_max_entries_is_zero(void **state)
{
	(void)state;
	struct config *c = fresh_config();
	c->cache_max_entries = 0;
	reconfigure(c);
	mx("null.test", 3600, 0, "");
	rcpt("null.test");
	struct outcome *o = rcpt("null.test");
	assert_false(o->cached);
	assert_int_equal(queries("null.test", DNS_T_MX), 2);
}

static void test_warm_check_of_provider_domain_asks_nothing(void **state)
{
	(void)state;
	/* two domains with the same provider's hosts: the second asks only its MX set */
	mx("one.test", 3600, 10, "mx1.provider.test");
	mx("one.test", 3600, 20, "mx2.provider.test");
	mx("two.test", 3600, 10, "mx1.provider.test");
	mx("two.test", 3600, 20, "mx2.provider.test");
	good_host("mx1.provider.test", 3600);
	good_host("mx2.provider.test", 3600);
	rcpt("one.test");
	unsigned before = fx->queries;
	struct outcome *o = rcpt("two.test");
	assert_int_equal(o->verdict, V_OK);
	assert_int_equal(fx->queries, before + 1);
	assert_int_equal(queries("mx1.provider.test", DNS_T_A), 1);
	o = rcpt("one.test");
	assert_true(o->cached);
	assert_int_equal(fx->queries, before + 1);
}

/* ---- engine_check_cached ---- */

static void test_check_cached_false_when_not_cached_and_asks_nothing(void **state)
{
	(void)state;
	mx("null.test", 3600, 0, "");
	struct outcome *o = new_outcome();
	struct check_request req = rcpt_req("null.test");
	assert_false(engine_check_cached(fx->e, &req, on_result, o, NULL));
	assert_int_equal(o->ncb, 0);
	assert_int_equal(fx->queries, 0);
	advance(10);
	assert_int_equal(o->ncb, 0);
}

static void test_check_cached_answers_from_the_cache(void **state)
{
	(void)state;
	mx("ok.test", 3600, 10, "mx.ok.test");
	good_host("mx.ok.test", 3600);
	rcpt("ok.test");
	struct outcome *o = new_outcome();
	struct check_request req = rcpt_req("ok.test");
	assert_true(engine_check_cached(fx->e, &req, on_result, o, NULL));
	assert_int_equal(o->ncb, 1);
	assert_int_equal(o->verdict, V_OK);
	assert_true(o->cached);
	assert_int_equal(fx->queries, 2);
}

static void test_check_cached_gives_up_halfway(void **state)
{
	(void)state;
	/* the MX set is cached, the host's address expired: no half-made verdict */
	mx("ok.test", 3600, 10, "mx.ok.test");
	good_host("mx.ok.test", 10);
	rcpt("ok.test");
	advance(11000);
	struct outcome *o = new_outcome();
	struct check_request req = rcpt_req("ok.test");
	assert_false(engine_check_cached(fx->e, &req, on_result, o, NULL));
	assert_int_equal(o->ncb, 0);
	assert_int_equal(fx->queries, 2);
	o = rcpt("ok.test");
	assert_int_equal(o->verdict, V_OK);
	assert_int_equal(queries("mx.ok.test", DNS_T_A), 2);
}

static void test_check_cached_runs_the_skip_rules(void **state)
{
	(void)state;
	struct outcome *o = new_outcome();
	struct check_request req = {.role = ROLE_SENDER, .address = "<>", .address_len = 2};
	assert_true(engine_check_cached(fx->e, &req, on_result, o, NULL));
	assert_int_equal(o->ncb, 1);
	assert_int_equal(o->verdict, V_SKIPPED);
}

/* A cache miss leaves the request prepared: its domain parsed and past the gates.  The
 * engine's own check of the prepared request neither parses the address again nor runs the
 * gates again (skip.domains changed in between is not looked at: the check was judged once). */
static void test_check_cached_prepares_the_request_for_one_parse(void **state)
{
	(void)state;
	mx("ok.test", 3600, 10, "mx.ok.test");
	good_host("mx.ok.test", 3600);
	struct outcome *o = new_outcome();
	char prepared[DOMAIN_MAX + 1] = "junk";
	struct check_request req = rcpt_req("OK.Test.");
	assert_false(engine_check_cached(fx->e, &req, on_result, o, prepared));
	assert_string_equal(prepared, "ok.test");
	/* the address itself is not read again: the prepared domain is checked */
	req.address = "not an address";
	req.address_len = strlen(req.address);
	req.prepared_domain = prepared;
	o = run(&req);
	assert_int_equal(o->verdict, V_OK);
	assert_string_equal(o->domain, "ok.test");
	/* a request the gates stop leaves no prepared domain */
	char p2[DOMAIN_MAX + 1] = "junk";
	struct check_request nul = {.role = ROLE_SENDER, .address = "<>", .address_len = 2};
	assert_true(engine_check_cached(fx->e, &nul, on_result, new_outcome(), p2));
	assert_string_equal(p2, "");
}

/* ---- in-flight sharing ---- */

static void test_two_concurrent_checks_share_one_query(void **state)
{
	(void)state;
	mx("ok.test", 3600, 10, "mx.ok.test");
	good_host("mx.ok.test", 3600);
	struct outcome *a = new_outcome(), *b = new_outcome();
	struct check_request req = rcpt_req("ok.test");
	assert_non_null(start(&req, a));
	assert_non_null(start(&req, b));
	run_until(a, 1000);
	run_until(b, 1000);
	assert_int_equal(a->verdict, V_OK);
	assert_int_equal(b->verdict, V_OK);
	assert_int_equal(queries("ok.test", DNS_T_MX), 1);
	assert_int_equal(queries("mx.ok.test", DNS_T_A), 1);
	assert_false(b->cached);
	struct engine_stats st;
	engine_get_stats(fx->e, &st);
	assert_int_equal(st.queries_sent, 2);
	assert_int_equal(st.checks, 2);
	assert_int_equal(st.inflight, 0);
}

static void test_domains_sharing_an_mx_host_share_its_lookup(void **state)
{
	(void)state;
	mx("one.test", 3600, 10, "mx.shared.test");
	mx("two.test", 3600, 10, "mx.shared.test");
	good_host("mx.shared.test", 3600);
	scripted("mx.shared.test", DNS_T_A)->delay = 50;
	struct outcome *a = new_outcome(), *b = new_outcome();
	struct check_request ra = rcpt_req("one.test"), rb = rcpt_req("two.test");
	start(&ra, a);
	start(&rb, b);
	run_until(a, 1000);
	run_until(b, 1000);
	assert_int_equal(a->verdict, V_OK);
	assert_int_equal(b->verdict, V_OK);
	assert_int_equal(a->at, b->at);
	assert_int_equal(queries("mx.shared.test", DNS_T_A), 1);
}

static void test_late_check_joins_a_query_in_flight(void **state)
{
	(void)state;
	mx("slow.test", 3600, 0, "");
	scripted("slow.test", DNS_T_MX)->delay = 200;
	struct outcome *a = new_outcome(), *b = new_outcome();
	struct check_request req = rcpt_req("slow.test");
	start(&req, a);
	advance(150);
	start(&req, b);
	run_until(b, 1000);
	assert_int_equal(a->ncb, 1);
	assert_int_equal(b->verdict, V_NULL_MX);
	assert_int_equal(b->ms, 50); /* waited only for the rest */
	assert_int_equal(queries("slow.test", DNS_T_MX), 1);
}

static void test_shared_failure_reaches_every_waiting_check(void **state)
{
	(void)state;
	timeout_after("slow.test", DNS_T_MX, 1000);
	struct outcome *a = new_outcome(), *b = new_outcome();
	struct check_request req = rcpt_req("slow.test");
	start(&req, a);
	start(&req, b);
	run_until(b, 5000);
	assert_int_equal(a->verdict, V_DNS_ERROR);
	assert_int_equal(b->verdict, V_DNS_ERROR);
	assert_int_equal(queries("slow.test", DNS_T_MX), 1);
}

/* ---- engine_cancel, reconfigure, free ---- */

static void test_engine_cancel_stops_the_callback_and_keeps_the_answers(void **state)
{
	(void)state;
	mx("null.test", 3600, 0, "");
	scripted("null.test", DNS_T_MX)->delay = 10;
	struct outcome *o = new_outcome();
	struct check_request req = rcpt_req("null.test");
	struct check *c = start(&req, o);
	assert_non_null(c);
	engine_cancel(fx->e, c);
	advance(5000);
	assert_int_equal(o->ncb, 0);
	o = rcpt("null.test");
	assert_int_equal(o->verdict, V_NULL_MX);
	assert_true(o->cached); /* the abandoned lookup still filled the cache */
	assert_int_equal(queries("null.test", DNS_T_MX), 1);
}

static void test_engine_cancel_leaves_the_other_waiter_alone(void **state)
{
	(void)state;
	mx("null.test", 3600, 0, "");
	scripted("null.test", DNS_T_MX)->delay = 10;
	struct outcome *a = new_outcome(), *b = new_outcome();
	struct check_request req = rcpt_req("null.test");
	struct check *ca = start(&req, a);
	start(&req, b);
	engine_cancel(fx->e, ca);
	run_until(b, 1000);
	assert_int_equal(a->ncb, 0);
	assert_int_equal(b->verdict, V_NULL_MX);
}

static void test_engine_reconfigure_keeps_cache(void **state)
{
	(void)state;
	nxdomain("gone.test", DNS_T_MX, 600, 600);
	rcpt("gone.test");
	struct config *c = fresh_config();
	c->actions[V_NXDOMAIN] = ACT_TEMPFAIL;
	reconfigure(c);
	struct outcome *o = rcpt("gone.test");
	assert_true(o->cached);
	assert_int_equal(o->action, ACT_TEMPFAIL); /* the new configuration's action */
	assert_int_equal(o->code, 450);
	assert_int_equal(queries("gone.test", DNS_T_MX), 1);
}

static void test_reconfigured_bogus_networks_rejudge_cached_addresses(void **state)
{
	(void)state;
	mx("lan.test", 3600, 10, "mx.lan.test");
	addr_a("mx.lan.test", 3600, "10.1.2.3");
	nodata("mx.lan.test", DNS_T_AAAA, 3600, 3600);
	struct outcome *o = rcpt("lan.test");
	assert_int_equal(o->verdict, V_BROKEN_MX);
	reconfigure_text("bogus_networks = [\"127.0.0.0/8\"];\n");
	o = rcpt("lan.test");
	assert_int_equal(o->verdict, V_OK);
	assert_true(o->cached);
	assert_int_equal(fx->queries, 3);
}

static void test_running_check_keeps_its_configuration(void **state)
{
	(void)state;
	mx("null.test", 3600, 0, "");
	scripted("null.test", DNS_T_MX)->delay = 100;
	struct outcome *o = new_outcome();
	struct check_request req = rcpt_req("null.test");
	start(&req, o);
	advance(10);
	struct config *c = fresh_config();
	c->mode = MODE_MONITOR;
	reconfigure(c);
	run_until(o, 1000);
	assert_int_equal(o->action, ACT_REJECT); /* started under enforce */
	assert_int_equal(o->code, 556);
	o = rcpt("null.test");
	assert_int_equal(o->action, ACT_WARN);
}

static void test_flush_cache_asks_again(void **state)
{
	(void)state;
	mx("null.test", 3600, 0, "");
	rcpt("null.test");
	engine_flush_cache(fx->e);
	struct engine_stats st;
	engine_get_stats(fx->e, &st);
	assert_int_equal(st.cache_entries, 0);
	struct outcome *o = rcpt("null.test");
	assert_false(o->cached);
	assert_int_equal(queries("null.test", DNS_T_MX), 2);
}

static void test_stats_count_checks_hits_and_errors(void **state)
{
	(void)state;
	mx("null.test", 3600, 0, "");
	servfail("broken.test", DNS_T_MX);
	rcpt("null.test");
	rcpt("null.test");
	rcpt("broken.test");
	struct engine_stats st;
	engine_get_stats(fx->e, &st);
	assert_int_equal(st.checks, 3);
	assert_int_equal(st.cache_hits, 1);
	assert_int_equal(st.queries_sent, 2);
	assert_int_equal(st.dns_errors, 1);
	assert_int_equal(st.cache_entries, 2);
}

/* The third check of a domain takes "the first host is usable" from the MX set's memo,
 * without its address lookup; a change of bogus_networks must not leave that memo behind. */
static void test_mx_memo_forgotten_when_bogus_networks_change(void **state)
{
	(void)state;
	mx("memo.test", 3600, 10, "mx.memo.test");
	good_host("mx.memo.test", 3600);
	nodata("mx.memo.test", DNS_T_AAAA, 3600, 3600);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rcpt("memo.test")->verdict, V_OK);
	reconfigure_text("bogus_networks = [\"93.184.216.0/24\"];\n");
	struct outcome *o = rcpt("memo.test");
	assert_int_equal(o->verdict, V_BROKEN_MX);
	assert_contains(o->mx[0].problem, "only unusable addresses");
}

static void test_mx_memo_expires_with_the_address_behind_it(void **state)
{
	(void)state;
	mx("memo.test", 3600, 10, "mx.memo.test");
	good_host("mx.memo.test", 10);
	for (int i = 0; i < 3; i++)
		rcpt("memo.test");
	advance(5000);
	struct outcome *o = rcpt("memo.test");
	assert_true(o->cached);
	assert_int_equal(o->ttl, 5); /* as long as the address it stands for */
	assert_int_equal(queries("mx.memo.test", DNS_T_A), 1);
	advance(5001);
	script("mx.memo.test", DNS_T_A);
	nxdomain("mx.memo.test", DNS_T_A, 600, 600);
	o = rcpt("memo.test");
	assert_int_equal(o->verdict, V_BROKEN_MX);
	assert_int_equal(queries("mx.memo.test", DNS_T_A), 2);
}

static void test_implicit_mx_with_aaaa_failure_is_dns_error_not_no_mail_host(void **state)
{
	(void)state;
	nodata("bare.test", DNS_T_MX, 3600, 600);
	nodata("bare.test", DNS_T_A, 3600, 600);
	servfail("bare.test", DNS_T_AAAA);
	struct outcome *o = rcpt("bare.test");
	assert_int_equal(o->verdict, V_DNS_ERROR);
	assert_int_equal(o->code, 451);
	assert_true(o->implicit);
}

static void test_cached_cname_chain_keeps_canonical_and_ttl(void **state)
{
	(void)state;
	cname("alias.test", DNS_T_MX, 400, "target.test");
	mx("target.test", 3600, 0, "");
	rcpt("alias.test");
	advance(100000);
	struct outcome *o = rcpt("alias.test");
	assert_int_equal(o->verdict, V_NULL_MX);
	assert_true(o->cached);
	assert_string_equal(o->canonical, "target.test");
	assert_int_equal(o->ttl, 300);
	assert_int_equal(fx->queries, 2);
}

static void test_authoritative_nodata_without_soa_is_not_cached(void **state)
{
	(void)state;
	/* RFC 2308 5: a negative answer without SOA has no TTL to be kept for */
	struct entry *en = script("nosoa.test", DNS_T_MX);
	en->flags = F_AA;
	good_host("nosoa.test", 3600);
	struct outcome *o = rcpt("nosoa.test");
	assert_int_equal(o->verdict, V_OK);
	assert_true(o->implicit);
	assert_int_equal(o->ttl, 0);
	o = rcpt("nosoa.test");
	assert_false(o->cached);
	assert_int_equal(queries("nosoa.test", DNS_T_MX), 2);
}

/* Answers the script still had to give are dropped: the engine that asked is gone. */
static void drop_pending(void)
{
	while (fx->pend) {
		struct pending *p = fx->pend;
		fx->pend = p->next;
		evloop_cancel(fx->loop, p->timer);
		free(p);
	}
}

static void test_engine_free_completes_pending_checks_with_dns_error(void **state)
{
	(void)state;
	mx("slow.test", 3600, 0, "");
	scripted("slow.test", DNS_T_MX)->delay = 10000;
	mx("other.test", 3600, 10, "mx.other.test");
	timeout_after("mx.other.test", DNS_T_A, 60000);
	struct outcome *a = new_outcome(), *b = new_outcome();
	struct check_request ra = rcpt_req("slow.test"), rb = rcpt_req("other.test");
	start(&ra, a);
	start(&rb, b);
	advance(10);
	assert_int_equal(b->ncb, 0);
	engine_free(fx->e);
	fx->e = NULL;
	drop_pending();
	assert_int_equal(a->ncb, 1);
	assert_int_equal(a->verdict, V_DNS_ERROR);
	assert_int_equal(a->code, 451);
	assert_int_equal(b->ncb, 1);
	assert_int_equal(b->verdict, V_DNS_ERROR);
	advance(20000); /* no timer of the engine is left to fire */
	assert_int_equal(a->ncb, 1);
	assert_int_equal(b->ncb, 1);
}

int main(void)
{
	log_open("test_engine", true, LOG_MAIL);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(test_mx_with_usable_host_is_ok),
	        T(test_null_mx_rejects_with_556),
	        T(test_null_mx_sender_rejects_with_550_5_7_27),
	        T(test_nxdomain_rejects_with_550_5_1_2),
	        T(test_nxdomain_sender_rejects_with_5_1_8),
	        T(test_no_mx_and_no_address_is_no_mail_host),
	        T(test_implicit_mx_with_own_address_is_ok),
	        T(test_implicit_mx_with_only_bogus_address_is_broken_mx_not_no_mail_host),
	        T(test_mx_host_nxdomain_is_broken_mx),
	        T(test_nxdomain_for_A_settles_host_without_AAAA),
	        T(test_nxdomain_for_AAAA_settles_host_despite_A_timeout),
	        T(test_mx_host_without_addresses_is_broken_mx),
	        T(test_bogus_only_addresses_broken_mx),
	        T(test_mx_cname_verdict),
	        T(test_mx_cname_followed_across_replies),
	        T(test_plain_host_beats_alias_host),
	        T(test_timeout_on_mx_is_dns_error),
	        T(test_mx_never_answered_ends_at_the_deadline),
	        T(test_request_deadline_shortens_the_budget),
	        T(test_servfail_on_mx_is_dns_error),
	        T(test_referral_is_tempfail_not_5xx),
	        T(test_nxdomain_without_aa_or_ra_proves_nothing),
	        T(test_nxdomain_from_authoritative_server_is_proof),
	        T(test_empty_answer_without_soa_is_dns_error),
	        T(test_truncated_reply_is_dns_error),
	        T(test_odd_rcode_is_dns_error),
	        T(test_answer_for_another_name_is_dns_error),
	        T(test_timeout_on_only_mx_host_is_dns_error_not_broken_mx),
	        T(test_one_dead_mx_host_and_one_good_is_ok),
	        T(test_temporary_failure_beats_permanent_negative),
	        T(test_usable_host_settles_without_waiting_for_a_slow_one),
	        T(test_aaaa_asked_when_A_has_nothing),
	        T(test_private_A_and_public_AAAA_is_ok),
	        T(test_aaaa_hedge_asks_aaaa_after_quarter_budget),
	        T(test_no_hedge_when_A_answers_within_the_quarter),
	        T(test_hedge_follows_configured_timeout),
	        T(test_wait_all_asks_both_families),
	        T(test_want_addresses_marks_bogus_ones),
	        T(test_cname_at_domain_is_followed),
	        T(test_cname_and_mx_in_one_reply),
	        T(test_cname_loop),
	        T(test_cname_chain_longer_than_8_is_dns_error),
	        T(test_cname_chain_of_8_is_followed),
	        T(test_cname_to_nxdomain_is_nxdomain),
	        T(test_cname_to_null_mx_is_null_mx),
	        T(test_cname_to_unanswered_name_is_dns_error),
	        T(test_mx_host_cname_loop_is_dns_error),
	        T(test_mixed_null_mx_is_ignored_by_default),
	        T(test_mixed_null_mx_is_null_mx_when_configured),
	        T(test_null_mx_with_nonzero_preference_is_broken_mx),
	        T(test_ip_literal_mx_host_is_broken_mx_without_lookup),
	        T(test_mx_hosts_judged_in_preference_order),
	        T(test_duplicate_mx_host_is_asked_once),
	        T(test_every_host_is_looked_at_beyond_the_window),
	        T(test_window_bounds_lookups_in_flight_to_32),
	        T(test_budget_ends_with_unlooked_hosts_is_dns_error),
	        T(test_broken_mx_sender_tempfails_with_4_1_8),
	        T(test_configured_reject_for_broken_mx_gives_5xx),
	        T(test_configured_tempfail_for_nxdomain_gives_450),
	        T(test_monitor_mode_turns_reject_into_warn),
	        T(test_monitor_mode_turns_tempfail_into_warn),
	        T(test_outage_guard_accepts_when_most_checks_fail),
	        T(test_outage_guard_never_softens_a_proved_verdict),
	        T(test_outage_guard_tempfails_by_default),
	        T(test_skip_gates_sender_checks_disabled),
	        T(test_skip_gates_recipient_checks_disabled),
	        T(test_skip_gates_authenticated_sender),
	        T(test_skip_gates_local_submission_unless_configured),
	        T(test_skip_gates_null_sender_and_literal),
	        T(test_skip_gates_skip_domains_and_clients),
	        T(test_invalid_domain_is_skipped),
	        T(test_recipient_policy_decides_the_senders_verdict),
	        T(test_recipient_policy_most_specific_entry_then_main_config),
	        T(test_recipient_policy_applies_to_a_prepared_request),
	        T(test_bare_domain_request_is_checked),
	        T(test_second_check_is_answered_from_the_cache),
	        T(test_cache_entry_expires_after_its_ttl),
	        T(test_cached_negative_answer_expires_after_soa_minimum),
	        T(test_cached_nodata_keeps_implicit_mx_verdict),
	        T(test_cache_ttl_clamped_to_min),
	        T(test_cache_ttl_clamped_to_max),
	        T(test_negative_ttl_clamped_to_max),
	        T(test_error_ttl_keeps_a_failure_for_a_while),
	        T(test_error_ttl_zero_asks_again_at_once),
	        T(test_timeout_is_cached_for_error_ttl),
	        T(test_no_cache_when_max_entries_is_zero),
	        T(test_warm_check_of_provider_domain_asks_nothing),
	        T(test_check_cached_false_when_not_cached_and_asks_nothing),
	        T(test_check_cached_answers_from_the_cache),
	        T(test_check_cached_gives_up_halfway),
	        T(test_check_cached_runs_the_skip_rules),
	        T(test_check_cached_prepares_the_request_for_one_parse),
	        T(test_two_concurrent_checks_share_one_query),
	        T(test_domains_sharing_an_mx_host_share_its_lookup),
	        T(test_late_check_joins_a_query_in_flight),
	        T(test_shared_failure_reaches_every_waiting_check),
	        T(test_engine_cancel_stops_the_callback_and_keeps_the_answers),
	        T(test_engine_cancel_leaves_the_other_waiter_alone),
	        T(test_engine_reconfigure_keeps_cache),
	        T(test_reconfigured_bogus_networks_rejudge_cached_addresses),
	        T(test_running_check_keeps_its_configuration),
	        T(test_flush_cache_asks_again),
	        T(test_stats_count_checks_hits_and_errors),
	        T(test_engine_free_completes_pending_checks_with_dns_error),
	        T(test_mx_memo_forgotten_when_bogus_networks_change),
	        T(test_mx_memo_expires_with_the_address_behind_it),
	        T(test_implicit_mx_with_aaaa_failure_is_dns_error_not_no_mail_host),
	        T(test_cached_cname_chain_keeps_canonical_and_ttl),
	        T(test_authoritative_nodata_without_soa_is_not_cached),
	        T(test_metrics_count_decisions_with_would_in_monitor_mode),
	        T(test_metrics_count_dns_outcomes_and_round_trips),
	        T(test_metrics_checks_in_flight),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
