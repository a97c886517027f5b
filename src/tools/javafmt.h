/* javafmt.h - number and date text the way Java's formatters write it.
 *
 * The perf tools' report lines are read by scripts written against the
 * Java tools, so figures must round the same way: Java's "%.Nf" rounds
 * half-up from the shortest decimal form of the double (1.005 -> "1.01",
 * where C gives "1.00") and spells NaN/Infinity in words. The date
 * formatter understands the SimpleDateFormat letters Kafka's tools use.
 */
#ifndef SAMSA_TOOLS_JAVAFMT_H
#define SAMSA_TOOLS_JAVAFMT_H

#include <stddef.h>
#include <stdint.h>

/* Java String.format("%.<prec>f", d) into buf. Returns buf. */
char *java_fixed(char *buf, size_t len, double d, int prec);

/* Java SimpleDateFormat(pattern).format(ms) in local time into buf.
 * Supports y M d H h k K m s S a E z Z X and 'quoted' text. Returns buf. */
char *java_date(char *buf, size_t len, const char *pattern, int64_t epoch_ms);

#endif
