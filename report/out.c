/*
 * out.c - mxsane-report's writers: aligned text, JSON, CSV and one self-contained HTML page.
 *
 * Cells can hold anything a log line held (the parser undoes the log's escaping), so every
 * writer escapes for its own format: control octets become '?' in text, JSON strings are
 * escaped (invalid UTF-8 as U+FFFD), CSV fields are quoted when needed, HTML is entity-
 * escaped and the page's embedded JSON cannot end its <script> element.
 */
#include "report.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *cell(const struct table *t, size_t row, size_t col)
{
	return t->cells[row * t->ncols + col];
}

static bool is_num(const struct table *t, size_t col)
{
	return (t->numeric >> col) & 1u;
}

/* right-aligned in text: counts, except in the input table, whose values include times */
static bool text_right(const struct table *t, size_t col)
{
	return is_num(t, col) && strcmp(t->name, "input") != 0;
}

/* ------------------------------------------------------------------ text */

/* Display width: octets, one per column (what is printed is ASCII after text_put). */
static void text_put(FILE *f, const char *s, size_t width, bool right)
{
	size_t n = strlen(s);
	if (right)
		for (size_t i = n; i < width; i++)
			fputc(' ', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
	if (!right)
		for (size_t i = n; i < width; i++)
			fputc(' ', f);
}

/* Text only: the per-verdict columns of the hours table that are 0 throughout are left out,
 * to keep it readable (JSON and CSV keep every column, for a fixed schema). */
static bool text_skip(const struct table *t, size_t c)
{
	if (strcmp(t->name, "hours") != 0 || c < 4)
		return false;
	for (size_t r = 0; r < t->nrows; r++)
		if (strcmp(cell(t, r, c), "0") != 0)
			return false;
	return true;
}

static void text_table(FILE *f, const struct table *t)
{
	size_t w[32] = {0};
	fprintf(f, "%s\n", t->title);
	if (t->nrows == 0) {
		fputs("  (none)\n\n", f);
		return;
	}
	for (size_t c = 0; c < t->ncols && c < 32; c++) {
		w[c] = strlen(t->cols[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t l = strlen(cell(t, r, c));
			if (l > w[c])
				w[c] = l;
		}
	}
	size_t lastc = 0;
	for (size_t c = 0; c < t->ncols; c++)
		if (!text_skip(t, c))
			lastc = c;
	for (int pass = 0; pass < 2; pass++) {
		fputs("  ", f);
		for (size_t c = 0; c < t->ncols; c++) {
			if (text_skip(t, c))
				continue;
			bool last = c == lastc;
			if (pass == 0)
				text_put(f, t->cols[c], last && !text_right(t, c) ? 0 : w[c],
				         text_right(t, c));
			else
				for (size_t i = 0; i < w[c]; i++)
					fputc('-', f);
			if (!last)
				fputs("  ", f);
		}
		fputc('\n', f);
	}
	for (size_t r = 0; r < t->nrows; r++) {
		fputs("  ", f);
		for (size_t c = 0; c < t->ncols; c++) {
			if (text_skip(t, c))
				continue;
			bool last = c == lastc;
			text_put(f, cell(t, r, c), last && !text_right(t, c) ? 0 : w[c],
			         text_right(t, c));
			if (!last)
				fputs("  ", f);
		}
		fputc('\n', f);
	}
	fputc('\n', f);
}

bool out_text(FILE *f, const struct table *t, const bool *want)
{
	for (int i = 0; i < T__COUNT; i++)
		if (want[i])
			text_table(f, &t[i]);
	return fflush(f) == 0 && !ferror(f);
}

/* ------------------------------------------------------------------ JSON */

/* s as a JSON string; html_safe: '<', '>' and '&' as \u escapes (inside <script>) */
static void json_string(FILE *f, const char *s, bool html_safe)
{
	size_t n = strlen(s);
	char small[512];
	char *buf = n * 6 + 1 <= sizeof(small) ? small : malloc(n * 6 + 1);
	if (!buf) {
		fputs("\"\"", f);
		return;
	}
	log_escape_json(buf, n * 6 + 1, s);
	fputc('"', f);
	for (const char *p = buf; *p; p++) {
		if (html_safe && (*p == '<' || *p == '>' || *p == '&'))
			fprintf(f, "\\u%04x", (unsigned)*p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
	if (buf != small)
		free(buf);
}

static void json_value(FILE *f, const struct table *t, size_t r, size_t c, bool html_safe)
{
	const char *v = cell(t, r, c);
	if (is_num(t, c) && v[0])
		fputs(v, f);
	else
		json_string(f, v, html_safe);
}

static void json_tables(FILE *f, const struct table *t, const bool *want, bool html_safe)
{
	bool first = true;
	fputc('{', f);
	for (int i = 0; i < T__COUNT; i++) {
		if (!want[i])
			continue;
		const struct table *x = &t[i];
		fprintf(f, "%s\n\"%s\":", first ? "" : ",", x->name);
		first = false;
		if (i == T_INPUT) {
			/* the input summary is one object: {"lines": 12, ...} */
			fputc('{', f);
			for (size_t r = 0; r < x->nrows; r++) {
				fprintf(f, "%s", r ? "," : "");
				json_string(f, cell(x, r, 0), html_safe);
				fputc(':', f);
				const char *v = cell(x, r, 1);
				if (strcmp(cell(x, r, 0), "first") && strcmp(cell(x, r, 0), "last"))
					fputs(v, f);
				else if (v[0])
					json_string(f, v, html_safe);
				else
					fputs("null", f);
			}
			fputc('}', f);
			continue;
		}
		fputc('[', f);
		for (size_t r = 0; r < x->nrows; r++) {
			fputs(r ? ",\n{" : "\n{", f);
			for (size_t c = 0; c < x->ncols; c++) {
				fprintf(f, "%s\"%s\":", c ? "," : "", x->cols[c]);
				json_value(f, x, r, c, html_safe);
			}
			fputc('}', f);
		}
		fputc(']', f);
	}
	fputs("}\n", f);
}

bool out_json(FILE *f, const struct table *t, const bool *want)
{
	json_tables(f, t, want, false);
	return fflush(f) == 0 && !ferror(f);
}

/* ------------------------------------------------------------------ CSV (RFC 4180) */

static void csv_field(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

bool out_csv(FILE *f, const struct table *t)
{
	for (size_t c = 0; c < t->ncols; c++) {
		if (c)
			fputc(',', f);
		csv_field(f, t->cols[c]);
	}
	fputs("\r\n", f);
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			if (c)
				fputc(',', f);
			csv_field(f, cell(t, r, c));
		}
		fputs("\r\n", f);
	}
	return fflush(f) == 0 && !ferror(f);
}

/* ------------------------------------------------------------------ HTML */

static void html_text(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
		}
	}
}

static void html_table(FILE *f, const struct table *t)
{
	fprintf(f, "<h2>");
	html_text(f, t->title);
	fprintf(f, "</h2>\n");
	if (!t->nrows) {
		fputs("<p class=\"none\">(none)</p>\n", f);
		return;
	}
	fprintf(f, "<table id=\"t-%s\"><thead><tr>", t->name);
	for (size_t c = 0; c < t->ncols; c++) {
		fputs(is_num(t, c) ? "<th class=\"n\">" : "<th>", f);
		html_text(f, t->cols[c]);
		fputs("</th>", f);
	}
	fputs("</tr></thead>\n<tbody>\n", f);
	for (size_t r = 0; r < t->nrows; r++) {
		fputs("<tr>", f);
		for (size_t c = 0; c < t->ncols; c++) {
			fputs(is_num(t, c) ? "<td class=\"n\">" : "<td>", f);
			html_text(f, cell(t, r, c));
			fputs("</td>", f);
		}
		fputs("</tr>\n", f);
	}
	fputs("</tbody></table>\n", f);
}

/* The charts are drawn by the page's own script from the embedded data (the same JSON as
 * --json), as inline SVG: no file, font or script is fetched from anywhere. */
static const char html_head[] =
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
        "<title>mxsane report</title>\n<style>\n"
        "body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1200px}\n"
        "h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}\n"
        "table{border-collapse:collapse;font-size:.9em}\n"
        "th,td{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left}\n"
        "th.n,td.n{text-align:right}\n"
        ".chart{border:1px solid #ccc;background:#fff}\n"
        ".legend span{display:inline-block;margin-right:1em;font-size:.85em}\n"
        ".legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;"
        "vertical-align:middle}\n"
        "</style></head><body>\n"
        "<h1>mxsane report</h1>\n";

static const char html_script[] =
        "<script>\n"
        "'use strict';\n"
        "(function () {\n"
        "const D = JSON.parse(document.getElementById('mxsane-data').textContent);\n"
        "const NS = 'http://www.w3.org/2000/svg';\n"
        "const COLORS = {ok:'#4caf50', null_mx:'#e53935', nxdomain:'#8e24aa', "
        "no_mail_host:'#fb8c00',\n"
        "  broken_mx:'#6d4c41', mx_cname:'#fdd835', dns_error:'#1e88e5', skipped:'#9e9e9e'};\n"
        "const VERDICTS = Object.keys(COLORS);\n"
        "function el(name, attrs, parent) {\n"
        "  const e = document.createElementNS(NS, name);\n"
        "  for (const k in attrs) e.setAttribute(k, attrs[k]);\n"
        "  if (parent) parent.appendChild(e);\n"
        "  return e;\n"
        "}\n"
        "function text(parent, x, y, s, anchor) {\n"
        "  const t = el('text', {x: x, y: y, 'font-size': 11, 'text-anchor': anchor || 'start'}, "
        "parent);\n"
        "  t.textContent = s;\n"
        "  return t;\n"
        "}\n"
        "let bars = 0;\n"
        "/* decisions per hour, stacked by verdict */\n"
        "function hours(box) {\n"
        "  const H = D.hours || [];\n"
        "  const W = 900, HT = 260, L = 50, B = 40, T = 10;\n"
        "  const svg = el('svg', {width: W, height: HT, class: 'chart', id: 'chart-hours',\n"
        "    viewBox: '0 0 ' + W + ' ' + HT}, box);\n"
        "  const max = Math.max(1, ...H.map(h => h.total));\n"
        "  /* hours without decisions keep their place on the time axis (up to 90 days) */\n"
        "  const ts = H.map(h => Date.parse(h.hour.replace('Z', ':00Z')));\n"
        "  const span = H.length ? (ts[H.length - 1] - ts[0]) / 3600000 + 1 : 0;\n"
        "  const gaps = span > 0 && span <= 2160;\n"
        "  const pos = gaps ? ts.map(t => (t - ts[0]) / 3600000) : H.map((h, i) => i);\n"
        "  const bw = H.length ? (W - L - 10) / (gaps ? span : H.length) : 0;\n"
        "  let lastLabel = -1e9;\n"
        "  el('line', {x1: L, y1: HT - B, x2: W - 10, y2: HT - B, stroke: '#888'}, svg);\n"
        "  text(svg, L - 4, T + 8, String(max), 'end');\n"
        "  text(svg, L - 4, HT - B, '0', 'end');\n"
        "  H.forEach((h, k) => {\n"
        "    const i = pos[k];\n"
        "    let y = HT - B;\n"
        "    for (const v of VERDICTS) {\n"
        "      const n = h[v] || 0;\n"
        "      if (!n) continue;\n"
        "      const ht = n / max * (HT - B - T);\n"
        "      y -= ht;\n"
        "      const r = el('rect', {x: L + i * bw + 1, y: y, width: Math.max(1, bw - 2), height: "
        "ht,\n"
        "        fill: COLORS[v], class: 'bar bar-hour', 'data-verdict': v, 'data-count': n}, "
        "svg);\n"
        "      el('title', {}, r).textContent = h.hour + ' ' + v + ': ' + n;\n"
        "      bars++;\n"
        "    }\n"
        "    if ((i - lastLabel) * bw >= 70) {\n"
        "      lastLabel = i;\n"
        "      text(svg, L + i * bw + bw / 2, HT - B + 14, h.hour.slice(5, 13).replace('T', ' '), "
        "'middle');\n"
        "    }\n"
        "  });\n"
        "  const lg = document.createElement('div');\n"
        "  lg.className = 'legend';\n"
        "  for (const v of VERDICTS) {\n"
        "    const s = document.createElement('span');\n"
        "    const i = document.createElement('i');\n"
        "    i.style.background = COLORS[v];\n"
        "    s.appendChild(i);\n"
        "    s.appendChild(document.createTextNode(v));\n"
        "    lg.appendChild(s);\n"
        "  }\n"
        "  box.appendChild(lg);\n"
        "}\n"
        "/* a horizontal bar per row: label, value */\n"
        "function hbars(box, id, rows, label, value) {\n"
        "  const W = 900, RH = 20, L = 320;\n"
        "  const HT = Math.max(1, rows.length) * RH + 10;\n"
        "  const svg = el('svg', {width: W, height: HT, class: 'chart', id: id,\n"
        "    viewBox: '0 0 ' + W + ' ' + HT}, box);\n"
        "  const max = Math.max(1, ...rows.map(value));\n"
        "  rows.forEach((r, i) => {\n"
        "    const n = value(r);\n"
        "    const w = n / max * (W - L - 60);\n"
        "    const lab = label(r);\n"
        "    text(svg, L - 6, i * RH + 19, lab.length > 48 ? lab.slice(0, 47) + '\\u2026' : lab, "
        "'end');\n"
        "    const b = el('rect', {x: L, y: i * RH + 8, width: Math.max(1, w), height: RH - 6,\n"
        "      fill: '#e53935', class: 'bar bar-top', 'data-count': n}, svg);\n"
        "    el('title', {}, b).textContent = lab + ': ' + n;\n"
        "    text(svg, L + w + 4, i * RH + 19, String(n));\n"
        "    bars++;\n"
        "  });\n"
        "}\n"
        "hours(document.getElementById('box-hours'));\n"
        "hbars(document.getElementById('box-senders'), 'chart-senders', D.senders || [],\n"
        "  r => r.domain, r => r.refused + r.would_refuse);\n"
        "hbars(document.getElementById('box-clients'), 'chart-clients', D.clients || [],\n"
        "  r => r.client_addr, r => r.messages);\n"
        "document.body.setAttribute('data-bars', String(bars));\n"
        "})();\n"
        "</script>\n";

bool out_html(FILE *f, const struct table *t, const bool *want)
{
	fputs(html_head, f);
	if (t[T_INPUT].nrows >= 2) {
		const char *first = NULL, *last = NULL, *dec = NULL;
		for (size_t r = 0; r < t[T_INPUT].nrows; r++) {
			const char *k = cell(&t[T_INPUT], r, 0);
			if (!strcmp(k, "first"))
				first = cell(&t[T_INPUT], r, 1);
			else if (!strcmp(k, "last"))
				last = cell(&t[T_INPUT], r, 1);
			else if (!strcmp(k, "decisions"))
				dec = cell(&t[T_INPUT], r, 1);
		}
		fputs("<p>", f);
		html_text(f, dec ? dec : "0");
		fputs(" decisions", f);
		if (first && first[0]) {
			fputs(", ", f);
			html_text(f, first);
			fputs(" to ", f);
			html_text(f, last);
		}
		fputs(".</p>\n", f);
	}
	fputs("<h2>Decisions per hour by verdict (UTC)</h2>\n<div id=\"box-hours\"></div>\n"
	      "<h2>Top refused sender domains (messages)</h2>\n<div id=\"box-senders\"></div>\n"
	      "<h2>Top clients sending from null-MX or nonexistent domains (messages)</h2>\n"
	      "<div id=\"box-clients\"></div>\n",
	      f);
	for (int i = 0; i < T__COUNT; i++)
		if (want[i])
			html_table(f, &t[i]);
	/* the charts' data: every table, whatever was asked for */
	bool all[T__COUNT];
	for (int i = 0; i < T__COUNT; i++)
		all[i] = true;
	fputs("<script type=\"application/json\" id=\"mxsane-data\">", f);
	json_tables(f, t, all, true);
	fputs("</script>\n", f);
	fputs(html_script, f);
	fputs("</body></html>\n", f);
	return fflush(f) == 0 && !ferror(f);
}
