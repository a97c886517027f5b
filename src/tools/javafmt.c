/* javafmt.c - Java-compatible fixed-point and date formatting.
 *
 * See javafmt.h. java_fixed finds the shortest decimal string that reads
 * back as the same double (what Java's formatter starts from), then
 * rounds that digit string half-up to the requested precision.
 */
#include "tools/javafmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *java_fixed(char *buf, size_t len, double d, int prec) {
    if (isnan(d)) { snprintf(buf, len, "NaN"); return buf; }
    if (isinf(d)) { snprintf(buf, len, d > 0 ? "Infinity" : "-Infinity"); return buf; }
    /* Shortest round-trip form in exponent notation: digits + exponent. */
    char sci[64];
    for (int p = 1; p <= 17; p++) {
        snprintf(sci, sizeof sci, "%.*e", p - 1, d);
        if (strtod(sci, NULL) == d) break;
    }
    int neg = sci[0] == '-';
    char digits[32];
    size_t nd = 0;
    const char *s = sci + neg;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') digits[nd++] = *s;
    int exp10 = atoi(s + 1); /* value = 0.d1d2d3... * 10^(exp10+1) */
    /* Place digits in a fixed buffer: integer part then fraction. */
    int point = exp10 + 1;  /* digits before the decimal point */
    char fixed[400];
    size_t nf = 0;
    int int_digits = point > 0 ? point : 0;
    for (int i = 0; i < int_digits; i++) fixed[nf++] = (size_t)i < nd ? digits[i] : '0';
    if (int_digits == 0) fixed[nf++] = '0', int_digits = 1;
    size_t frac_start = nf;
    for (int i = 0; i < prec + 1; i++) {
        int idx = point + i; /* digit index for fraction position i */
        fixed[nf++] = (idx >= 0 && (size_t)idx < nd) ? digits[idx] : '0';
    }
    /* Any digits beyond prec+1 only matter for half-up when the (prec+1)th is '5': half-up ignores them. */
    int round_up = fixed[frac_start + (size_t)prec] >= '5';
    nf = frac_start + (size_t)prec;
    if (round_up) {
        long i = (long)nf - 1;
        for (; i >= 0; i--) {
            if (fixed[i] == '9') fixed[i] = '0';
            else { fixed[i]++; break; }
        }
        if (i < 0) {
            memmove(fixed + 1, fixed, nf);
            fixed[0] = '1';
            nf++;
            frac_start++;
        }
    }
    /* Java prints "-0.0" for negative values that round to zero. */
    size_t o = 0;
    if (neg && o < len) buf[o++] = '-';
    for (size_t i = 0; i < frac_start && o + 1 < len; i++) buf[o++] = fixed[i];
    if (prec > 0 && o + 1 < len) buf[o++] = '.';
    for (size_t i = frac_start; i < nf && o + 1 < len; i++) buf[o++] = fixed[i];
    buf[o < len ? o : len - 1] = 0;
    return buf;
}

static size_t put_num(char *out, size_t room, long v, int width) {
    int n = snprintf(out, room, "%0*ld", width, v);
    return n < 0 ? 0 : (size_t)n < room ? (size_t)n : room - 1;
}

static size_t put_str(char *out, size_t room, const char *s) {
    int n = snprintf(out, room, "%s", s);
    return n < 0 ? 0 : (size_t)n < room ? (size_t)n : room - 1;
}

char *java_date(char *buf, size_t len, const char *pattern, int64_t epoch_ms) {
    static const char *months[] = {"January", "February", "March", "April", "May", "June", "July",
                                   "August", "September", "October", "November", "December"};
    static const char *days[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
    time_t secs = (time_t)(epoch_ms >= 0 ? epoch_ms / 1000 : (epoch_ms - 999) / 1000);
    int ms = (int)(epoch_ms - (int64_t)secs * 1000);
    struct tm tm;
    localtime_r(&secs, &tm);
    size_t o = 0;
    if (len == 0) return buf;
    for (const char *p = pattern; *p && o + 1 < len;) {
        char c = *p;
        if (c == '\'') {
            p++;
            if (*p == '\'') { buf[o++] = '\''; p++; continue; }
            while (*p && o + 1 < len) {
                if (*p == '\'') {
                    if (p[1] == '\'') { buf[o++] = '\''; p += 2; continue; }
                    p++;
                    break;
                }
                buf[o++] = *p++;
            }
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            buf[o++] = c;
            p++;
            continue;
        }
        int n = 0;
        while (p[n] == c) n++;
        p += n;
        size_t room = len - o;
        char tmp[64];
        switch (c) {
        case 'y':
        case 'Y':
            if (n == 2) o += put_num(buf + o, room, (tm.tm_year + 1900) % 100, 2);
            else o += put_num(buf + o, room, tm.tm_year + 1900, n);
            break;
        case 'M':
            if (n >= 4) o += put_str(buf + o, room, months[tm.tm_mon]);
            else if (n == 3) { snprintf(tmp, sizeof tmp, "%.3s", months[tm.tm_mon]); o += put_str(buf + o, room, tmp); }
            else o += put_num(buf + o, room, tm.tm_mon + 1, n);
            break;
        case 'd': o += put_num(buf + o, room, tm.tm_mday, n); break;
        case 'D': o += put_num(buf + o, room, tm.tm_yday + 1, n); break;
        case 'H': o += put_num(buf + o, room, tm.tm_hour, n); break;
        case 'k': o += put_num(buf + o, room, tm.tm_hour == 0 ? 24 : tm.tm_hour, n); break;
        case 'K': o += put_num(buf + o, room, tm.tm_hour % 12, n); break;
        case 'h': o += put_num(buf + o, room, tm.tm_hour % 12 == 0 ? 12 : tm.tm_hour % 12, n); break;
        case 'm': o += put_num(buf + o, room, tm.tm_min, n); break;
        case 's': o += put_num(buf + o, room, tm.tm_sec, n); break;
        case 'S': o += put_num(buf + o, room, ms, n); break;
        case 'a': o += put_str(buf + o, room, tm.tm_hour < 12 ? "AM" : "PM"); break;
        case 'E':
            if (n >= 4) o += put_str(buf + o, room, days[tm.tm_wday]);
            else { snprintf(tmp, sizeof tmp, "%.3s", days[tm.tm_wday]); o += put_str(buf + o, room, tmp); }
            break;
        case 'z': o += put_str(buf + o, room, tm.tm_zone ? tm.tm_zone : "UTC"); break;
        case 'Z':
        case 'X': {
            long off = tm.tm_gmtoff / 60;
            if (c == 'X' && off == 0) { o += put_str(buf + o, room, "Z"); break; }
            snprintf(tmp, sizeof tmp, "%c%02ld%s%02ld", off < 0 ? '-' : '+', labs(off) / 60,
                     c == 'X' && n >= 3 ? ":" : "", labs(off) % 60);
            if (c == 'X' && n == 1) tmp[3] = 0;
            o += put_str(buf + o, room, tmp);
            break;
        }
        default:
            /* Unsupported letter: Java would throw; print it literally. */
            for (int i = 0; i < n && o + 1 < len; i++) buf[o++] = c;
        }
    }
    buf[o] = 0;
    return buf;
}
