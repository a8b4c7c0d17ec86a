/*
 * fuzz_report.c - mxsane-report's line parser (report/parse.c) on arbitrary bytes.
 *
 * The input is one line (the reader strips the newline; any byte may occur).  The line and
 * the scratch buffer are heap blocks of exactly the size parse.h asks for, so ASan sees any
 * read or write beyond them.  Checked (abort() on failure): the result is one of the three
 * kinds; a decision has valid enum values, and each of its strings lies inside the line or
 * inside the scratch buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../report/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(struct rstr s, const char *a, size_t an, const char *b, size_t bn)
{
	if (!s.p)
		return s.n == 0;
	return (s.p >= a && s.p + s.n <= a + an) || (s.p >= b && s.p + s.n <= b + bn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	char *line = malloc(size ? size : 1);
	char *sc = malloc(PARSE_SCRATCH(size));
	if (!line || !sc)
		abort();
	memcpy(line, data, size);
	struct rdec d;
	enum rline r = parse_line(line, size, &d, sc, (int64_t)1796411221 * 1000);
	if (r != RL_DECISION && r != RL_OTHER && r != RL_BAD)
		abort();
	if (r == RL_DECISION) {
		size_t sn = PARSE_SCRATCH(size);
		if ((unsigned)d.verdict >= V__COUNT || (unsigned)d.action >= ACT__COUNT ||
		    (d.role != ROLE_SENDER && d.role != ROLE_RECIPIENT) || d.would < -1 ||
		    d.would >= ACT__COUNT)
			abort();
		const struct rstr *s[] = {&d.prog,   &d.domain,    &d.client,
		                          &d.sender, &d.recipient, &d.queue_id};
		for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
			if (!inside(*s[i], line, size, sc, sn))
				abort();
	}
	free(line);
	free(sc);
	return 0;
}
