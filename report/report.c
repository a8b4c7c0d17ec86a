/*
 * report.c - mxsane-report's counters (see report.h).
 *
 * Sender verdicts are counted once per message: a line marked repeat=yes (the policy
 * service logs the sender check again for each further recipient of the same transaction)
 * is counted in the input summary only.  Everything else counts decisions.
 */
#include "report.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *const table_names[T__COUNT] = {"input",   "verdicts", "would",  "senders",
                                           "clients", "hours",    "history"};

/* ------------------------------------------------------------------ a string map */

struct ment {
	char *key;
	size_t klen;
	uint64_t h;
	void *val;
};

struct map {
	struct ment *tab;
	size_t cap, n, vsize;
};

static uint64_t hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ull;
	}
	return h ? h : 1;
}

static bool map_grow(struct map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 256;
	struct ment *t = calloc(cap, sizeof(*t));
	if (!t)
		return false;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->tab[i].key)
			continue;
		size_t j = m->tab[i].h & (cap - 1);
		while (t[j].key)
			j = (j + 1) & (cap - 1);
		t[j] = m->tab[i];
	}
	free(m->tab);
	m->tab = t;
	m->cap = cap;
	return true;
}

/* The value for key [p, p+n), created zeroed if new; NULL when out of memory. */
static void *map_get(struct map *m, const char *p, size_t n)
{
	if ((m->n + 1) * 2 > m->cap && !map_grow(m))
		return NULL;
	uint64_t h = hash(p, n);
	size_t j = h & (m->cap - 1);
	while (m->tab[j].key) {
		if (m->tab[j].h == h && m->tab[j].klen == n && memcmp(m->tab[j].key, p, n) == 0)
			return m->tab[j].val;
		j = (j + 1) & (m->cap - 1);
	}
	char *k = malloc(n + 1);
	void *v = calloc(1, m->vsize);
	if (!k || !v) {
		free(k);
		free(v);
		return NULL;
	}
	memcpy(k, p, n);
	k[n] = '\0';
	m->tab[j] = (struct ment){k, n, h, v};
	m->n++;
	return v;
}

static void map_free(struct map *m, void (*vfree)(void *))
{
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->tab[i].key)
			continue;
		if (vfree)
			vfree(m->tab[i].val);
		free(m->tab[i].key);
		free(m->tab[i].val);
	}
	free(m->tab);
	memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------ counters */

#define CL_DOMAINS 8 /* distinct domains remembered per client; more are "others" */

struct sender_stats {
	uint64_t refused, would; /* messages */
	unsigned vmask;          /* verdicts seen */
};

struct client_stats {
	uint64_t messages, refused, others;
	size_t nd;
	char *dom[CL_DOMAINS];
	uint64_t dn[CL_DOMAINS];
};

struct hour_stats {
	int64_t hour;
	uint64_t total, refused, would, v[V__COUNT];
};

struct hist {
	int64_t t_ms;
	bool has_time;
	enum verdict verdict;
	enum action action;
	int would;
	enum role role;
	char *prog, *domain, *client, *sender, *recipient, *queue_id;
};

struct report {
	struct report_opts o;
	struct input_counts in;
	uint64_t counts[2][V__COUNT][ACT__COUNT][ACT__COUNT + 1]; /* role verdict action would+1 */
	struct map senders, clients, hours;
	struct hist *hist;
	size_t nhist, caphist;
};

struct report *report_new(const struct report_opts *o)
{
	struct report *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->o = *o;
	r->senders.vsize = sizeof(struct sender_stats);
	r->clients.vsize = sizeof(struct client_stats);
	r->hours.vsize = sizeof(struct hour_stats);
	return r;
}

static void client_free(void *v)
{
	struct client_stats *c = v;
	for (size_t i = 0; i < c->nd; i++)
		free(c->dom[i]);
}

static void hist_free(struct hist *h)
{
	free(h->prog);
	free(h->domain);
	free(h->client);
	free(h->sender);
	free(h->recipient);
	free(h->queue_id);
}

void report_free(struct report *r)
{
	if (!r)
		return;
	map_free(&r->senders, NULL);
	map_free(&r->clients, client_free);
	map_free(&r->hours, NULL);
	for (size_t i = 0; i < r->nhist; i++)
		hist_free(&r->hist[i]);
	free(r->hist);
	free(r);
}

struct input_counts *report_input(struct report *r)
{
	return &r->in;
}

static char *dup_str(struct rstr s)
{
	char *p = malloc(s.n + 1);
	if (p) {
		if (s.n)
			memcpy(p, s.p, s.n);
		p[s.n] = '\0';
	}
	return p;
}

static bool refused(const struct rdec *d)
{
	return d->action == ACT_REJECT;
}

static bool would_refuse(const struct rdec *d)
{
	return d->action != ACT_REJECT && d->would == ACT_REJECT;
}

bool report_add(struct report *r, const struct rdec *d)
{
	struct input_counts *in = &r->in;
	if (r->o.has_since || r->o.has_until) {
		if (!d->has_time) {
			in->no_time++;
			return true;
		}
		if ((r->o.has_since && d->t_ms < r->o.since_ms) ||
		    (r->o.has_until && d->t_ms >= r->o.until_ms)) {
			in->out_of_range++;
			return true;
		}
	}
	if (r->o.domain && (d->domain.n != strlen(r->o.domain) ||
	                    strncasecmp(d->domain.p, r->o.domain, d->domain.n) != 0))
		return true;
	if (r->o.client && (d->client.n != strlen(r->o.client) ||
	                    memcmp(d->client.p, r->o.client, d->client.n) != 0))
		return true;
	if (d->repeat) {
		in->repeats++;
		return true;
	}
	in->decisions++;
	if (d->has_time) {
		if (!in->has_first || d->t_ms < in->first_ms)
			in->first_ms = d->t_ms;
		if (!in->has_first || d->t_ms > in->last_ms)
			in->last_ms = d->t_ms;
		in->has_first = true;
	}
	r->counts[d->role][d->verdict][d->action][d->would + 1]++;

	if (d->role == ROLE_SENDER && d->domain.n && (refused(d) || would_refuse(d))) {
		struct sender_stats *s = map_get(&r->senders, d->domain.p, d->domain.n);
		if (!s)
			return false;
		if (refused(d))
			s->refused++;
		else
			s->would++;
		s->vmask |= 1u << d->verdict;
	}
	if (d->role == ROLE_SENDER && d->client.n &&
	    (d->verdict == V_NULL_MX || d->verdict == V_NXDOMAIN)) {
		struct client_stats *c = map_get(&r->clients, d->client.p, d->client.n);
		if (!c)
			return false;
		c->messages++;
		if (refused(d))
			c->refused++;
		size_t i;
		for (i = 0; i < c->nd; i++)
			if (strlen(c->dom[i]) == d->domain.n &&
			    memcmp(c->dom[i], d->domain.p, d->domain.n) == 0)
				break;
		if (i < c->nd) {
			c->dn[i]++;
		} else if (c->nd < CL_DOMAINS) {
			if (!(c->dom[c->nd] = dup_str(d->domain)))
				return false;
			c->dn[c->nd++] = 1;
		} else {
			c->others++;
		}
	}
	if (d->has_time) {
		int64_t hr = d->t_ms >= 0 ? d->t_ms / 3600000 : (d->t_ms - 3599999) / 3600000;
		struct hour_stats *h = map_get(&r->hours, (const char *)&hr, sizeof(hr));
		if (!h)
			return false;
		h->hour = hr;
		h->total++;
		h->v[d->verdict]++;
		if (refused(d))
			h->refused++;
		if (would_refuse(d))
			h->would++;
	}
	if (r->o.domain || r->o.client) {
		if (r->nhist == r->caphist) {
			size_t cap = r->caphist ? r->caphist * 2 : 64;
			struct hist *n = realloc(r->hist, cap * sizeof(*n));
			if (!n)
				return false;
			r->hist = n;
			r->caphist = cap;
		}
		struct hist *h = &r->hist[r->nhist];
		*h = (struct hist){.t_ms = d->t_ms,
		                   .has_time = d->has_time,
		                   .verdict = d->verdict,
		                   .action = d->action,
		                   .would = d->would,
		                   .role = d->role,
		                   .prog = dup_str(d->prog),
		                   .domain = dup_str(d->domain),
		                   .client = dup_str(d->client),
		                   .sender = dup_str(d->sender),
		                   .recipient = dup_str(d->recipient),
		                   .queue_id = dup_str(d->queue_id)};
		r->nhist++;
		if (!h->prog || !h->domain || !h->client || !h->sender || !h->recipient ||
		    !h->queue_id)
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------ tables */

void fmt_time(char *out, size_t len, int64_t ms, bool hour_only)
{
	time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(out, len, hour_only ? "%Y-%m-%dT%H:00Z" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static bool t_init(struct table *t, const char *name, const char *title, const char *const *cols,
                   size_t ncols, uint32_t numeric)
{
	memset(t, 0, sizeof(*t));
	t->name = name;
	t->title = title;
	t->cols = cols;
	t->ncols = ncols;
	t->numeric = numeric;
	return true;
}

/* Append a row of t->ncols cells (copied). */
static bool t_row(struct table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **n = realloc(t->cells, cap * t->ncols * sizeof(*n));
		if (!n)
			return false;
		t->cells = n;
		t->cap = cap;
	}
	char **row = t->cells + t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		row[i] = strdup(cells[i] ? cells[i] : "");
		if (!row[i]) {
			for (size_t j = 0; j < i; j++)
				free(row[j]);
			return false;
		}
	}
	t->nrows++;
	return true;
}

void tables_free(struct table tables[T__COUNT])
{
	for (int i = 0; i < T__COUNT; i++) {
		for (size_t j = 0; j < tables[i].nrows * tables[i].ncols; j++)
			free(tables[i].cells[j]);
		free(tables[i].cells);
		tables[i].cells = NULL;
		tables[i].nrows = tables[i].cap = 0;
	}
}

#define N(x) (sizeof(x) / sizeof((x)[0]))

static const char *const c_input[] = {"item", "value"};
static const char *const c_verdicts[] = {"role", "verdict", "action", "would", "count"};
static const char *const c_would[] = {"role", "verdict", "action", "would", "count"};
static const char *const c_senders[] = {"domain", "verdicts", "refused", "would_refuse"};
static const char *const c_clients[] = {"client_addr", "messages", "refused", "domains"};
static const char *const c_hours[] = {"hour",      "total",    "refused",   "would_refuse",
                                      "ok",        "null_mx",  "nxdomain",  "no_mail_host",
                                      "broken_mx", "mx_cname", "dns_error", "skipped"};
static const char *const c_history[] = {"time",   "program",   "role",    "verdict",
                                        "action", "would",     "domain",  "client_addr",
                                        "sender", "recipient", "queue_id"};

static int cmp_sender(const void *a, const void *b)
{
	const struct ment *x = a, *y = b;
	const struct sender_stats *s = x->val, *t = y->val;
	uint64_t sx = s->refused + s->would, sy = t->refused + t->would;
	if (sx != sy)
		return sx < sy ? 1 : -1;
	return strcmp(x->key, y->key);
}

static int cmp_client(const void *a, const void *b)
{
	const struct ment *x = a, *y = b;
	const struct client_stats *s = x->val, *t = y->val;
	if (s->messages != t->messages)
		return s->messages < t->messages ? 1 : -1;
	return strcmp(x->key, y->key);
}

static int cmp_hour(const void *a, const void *b)
{
	const struct ment *x = a, *y = b;
	const struct hour_stats *s = x->val, *t = y->val;
	return s->hour < t->hour ? -1 : s->hour > t->hour;
}

/* The map's entries, packed, sorted with cmp; NULL with *n 0 when empty or out of memory. */
static struct ment *sorted(const struct map *m, int (*cmp)(const void *, const void *), size_t *n)
{
	*n = 0;
	if (!m->n)
		return NULL;
	struct ment *v = malloc(m->n * sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < m->cap; i++)
		if (m->tab[i].key)
			v[(*n)++] = m->tab[i];
	qsort(v, *n, sizeof(*v), cmp);
	return v;
}

static void u64(char *out, uint64_t v)
{
	snprintf(out, 24, "%llu", (unsigned long long)v);
}

static bool input_rows(struct report *r, struct table *t)
{
	const struct input_counts *in = &r->in;
	struct {
		const char *k;
		uint64_t v;
	} rows[] = {{"files", in->files},
	            {"lines", in->lines},
	            {"decisions", in->decisions},
	            {"repeated_sender_lines", in->repeats},
	            {"other_lines", in->other},
	            {"bad_lines", in->bad + in->overlong},
	            {"overlong_lines", in->overlong},
	            {"outside_since_until", in->out_of_range},
	            {"without_time", in->no_time},
	            {"unreadable_files", in->read_errors}};
	char v[32];
	for (size_t i = 0; i < N(rows); i++) {
		u64(v, rows[i].v);
		if (!t_row(t, (const char *const[]){rows[i].k, v}))
			return false;
	}
	char a[32] = "", b[32] = "";
	if (in->has_first) {
		fmt_time(a, sizeof(a), in->first_ms, false);
		fmt_time(b, sizeof(b), in->last_ms, false);
	}
	return t_row(t, (const char *const[]){"first", a}) &&
	       t_row(t, (const char *const[]){"last", b});
}

static bool count_rows(struct report *r, struct table *t, bool only_would)
{
	char n[32];
	for (int ro = 0; ro < 2; ro++)
		for (int v = 0; v < V__COUNT; v++)
			for (int a = 0; a < ACT__COUNT; a++)
				for (int w = 0; w <= ACT__COUNT; w++) {
					uint64_t c = r->counts[ro][v][a][w];
					if (!c)
						continue;
					/* "would have refused": the action was softened
					 * (monitor mode, outage guard) from a reject or
					 * tempfail */
					if (only_would &&
					    !(w - 1 == ACT_REJECT || w - 1 == ACT_TEMPFAIL))
						continue;
					u64(n, c);
					const char *row[] = {
					        role_name((enum role)ro),
					        verdict_name((enum verdict)v),
					        action_name((enum action)a),
					        w ? action_name((enum action)(w - 1)) : "", n};
					if (!t_row(t, row))
						return false;
				}
	return true;
}

static bool sender_rows(struct report *r, struct table *t)
{
	size_t n;
	struct ment *v = sorted(&r->senders, cmp_sender, &n);
	if (r->senders.n && !v)
		return false;
	bool ok = true;
	for (size_t i = 0; i < n && i < r->o.top && ok; i++) {
		const struct sender_stats *s = v[i].val;
		char vs[160] = "", a[32], b[32];
		for (int k = 0; k < V__COUNT; k++)
			if (s->vmask & (1u << k)) {
				if (vs[0])
					strcat(vs, ",");
				strcat(vs, verdict_name((enum verdict)k));
			}
		u64(a, s->refused);
		u64(b, s->would);
		ok = t_row(t, (const char *const[]){v[i].key, vs, a, b});
	}
	free(v);
	return ok;
}

static bool client_rows(struct report *r, struct table *t)
{
	size_t n;
	struct ment *v = sorted(&r->clients, cmp_client, &n);
	if (r->clients.n && !v)
		return false;
	bool ok = true;
	for (size_t i = 0; i < n && i < r->o.top && ok; i++) {
		const struct client_stats *c = v[i].val;
		/* the domains, most used first: "a.example (5), b.example (2)" */
		size_t order[CL_DOMAINS];
		for (size_t k = 0; k < c->nd; k++)
			order[k] = k;
		for (size_t k = 1; k < c->nd; k++)
			for (size_t j = k; j > 0 && c->dn[order[j]] > c->dn[order[j - 1]]; j--) {
				size_t x = order[j];
				order[j] = order[j - 1];
				order[j - 1] = x;
			}
		char ds[CL_DOMAINS * 300 + 64];
		size_t o = 0;
		ds[0] = '\0';
		for (size_t k = 0; k < c->nd; k++)
			o += (size_t)snprintf(ds + o, sizeof(ds) - o, "%s%.256s (%llu)",
			                      k ? ", " : "", c->dom[order[k]],
			                      (unsigned long long)c->dn[order[k]]);
		if (c->others)
			snprintf(ds + o, sizeof(ds) - o, ", others (%llu)",
			         (unsigned long long)c->others);
		char a[32], b[32];
		u64(a, c->messages);
		u64(b, c->refused);
		ok = t_row(t, (const char *const[]){v[i].key, a, b, ds});
	}
	free(v);
	return ok;
}

static bool hour_rows(struct report *r, struct table *t)
{
	size_t n;
	struct ment *v = sorted(&r->hours, cmp_hour, &n);
	if (r->hours.n && !v)
		return false;
	bool ok = true;
	for (size_t i = 0; i < n && ok; i++) {
		const struct hour_stats *h = v[i].val;
		char c[4 + V__COUNT][32];
		const char *row[4 + V__COUNT];
		fmt_time(c[0], sizeof(c[0]), h->hour * 3600000, true);
		u64(c[1], h->total);
		u64(c[2], h->refused);
		u64(c[3], h->would);
		for (int k = 0; k < V__COUNT; k++)
			u64(c[4 + k], h->v[k]);
		for (size_t k = 0; k < N(row); k++)
			row[k] = c[k];
		ok = t_row(t, row);
	}
	free(v);
	return ok;
}

static bool history_rows(struct report *r, struct table *t)
{
	for (size_t i = 0; i < r->nhist; i++) {
		const struct hist *h = &r->hist[i];
		char tm[32] = "";
		if (h->has_time)
			fmt_time(tm, sizeof(tm), h->t_ms, false);
		const char *row[] = {tm,
		                     h->prog,
		                     role_name(h->role),
		                     verdict_name(h->verdict),
		                     action_name(h->action),
		                     h->would >= 0 ? action_name((enum action)h->would) : "",
		                     h->domain,
		                     h->client,
		                     h->sender,
		                     h->recipient,
		                     h->queue_id};
		if (!t_row(t, row))
			return false;
	}
	return true;
}

bool report_tables(struct report *r, struct table t[T__COUNT])
{
	_Static_assert(N(c_hours) == 4 + V__COUNT, "one hour column per verdict");
	t_init(&t[T_INPUT], "input", "Input", c_input, N(c_input), 1u << 1);
	t_init(&t[T_VERDICTS], "verdicts", "Decisions by verdict and action", c_verdicts,
	       N(c_verdicts), 1u << 4);
	t_init(&t[T_WOULD], "would",
	       "Would have refused (monitor mode or outage guard: action softened from reject or "
	       "tempfail)",
	       c_would, N(c_would), 1u << 4);
	t_init(&t[T_SENDERS], "senders",
	       "Top refused sender domains (messages; would_refuse: monitor mode)", c_senders,
	       N(c_senders), 3u << 2);
	t_init(&t[T_CLIENTS], "clients",
	       "Top clients sending from null-MX or nonexistent domains (messages)", c_clients,
	       N(c_clients), 3u << 1);
	t_init(&t[T_HOURS], "hours", "Decisions per hour (UTC)", c_hours, N(c_hours),
	       ~0u << 1 & ((1u << N(c_hours)) - 1));
	t_init(&t[T_HISTORY], "history", "History", c_history, N(c_history), 0);
	bool ok = input_rows(r, &t[T_INPUT]) && count_rows(r, &t[T_VERDICTS], false) &&
	          count_rows(r, &t[T_WOULD], true) && sender_rows(r, &t[T_SENDERS]) &&
	          client_rows(r, &t[T_CLIENTS]) && hour_rows(r, &t[T_HOURS]) &&
	          history_rows(r, &t[T_HISTORY]);
	return ok;
}
