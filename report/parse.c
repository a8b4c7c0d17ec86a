/*
 * parse.c - mxsane-report's line parser (see parse.h).  Bounded: every read is checked
 * against the end of the line; a line that is cut short anywhere is RL_BAD, never a crash.
 */
#include "parse.h"

#include <string.h>
#include <time.h>

int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	/* Howard Hinnant's algorithm: exact for every Gregorian date */
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool dig(char c)
{
	return c >= '0' && c <= '9';
}

/* n decimal digits at p (all must be digits) */
static bool num(const char *p, const char *end, size_t n, unsigned *out)
{
	unsigned v = 0;
	if ((size_t)(end - p) < n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!dig(p[i]))
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	*out = v;
	return true;
}

/*
 * "YYYY-MM-DD?HH:MM:SS[.frac][Z|+HH:MM|+HHMM]" at p, where ? is 'T' (or ' ' when sep_space).
 * Returns the end of the timestamp, or NULL.  Without an offset: UTC.  need_seconds: ":SS"
 * is required (log prefixes); --since/--until may stop at the minute.
 */
static const char *rfc3339(const char *p, const char *end, int64_t *ms, bool sep_space,
                           bool need_seconds)
{
	unsigned y, mo, d, h, mi, s = 0, frac_ms = 0;
	if (!num(p, end, 4, &y) || end - p < 16 || p[4] != '-' || !num(p + 5, end, 2, &mo) ||
	    p[7] != '-' || !num(p + 8, end, 2, &d) ||
	    !(p[10] == 'T' || p[10] == 't' || (sep_space && p[10] == ' ')) ||
	    !num(p + 11, end, 2, &h) || p[13] != ':' || !num(p + 14, end, 2, &mi))
		return NULL;
	p += 16;
	if (p < end && *p == ':') {
		if (!num(p + 1, end, 2, &s))
			return NULL;
		p += 3;
		if (p < end && *p == '.') {
			p++;
			unsigned scale = 100, any = 0;
			while (p < end && dig(*p)) {
				frac_ms += (unsigned)(*p - '0') * scale;
				scale /= 10;
				p++;
				any = 1;
			}
			if (!any)
				return NULL;
		}
	} else if (need_seconds) {
		return NULL;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
		return NULL;
	int64_t off_min = 0;
	if (p < end && (*p == 'Z' || *p == 'z')) {
		p++;
	} else if (p < end && (*p == '+' || *p == '-')) {
		int sign = *p == '-' ? -1 : 1;
		unsigned oh, om;
		if (!num(p + 1, end, 2, &oh))
			return NULL;
		if (p + 3 < end && p[3] == ':') {
			if (!num(p + 4, end, 2, &om))
				return NULL;
			p += 6;
		} else {
			if (!num(p + 3, end, 2, &om))
				return NULL;
			p += 5;
		}
		off_min = sign * (int64_t)(oh * 60 + om);
	}
	int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - off_min * 60;
	*ms = secs * 1000 + frac_ms;
	return p;
}

bool parse_time_arg(const char *s, int64_t *out_ms)
{
	const char *end = s + strlen(s);
	unsigned y, mo, d;
	if (end - s == 10 && num(s, end, 4, &y) && s[4] == '-' && num(s + 5, end, 2, &mo) &&
	    s[7] == '-' && num(s + 8, end, 2, &d) && mo >= 1 && mo <= 12 && d >= 1 && d <= 31) {
		*out_ms = days_from_civil(y, mo, d) * 86400000;
		return true;
	}
	const char *e = rfc3339(s, end, out_ms, true, false);
	return e == end;
}

/* "Dec  4 19:07:01" (local time, no year) at p: 15 bytes */
static bool traditional(const char *p, const char *end, int64_t now_ms, int64_t *ms)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	unsigned d, h, mi, s, mo = 0;
	if (end - p < 16 || p[3] != ' ' || p[15] != ' ')
		return false;
	for (unsigned i = 0; i < 12; i++)
		if (memcmp(months + 3 * i, p, 3) == 0)
			mo = i + 1;
	if (!mo)
		return false;
	if (p[4] == ' ') {
		if (!num(p + 5, end, 1, &d))
			return false;
	} else if (!num(p + 4, end, 2, &d)) {
		return false;
	}
	if (p[6] != ' ' || !num(p + 7, end, 2, &h) || p[9] != ':' || !num(p + 10, end, 2, &mi) ||
	    p[12] != ':' || !num(p + 13, end, 2, &s) || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    s > 60)
		return false;
	/* a yearless time: this year, or last year when that would be over a day ahead */
	time_t now = (time_t)(now_ms / 1000);
	struct tm tn;
	localtime_r(&now, &tn);
	for (int back = 0; back < 2; back++) {
		struct tm t = {.tm_year = tn.tm_year - back,
		               .tm_mon = (int)mo - 1,
		               .tm_mday = (int)d,
		               .tm_hour = (int)h,
		               .tm_min = (int)mi,
		               .tm_sec = (int)s,
		               .tm_isdst = -1};
		time_t v = mktime(&t);
		if (v == (time_t)-1)
			return false;
		if ((int64_t)v * 1000 <= now_ms + 86400000 || back == 1) {
			*ms = (int64_t)v * 1000;
			return true;
		}
	}
	return false;
}

/* ------------------------------------------------------------------ fields */

static bool streq(struct rstr s, const char *lit, size_t n)
{
	return s.n == n && memcmp(s.p, lit, n) == 0;
}
#define STREQ(s, lit) streq((s), (lit), sizeof(lit) - 1)

struct fields {
	struct rstr verdict, action, would, role, mode, repeat, time, reason;
	struct rstr domain, client, sender, recipient, queue_id;
};

static void take(struct fields *f, struct rstr k, struct rstr v)
{
	switch (k.n) {
	case 4:
		if (STREQ(k, "role"))
			f->role = v;
		else if (STREQ(k, "mode"))
			f->mode = v;
		else if (STREQ(k, "time"))
			f->time = v;
		break;
	case 5:
		if (STREQ(k, "would"))
			f->would = v;
		break;
	case 6:
		if (STREQ(k, "action"))
			f->action = v;
		else if (STREQ(k, "domain"))
			f->domain = v;
		else if (STREQ(k, "sender"))
			f->sender = v;
		else if (STREQ(k, "repeat"))
			f->repeat = v;
		else if (STREQ(k, "reason"))
			f->reason = v;
		break;
	case 7:
		if (STREQ(k, "verdict"))
			f->verdict = v;
		break;
	case 8:
		if (STREQ(k, "queue_id"))
			f->queue_id = v;
		break;
	case 9:
		if (STREQ(k, "recipient"))
			f->recipient = v;
		break;
	case 11:
		if (STREQ(k, "client_addr"))
			f->client = v;
		break;
	default: break;
	}
}

static int hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* key=value pairs separated by one space; quoted values with \xHH escapes (log.c's
 * log_escape_kv).  *sc is where unescaped values go. */
static bool parse_kv(const char *p, const char *end, struct fields *f, char **sc)
{
	while (p < end) {
		const char *k = p;
		while (p < end && *p != '=' && *p != ' ')
			p++;
		if (p == end || *p != '=' || p == k)
			return false;
		struct rstr key = {k, (size_t)(p - k)}, val;
		p++;
		if (p < end && *p == '"') {
			p++;
			char *o = *sc;
			val.p = o;
			for (;;) {
				if (p >= end)
					return false; /* unterminated: the line was cut */
				if (*p == '"')
					break;
				if (*p == '\\') {
					int a, b;
					if (end - p < 4 || p[1] != 'x' || (a = hexv(p[2])) < 0 ||
					    (b = hexv(p[3])) < 0)
						return false;
					*o++ = (char)(a << 4 | b);
					p += 4;
				} else {
					*o++ = *p++;
				}
			}
			p++;
			val.n = (size_t)(o - val.p);
			*sc = o;
		} else {
			val.p = p;
			while (p < end && *p != ' ')
				p++;
			val.n = (size_t)(p - val.p);
		}
		take(f, key, val);
		if (p < end) {
			if (*p != ' ')
				return false;
			p++;
		}
	}
	return true;
}

static const char *ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* A JSON string at p ('"'), unescaped into *sc (UTF-8).  Returns the byte after it. */
static const char *json_str(const char *p, const char *end, struct rstr *out, char **sc)
{
	char *o = *sc;
	if (p >= end || *p != '"')
		return NULL;
	p++;
	/* the usual case, no escape: point into the line */
	const char *q = p;
	while (q < end && *q != '"' && *q != '\\')
		q++;
	if (q < end && *q == '"') {
		out->p = p;
		out->n = (size_t)(q - p);
		return q + 1;
	}
	out->p = o;
	for (;;) {
		if (p >= end)
			return NULL;
		char c = *p;
		if (c == '"')
			break;
		if (c != '\\') {
			*o++ = c;
			p++;
			continue;
		}
		if (end - p < 2)
			return NULL;
		c = p[1];
		p += 2;
		switch (c) {
		case '"':
		case '\\':
		case '/': *o++ = c; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			unsigned cp = 0;
			if (end - p < 4)
				return NULL;
			for (int i = 0; i < 4; i++) {
				int v = hexv(p[i]);
				if (v < 0)
					return NULL;
				cp = cp << 4 | (unsigned)v;
			}
			p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' &&
			    p[1] == 'u') {
				unsigned lo = 0;
				bool okp = true;
				for (int i = 0; i < 4; i++) {
					int v = hexv(p[2 + i]);
					if (v < 0)
						okp = false;
					lo = lo << 4 | (unsigned)(v < 0 ? 0 : v);
				}
				if (okp && lo >= 0xdc00 && lo <= 0xdfff) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				}
			}
			if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xfffd;
			if (cp < 0x80) {
				*o++ = (char)cp;
			} else if (cp < 0x800) {
				*o++ = (char)(0xc0 | cp >> 6);
				*o++ = (char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				*o++ = (char)(0xe0 | cp >> 12);
				*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
				*o++ = (char)(0x80 | (cp & 0x3f));
			} else {
				*o++ = (char)(0xf0 | cp >> 18);
				*o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
				*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
				*o++ = (char)(0x80 | (cp & 0x3f));
			}
			break;
		}
		default: return NULL;
		}
	}
	out->n = (size_t)(o - out->p);
	*sc = o;
	return p + 1;
}

/* Skip a JSON value that is not a string: a number, true/false/null, or an array/object
 * (journalctl writes binary fields as arrays of numbers). */
static const char *json_skip(const char *p, const char *end, char **sc)
{
	int depth = 0;
	while (p < end) {
		char c = *p;
		if (c == '"') {
			struct rstr dummy;
			char *save = *sc;
			p = json_str(p, end, &dummy, sc);
			*sc = save;
			if (!p)
				return NULL;
			if (depth == 0)
				return p;
			continue;
		}
		if (c == '[' || c == '{') {
			depth++;
		} else if (c == ']' || c == '}') {
			if (depth == 0)
				return p;
			depth--;
			if (depth == 0)
				return p + 1;
		} else if (c == ',' && depth == 0) {
			return p;
		}
		p++;
	}
	return depth == 0 ? p : NULL;
}

/*
 * A flat JSON object.  For each member whose value is a string, cb(key, value).  Values of
 * other types are skipped.  Returns false if the object is malformed or cut.
 */
typedef void (*json_cb)(void *arg, struct rstr k, struct rstr v);
static bool parse_json_obj(const char *p, const char *end, json_cb cb, void *arg, char **sc)
{
	p = ws(p, end);
	if (p >= end || *p != '{')
		return false;
	p = ws(p + 1, end);
	if (p < end && *p == '}')
		return ws(p + 1, end) == end;
	for (;;) {
		struct rstr k, v;
		p = json_str(ws(p, end), end, &k, sc);
		if (!p)
			return false;
		p = ws(p, end);
		if (p >= end || *p != ':')
			return false;
		p = ws(p + 1, end);
		if (p < end && *p == '"') {
			p = json_str(p, end, &v, sc);
			if (!p)
				return false;
			cb(arg, k, v);
		} else {
			p = json_skip(p, end, sc);
			if (!p)
				return false;
		}
		p = ws(p, end);
		if (p >= end)
			return false;
		if (*p == '}')
			return ws(p + 1, end) == end;
		if (*p != ',')
			return false;
		p++;
	}
}

static void fields_cb(void *arg, struct rstr k, struct rstr v)
{
	take(arg, k, v);
}

struct journal {
	struct rstr message, realtime, ident;
	bool have_message;
};

static void journal_cb(void *arg, struct rstr k, struct rstr v)
{
	struct journal *j = arg;
	if (STREQ(k, "MESSAGE")) {
		j->message = v;
		j->have_message = true;
	} else if (STREQ(k, "__REALTIME_TIMESTAMP")) {
		j->realtime = v;
	} else if (STREQ(k, "SYSLOG_IDENTIFIER")) {
		j->ident = v;
	}
}

/* ------------------------------------------------------------------ the record */

static bool verdict_of(struct rstr s, enum verdict *v)
{
	for (int i = 0; i < V__COUNT; i++) {
		const char *nm = verdict_name((enum verdict)i);
		if (streq(s, nm, strlen(nm))) {
			*v = (enum verdict)i;
			return true;
		}
	}
	return false;
}

static bool action_of(struct rstr s, enum action *a)
{
	for (int i = 0; i < ACT__COUNT; i++) {
		const char *nm = action_name((enum action)i);
		if (streq(s, nm, strlen(nm))) {
			*a = (enum action)i;
			return true;
		}
	}
	return false;
}

/* A decision's message: "verdict=..." / "queue_id=..." or a JSON object. */
static bool is_record(const char *p, const char *end)
{
	size_t n = (size_t)(end - p);
	return (n >= 8 && memcmp(p, "verdict=", 8) == 0) ||
	       (n >= 9 && memcmp(p, "queue_id=", 9) == 0) || (n >= 2 && p[0] == '{' && p[1] == '"');
}

static enum rline record(const char *p, const char *end, struct rdec *d, char **sc)
{
	struct fields f;
	memset(&f, 0, sizeof(f));
	if (*p == '{') {
		if (!parse_json_obj(p, end, fields_cb, &f, sc))
			return RL_BAD;
		if (!f.verdict.p) /* a JSON line from something else */
			return RL_OTHER;
	} else if (!parse_kv(p, end, &f, sc) || !f.reason.p) {
		/* every key=value decision line has a reason (core/log.c): a line without one
		 * was cut short, and its last value may be cut too */
		return RL_BAD;
	}
	enum action w;
	if (!f.verdict.p || !f.action.p || !f.role.p || !verdict_of(f.verdict, &d->verdict) ||
	    !action_of(f.action, &d->action))
		return RL_BAD;
	if (STREQ(f.role, "sender"))
		d->role = ROLE_SENDER;
	else if (STREQ(f.role, "recipient"))
		d->role = ROLE_RECIPIENT;
	else
		return RL_BAD;
	d->would = -1;
	if (f.would.p) {
		if (!action_of(f.would, &w))
			return RL_BAD;
		d->would = (int)w;
	}
	d->monitor = f.mode.p && STREQ(f.mode, "monitor");
	d->repeat = f.repeat.p && STREQ(f.repeat, "yes");
	d->domain = f.domain;
	d->client = f.client;
	d->sender = f.sender;
	d->recipient = f.recipient;
	d->queue_id = f.queue_id;
	if (f.time.p) {
		int64_t t;
		if (rfc3339(f.time.p, f.time.p + f.time.n, &t, false, true) ==
		    f.time.p + f.time.n) {
			d->t_ms = t; /* the record's own time: UTC, to the millisecond */
			d->has_time = true;
		}
	}
	return RL_DECISION;
}

/* "PROG[PID]: " or "PROG: " at p (PROG without spaces).  Returns the message, or NULL. */
static const char *tag(const char *p, const char *end, struct rstr *prog)
{
	const char *q = p;
	while (q < end && *q != ' ' && *q != ':' && *q != '[')
		q++;
	if (q == p || q >= end)
		return NULL;
	prog->p = p;
	prog->n = (size_t)(q - p);
	if (*q == '[') {
		q++;
		while (q < end && dig(*q))
			q++;
		if (q >= end || *q != ']')
			return NULL;
		q++;
	}
	if (end - q < 1 || *q != ':')
		return NULL;
	q++;
	if (q < end && *q == ' ')
		q++;
	return q;
}

enum rline parse_line(const char *p, size_t n, struct rdec *d, char *scratch, int64_t now_ms)
{
	const char *end = p + n;
	char *sc = scratch;
	memset(d, 0, sizeof(*d));
	d->would = -1;

	/* binary: NUL or control octets (tab and DEL aside) never appear in a log line */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 && p[i] != '\t')
			return RL_BAD;
	while (end > p && (end[-1] == '\r' || end[-1] == ' '))
		end--;
	if (p == end)
		return RL_OTHER;

	if (*p == '{' && n > 2 && p[1] == '"' && memmem(p, n, "\"__REALTIME_TIMESTAMP\"", 22)) {
		/* journalctl -o json: the record is the MESSAGE */
		struct journal j;
		memset(&j, 0, sizeof(j));
		if (!parse_json_obj(p, end, journal_cb, &j, &sc))
			return RL_BAD;
		if (!j.have_message || !is_record(j.message.p, j.message.p + j.message.n))
			return RL_OTHER;
		/* MESSAGE was copied to the scratch only if it had escapes; either way it stays
		 * valid while the record's own strings go after it */
		enum rline r = record(j.message.p, j.message.p + j.message.n, d, &sc);
		if (r != RL_DECISION)
			return r;
		d->prog = j.ident;
		if (!d->has_time && j.realtime.n && j.realtime.n < 19) {
			int64_t us = 0;
			for (size_t i = 0; i < j.realtime.n; i++) {
				if (!dig(j.realtime.p[i]))
					return RL_BAD;
				us = us * 10 + (j.realtime.p[i] - '0');
			}
			d->t_ms = us / 1000;
			d->has_time = true;
		}
		return RL_DECISION;
	}

	int64_t t = 0;
	bool has_time = false, prefixed = false;
	const char *q;
	if (dig(*p)) {
		q = rfc3339(p, end, &t, false, true);
		if (!q || q >= end || *q != ' ')
			return RL_BAD;
		p = q + 1;
		has_time = prefixed = true;
	} else if (*p >= 'A' && *p <= 'Z' && traditional(p, end, now_ms, &t)) {
		p += 16;
		has_time = prefixed = true;
	}
	if (prefixed) {
		/* the host name */
		q = memchr(p, ' ', (size_t)(end - p));
		if (!q)
			return RL_BAD;
		p = q + 1;
	}
	struct rstr prog = {0};
	if (!is_record(p, end)) {
		q = tag(p, end, &prog);
		if (!q)
			return prefixed ? RL_OTHER : RL_BAD;
		p = q;
		if (!is_record(p, end))
			return RL_OTHER;
	}
	enum rline r = record(p, end, d, &sc);
	if (r == RL_OTHER && !prefixed && !prog.p)
		return RL_BAD;
	if (r != RL_DECISION)
		return r;
	d->prog = prog;
	if (has_time && !d->has_time) {
		d->t_ms = t;
		d->has_time = true;
	}
	return RL_DECISION;
}
