/*
 * text.c - printable copies of untrusted text (text.h).
 */
#include "text.h"

#include <string.h>

size_t text_printable(char *out, size_t outlen, const char *s, size_t n, unsigned flags)
{
	if (outlen == 0)
		return 0;
	size_t room = outlen - 1, o = 0, i = 0;
	if (!(flags & TEXT_PERCENT)) {
		/* one octet in, one out: the cut is known before the copy */
		size_t k = n <= room ? n : (room >= 3 ? room - 3 : room);
		for (; o < k; o++) {
			unsigned char ch = (unsigned char)s[o];
			out[o] = (unsigned char)(ch - 0x20) < 0x5f ? (char)ch : '?';
		}
		if (k < n) {
			size_t m = room - o < 3 ? room - o : 3;
			memcpy(out + o, "...", m);
			o += m;
		}
		out[o] = '\0';
		return o;
	}
	for (; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		size_t w = (ch == '%' && (flags & TEXT_PERCENT)) ? 2 : 1;
		if (o + w > room)
			break;
		if (w == 2) {
			out[o++] = '%';
			out[o++] = '%';
		} else {
			out[o++] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
		}
	}
	if (i < n) {
		/* cut: make room for "..." (dropping a whole "%%" pair, never half of one) */
		while (o > 0 && o + 3 > room) {
			o--;
			if ((flags & TEXT_PERCENT) && o > 0 && out[o] == '%' && out[o - 1] == '%')
				o--;
		}
		size_t k = room - o < 3 ? room - o : 3;
		memcpy(out + o, "...", k);
		o += k;
	}
	out[o] = '\0';
	return o;
}

size_t text_address(char *out, size_t outlen, const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		s++;
		n -= 2;
	}
	if (n > TEXT_ADDRESS_MAX) {
		size_t k = text_printable(out, outlen, s, TEXT_ADDRESS_MAX, 0);
		size_t m = outlen - 1 - k < 3 ? outlen - 1 - k : 3;
		memcpy(out + k, "...", m);
		out[k + m] = '\0';
		return k + m;
	}
	return text_printable(out, outlen, s, n, 0);
}
