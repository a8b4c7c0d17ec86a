/*
 * text.c - printable copies of untrusted text (text.h).
 */
#include "text.h"

#include <string.h>

size_t text_printable(char *out, size_t outlen, const char *s, size_t n)
{
	if (outlen == 0)
		return 0;
	size_t room = outlen - 1, k = n <= room ? n : (room >= 3 ? room - 3 : 0);
	for (size_t i = 0; i < k; i++) {
		unsigned char ch = (unsigned char)s[i];
		out[i] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
	}
	if (k < n && room >= 3) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
	return k;
}
