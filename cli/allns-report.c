/*
 * allns-report.c - how mxsane-check --all-ns says what it found (allns.h): per server
 * address its serial and MX set or why it gave none, and whether the servers agree; as
 * checklist lines, as part of a -f line, or as a JSON object.
 */
#include <stdio.h>
#include <string.h>

#include "allns.h"
#include "log.h"

bool allns_problem(const struct allns_report *r)
{
	return !r->error[0] && (r->mx_sets > 1 || r->serials > 1 || r->lame || r->silent);
}

static const char *st_name(enum allns_status s)
{
	switch (s) {
	case NS_OK: return "ok";
	case NS_LAME: return "lame";
	case NS_SILENT: return "no_answer";
	default: return "error";
	}
}

static void summary(const struct allns_report *r, char *buf, size_t size)
{
	size_t used = 0;
	buf[0] = '\0';
#define ADD(...)                                                                                   \
	do {                                                                                       \
		int w_ = snprintf(buf + used, size - used, __VA_ARGS__);                           \
		if (w_ > 0 && (size_t)w_ < size - used)                                            \
			used += (size_t)w_;                                                        \
	} while (0)
	if (r->mx_sets > 1)
		ADD("%s%zu different MX sets", used ? ", " : "", r->mx_sets);
	if (r->serials > 1)
		ADD("%s%zu different serials", used ? ", " : "", r->serials);
	if (r->lame)
		ADD("%s%zu lame", used ? ", " : "", r->lame);
	if (r->silent)
		ADD("%s%zu not answering", used ? ", " : "", r->silent);
#undef ADD
}

void allns_write_text(FILE *f, const struct allns_report *r)
{
	if (r->error[0]) {
		fprintf(f, "  [??] propagation: not checked: %s\n", r->error);
		return;
	}
	fprintf(f, "  propagation: zone %s, %zu server address%s asked without recursion\n",
	        r->zone, r->n, r->n == 1 ? "" : "es");
	for (size_t i = 0; i < r->n; i++) {
		const struct allns_server *s = &r->s[i];
		if (s->st != NS_OK)
			fprintf(f, "  [!!] %s. %s: %s\n", s->ns, s->addr, s->why);
		else if (s->has_serial)
			fprintf(f, "  %s %s. %s: serial %u, MX %s\n",
			        r->mx_sets > 1 || r->serials > 1 ? "[!!]" : "[ok]", s->ns, s->addr,
			        s->serial, s->mx);
		else
			fprintf(f, "  %s %s. %s: no SOA, MX %s\n",
			        r->mx_sets > 1 || r->serials > 1 ? "[!!]" : "[ok]", s->ns, s->addr,
			        s->mx);
	}
	if (allns_problem(r)) {
		char sum[200];
		summary(r, sum, sizeof(sum));
		fprintf(f,
		        "  [!!] PROPAGATION PROBLEM: the name servers do not all say the same: "
		        "%s\n",
		        sum);
	} else {
		fprintf(f, "  [ok] every name server gives the same MX set and serial\n");
	}
}

void allns_write_line(FILE *f, const struct allns_report *r)
{
	char sum[200];
	if (r->error[0]) {
		fprintf(f, "; propagation not checked: %s", r->error);
		return;
	}
	if (!allns_problem(r)) {
		fprintf(f, "; propagation: %zu servers agree", r->n);
		return;
	}
	summary(r, sum, sizeof(sum));
	fprintf(f, "; PROPAGATION PROBLEM: %s", sum);
}

static void jstr(FILE *f, const char *s)
{
	char esc[1400];
	log_escape_json(esc, sizeof(esc), s);
	fprintf(f, "\"%s\"", esc);
}

void allns_write_json(FILE *f, const struct allns_report *r)
{
	fputs("{\"zone\":", f);
	jstr(f, r->zone);
	fputs(",\"error\":", f);
	if (r->error[0])
		jstr(f, r->error);
	else
		fputs("null", f);
	fprintf(f, ",\"problem\":%s,\"mx_sets\":%zu,\"serials\":%zu,\"lame\":%zu,\"silent\":%zu",
	        allns_problem(r) ? "true" : "false", r->mx_sets, r->serials, r->lame, r->silent);
	fputs(",\"servers\":[", f);
	for (size_t i = 0; i < r->n; i++) {
		const struct allns_server *s = &r->s[i];
		char host[300];
		snprintf(host, sizeof(host), "%s.", s->ns);
		fputs(i ? ",{\"ns\":" : "{\"ns\":", f);
		jstr(f, host);
		fputs(",\"address\":", f);
		jstr(f, s->addr);
		fprintf(f, ",\"status\":\"%s\"", st_name(s->st));
		if (s->st == NS_OK) {
			if (s->has_serial)
				fprintf(f, ",\"serial\":%u", s->serial);
			fputs(",\"mx\":", f);
			jstr(f, s->mx);
		} else {
			fputs(",\"error\":", f);
			jstr(f, s->why);
		}
		fputc('}', f);
	}
	fputs("]}", f);
}
