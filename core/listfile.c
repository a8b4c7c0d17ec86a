/*
 * listfile.c - read list files line by line (see listfile.h).
 *
 * The file is read in blocks and split at newlines here, not with fgets: a NUL byte or an
 * overlong line is found and reported instead of cutting a line silently.  A list of a
 * million entries is a few tens of megabytes; only one block and one line are held at a
 * time, the entries go straight into their table.
 */
#include "listfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "text.h"

#define BLOCK (64 * 1024)

/* Text from the file, safe to quote in a message: printable ASCII, at most 80 octets (longer
 * text ends in "..."); UTF-8 octets show as '?'. */
static void quote(char *out, size_t outlen, const char *t, size_t n)
{
	text_printable(out, outlen < 84 ? outlen : 84, t, n, 0);
}

__attribute__((format(printf, 4, 5))) static bool fail(char *err, size_t errlen, const char *path,
                                                       const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", path, msg);
	return false;
}

static void too_long(char *err, size_t errlen, const char *path, unsigned long lineno)
{
	if (err && errlen)
		snprintf(err, errlen, "%s:%lu: line longer than %u octets", path, lineno,
		         LISTFILE_LINE_MAX);
}

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* One line (without its newline): strip the comment and the blanks, hand the rest to fn. */
static bool one_line(const char *path, unsigned long lineno, char *line, size_t len, listfile_fn fn,
                     void *arg, char *err, size_t errlen)
{
	char why[400];
	char *hash = memchr(line, '#', len);
	size_t b = 0;

	if (memchr(line, '\0', len)) {
		if (err && errlen)
			snprintf(err, errlen, "%s:%lu: NUL byte in the line", path, lineno);
		return false;
	}
	if (hash)
		len = (size_t)(hash - line);
	while (len && is_blank(line[len - 1]))
		len--;
	while (b < len && is_blank(line[b]))
		b++;
	if (b == len)
		return true;
	line[len] = '\0';
	why[0] = '\0';
	if (fn(arg, line + b, len - b, why, sizeof(why)))
		return true;
	if (err && errlen)
		snprintf(err, errlen, "%s:%lu: %s", path, lineno, why[0] ? why : "invalid entry");
	return false;
}

bool listfile_each(const char *path, listfile_fn fn, void *arg, char *err, size_t errlen)
{
	char block[BLOCK];
	char line[LISTFILE_LINE_MAX + 1];
	size_t linelen = 0, n;
	unsigned long lineno = 1;
	bool ok = false, overlong = false;
	struct stat st;
	FILE *fp;
	int fd;

	if (err && errlen)
		err[0] = '\0';
	/* O_NONBLOCK: opening a FIFO named by mistake must not hang a reload; only a regular
	 * file is read */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, path, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return fail(err, errlen, path, "cannot open: %s", strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, errlen, path, "cannot open: %s",
		            S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
	}
	fp = fdopen(fd, "r");
	if (!fp) {
		int e = errno;
		close(fd);
		return fail(err, errlen, path, "cannot open: %s", strerror(e));
	}
	while ((n = fread(block, 1, sizeof(block), fp)) > 0) {
		for (size_t i = 0; i < n;) {
			char *nl = memchr(block + i, '\n', n - i);
			size_t take = nl ? (size_t)(nl - (block + i)) : n - i;

			if (!overlong && linelen + take > LISTFILE_LINE_MAX)
				overlong = true;
			if (!overlong) {
				memcpy(line + linelen, block + i, take);
				linelen += take;
			}
			i += take;
			if (!nl)
				break;
			i++; /* the newline */
			if (overlong) {
				too_long(err, errlen, path, lineno);
				goto done;
			}
			if (!one_line(path, lineno, line, linelen, fn, arg, err, errlen))
				goto done;
			linelen = 0;
			lineno++;
		}
	}
	if (ferror(fp)) {
		fail(err, errlen, path, "cannot read: %s", strerror(errno));
		goto done;
	}
	if (overlong) {
		too_long(err, errlen, path, lineno);
		goto done;
	}
	/* a last line without a newline */
	if (linelen && !one_line(path, lineno, line, linelen, fn, arg, err, errlen))
		goto done;
	ok = true;
done:
	fclose(fp);
	return ok;
}

bool listfile_domain_entry(const char *text, size_t len, char *norm, char *why, size_t whylen)
{
	char reason[128], q[96];
	bool sub = len > 0 && text[0] == '.';

	norm[0] = '.';
	reason[0] = '\0';
	if (len - sub == 0 || memchr(text, ' ', len) || memchr(text, '\t', len) ||
	    !domain_normalize(text + sub, len - sub, norm + sub, reason, sizeof(reason))) {
		quote(q, sizeof(q), text, len);
		if (reason[0])
			snprintf(why, whylen, "invalid domain name '%s' (%s)", q, reason);
		else
			snprintf(why, whylen, "invalid domain name '%s'", q);
		return false;
	}
	return true;
}

static bool add_domain(void *arg, char *text, size_t len, char *why, size_t whylen)
{
	struct domlist *l = arg;
	char norm[DOMAIN_MAX + 2];

	if (!listfile_domain_entry(text, len, norm, why, whylen))
		return false;
	if (domlist_count(l) >= DOMTAB_MAX_ENTRIES) {
		snprintf(why, whylen, "more than %u entries", DOMTAB_MAX_ENTRIES);
		return false;
	}
	if (!domlist_add(l, norm)) {
		snprintf(why, whylen, "out of memory");
		return false;
	}
	return true;
}

static bool add_network(void *arg, char *text, size_t len, char *why, size_t whylen)
{
	struct netlist *l = arg;
	struct cidr c;
	char reason[128], q[96];

	reason[0] = '\0';
	if (!cidr_parse(text, &c, reason, sizeof(reason))) {
		quote(q, sizeof(q), text, len);
		snprintf(why, whylen, "invalid network '%s' (%s)", q,
		         reason[0] ? reason : "not an address or CIDR network");
		return false;
	}
	if (!netlist_add(l, &c)) {
		snprintf(why, whylen, "out of memory");
		return false;
	}
	return true;
}

bool listfile_load_domains(const char *path, struct domlist *l, char *err, size_t errlen)
{
	/* an empty file still makes a table, so that "a file was given" is visible */
	if (!l->t && !(l->t = domtab_new()))
		return fail(err, errlen, path, "out of memory");
	return listfile_each(path, add_domain, l, err, errlen);
}

bool listfile_load_networks(const char *path, struct netlist *l, char *err, size_t errlen)
{
	return listfile_each(path, add_network, l, err, errlen);
}
