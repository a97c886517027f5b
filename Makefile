# Samsa build. `make` builds the broker and the tools into build/;
# `make SANITIZE=1` builds the same with ASan+UBSan into build-asan/.
CC ?= cc
SANITIZE ?= 0
ifeq ($(SANITIZE),1)
BUILD ?= build-asan
OPT = -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(SANITIZE),thread)
# ThreadSanitizer for the threaded parts (log cleaner workers, the fsync thread, DNS lookups)
BUILD ?= build-tsan
OPT = -O1 -fsanitize=thread -fno-omit-frame-pointer
else
BUILD ?= build
OPT = -O2
endif
CFLAGS = -std=gnu11 -g $(OPT) -Wall -Wextra -Werror -Isrc -D_GNU_SOURCE $(EXTRA_CFLAGS)
LDFLAGS = $(OPT) $(EXTRA_LDFLAGS)
# snappy is loaded at run time (dlopen, src/protocol/compress.c); --as-needed leaves out
# libraries nothing references (libm, once the broker calls none of it): an idle broker's RSS.
LIBS = -Wl,--as-needed -lz -llz4 -lzstd -ljansson -lssl -lcrypto -lm -lpthread -ldl
TOOL_LIBS = -lrdkafka
# On x86-64 the broker calls OpenSSL through trampolines that load libssl at its first call
# (scripts/gen-openssl-lazy.sh, src/security/openssl_lazy.c): an idle broker without TLS, SASL or
# compaction does without 1.7 MB of resident libraries. Elsewhere it links OpenSSL as the tools do.
ifeq ($(shell uname -m),x86_64)
OPENSSL_LAZY := $(BUILD)/obj/gen/openssl_lazy.o
BROKER_LIBS = $(filter-out -lssl -lcrypto,$(LIBS))
else
OPENSSL_LAZY :=
BROKER_LIBS = $(LIBS)
endif

LIB_SRCS := $(shell find src -name '*.c' -not -path 'src/tools/*' -not -name 'main.c' | sort)
TOOL_SRCS := $(shell find src/tools -name '*.c' 2>/dev/null | sort)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
# The web console's pages, embedded in the binary (scripts/embed-static.sh).
CONSOLE_STATIC := $(sort $(wildcard src/console/static/*))
LIB_OBJS += $(BUILD)/obj/gen/console_static.o
TOOL_OBJS := $(TOOL_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

BROKER := $(BUILD)/samsa-broker
TOOLS := $(BUILD)/samsa-tools
# Standalone bench program (no libsamsa): the produce write paths side by side (bench/README.md).
WRITE_PATHS := $(BUILD)/bin/samsa-write-paths

.PHONY: all clean check-unit test test-fast codegen install bench
all: $(BROKER) $(if $(TOOL_SRCS),$(TOOLS)) $(UNIT_BINS) $(WRITE_PATHS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/gen/console_static.c: $(CONSOLE_STATIC) scripts/embed-static.sh
	@mkdir -p $(dir $@)
	scripts/embed-static.sh $@ $(CONSOLE_STATIC)

$(BUILD)/obj/gen/console_static.o: $(BUILD)/gen/console_static.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libsamsa.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# The trampolines before the archive: they pull its resolver (openssl_lazy.o) in.
$(BROKER): $(BUILD)/obj/src/broker/main.o $(OPENSSL_LAZY) $(BUILD)/libsamsa.a
	$(CC) $(LDFLAGS) -o $@ $^ $(BROKER_LIBS)

$(BUILD)/gen/openssl_lazy.S: $(BUILD)/obj/src/broker/main.o $(BUILD)/libsamsa.a scripts/gen-openssl-lazy.sh
	@mkdir -p $(dir $@)
	CC="$(CC)" scripts/gen-openssl-lazy.sh $@ $(BUILD)/obj/src/broker/main.o $(BUILD)/libsamsa.a

$(BUILD)/obj/gen/openssl_lazy.o: $(BUILD)/gen/openssl_lazy.S
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

$(TOOLS): $(TOOL_OBJS) $(BUILD)/libsamsa.a
	$(CC) $(LDFLAGS) -o $@ $^ $(TOOL_LIBS) $(LIBS)

$(WRITE_PATHS): bench/write_paths.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lpthread

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libsamsa.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libsamsa.a $(LIBS)

check-unit: $(UNIT_BINS)
	@pass=0; fail=0; for t in $(UNIT_BINS); do \
	  if $$t; then pass=$$((pass+1)); else echo "FAIL $$t"; fail=$$((fail+1)); fi; done; \
	  echo "unit: $$pass passed, $$fail failed"; [ $$fail -eq 0 ]

# All tests: unit tests and the black-box suite (real broker, real clients),
# both under AddressSanitizer + UndefinedBehaviorSanitizer.
PYTEST ?= /usr/bin/python3 -m pytest
NPROC ?= $(shell nproc 2>/dev/null || echo 2)
test:
	$(MAKE) -j$(NPROC) SANITIZE=1 all
	$(MAKE) -j$(NPROC) SANITIZE=1 check-unit
	$(MAKE) check-tsan
	$(MAKE) check-page-window
	SAMSA_BUILD=build-asan ASAN_OPTIONS=detect_leaks=1 $(PYTEST) -q -p no:cacheprovider tests/integration

# log.page.cache.window.bytes (off by default) on every broker, with a window of 128 KiB so that
# nearly every append hands ranges to the trimming thread: replication (follower appends, kill -9,
# truncation, catch-up) and retention (segments deleted while their ranges may still be queued).
.PHONY: check-page-window
check-page-window:
	SAMSA_BUILD=build-asan ASAN_OPTIONS=detect_leaks=1 SAMSA_TEST_PAGE_CACHE_WINDOW=131072 $(PYTEST) -q \
		-p no:cacheprovider tests/integration/test_replication.py tests/integration/test_retention.py

# ThreadSanitizer over the threaded parts: the unit tests that start threads (the fsync
# thread, kafka_client's DNS lookups, the cleaner's live swap), the compaction suite,
# whose broker runs the log cleaner's worker threads, and the client, TLS and network-thread
# suites, whose connections live on two network threads (forced: the CI machine has fewer
# CPUs than network.threads.min.cpus) and hand their frames and answers to the request loop,
# the page-cache window's, whose broker hands log ranges to its trimming thread, and the metadata
# commits', whose fsync runs on a thread of its own. Only the broker is built with TSan
# (the tools keep the ASan build: librdkafka is not instrumented). setarch -R: gcc 12's
# TSan cannot map its shadow memory under a kernel's largest ASLR ranges.
TSAN_UNIT := test_storage test_kafka_client test_cleaner
TSAN_RUN = TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" setarch $$(uname -m) -R
.PHONY: check-tsan
check-tsan:
	$(MAKE) -j$(NPROC) SANITIZE=1 build-asan/samsa-tools
	$(MAKE) -j$(NPROC) SANITIZE=thread build-tsan/samsa-broker $(TSAN_UNIT:%=build-tsan/tests/%)
	ln -sfn ../build-asan/samsa-tools build-tsan/samsa-tools
	@for t in $(TSAN_UNIT); do $(TSAN_RUN) build-tsan/tests/$$t || exit 1; done
	SAMSA_BUILD=build-tsan SAMSA_TEST_NETWORK_THREADS=2 $(TSAN_RUN) $(PYTEST) -q -p no:cacheprovider \
		tests/integration/test_compaction.py tests/integration/test_clients.py tests/integration/test_tls.py \
		tests/integration/test_network_threads.py tests/integration/test_parallel_appends.py \
		tests/integration/test_page_cache_window.py tests/integration/test_partitions_made.py \
		tests/integration/test_metadata_commits.py

# Quicker loop while developing: optimized build, no sanitizers.
test-fast: all check-unit
	SAMSA_BUILD=build $(PYTEST) -q -p no:cacheprovider -x tests/integration

# Long reliability runs (tests/reliability/, figures in its README.md): 50
# kill -9 cycles, 10,000 connections, a soak, the broker under Valgrind.
# Release build; the whole run is cut off at 20 minutes.
TORTURE_SECONDS ?= 1200
.PHONY: torture
torture:
	$(MAKE) -j$(NPROC) all
	@mkdir -p build
	@{ SAMSA_BUILD=build timeout $(TORTURE_SECONDS) $(PYTEST) -q -s -p no:cacheprovider tests/reliability 2>&1; \
	  echo $$? > build/torture.rc; } | tee build/torture.log; exit $$(cat build/torture.rc)

# A cluster on loopback for trying things by hand: 3 etcd members and 3 nodes
# (scripts/cluster-up.sh: ports, data dir, `stop` and `status`).
.PHONY: cluster
cluster:
	scripts/cluster-up.sh 3

# Benchmarks: release build in build/release, machine limits and broker
# figures, results table in bench/results/ (see bench/README.md).
bench:
	bench/run.sh

# Regenerate the protocol codecs from Kafka's JSON message definitions.
KAFKA_SPEC ?= ../shared/kafka-protocol/3.6.1
codegen:
	python3 codegen/gen.py --spec $(KAFKA_SPEC) --out src/protocol/gen

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Lay the package out like Kafka's tarball: PREFIX/bin/kafka-*.sh,
# PREFIX/config/kraft/server.properties, PREFIX/libexec/samsa-{broker,tools}.
PREFIX ?= /opt/kafka
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/libexec $(DESTDIR)$(PREFIX)/config/kraft
	install -m 755 $(BROKER) $(TOOLS) $(DESTDIR)$(PREFIX)/libexec/
	install -m 755 bin/*.sh $(DESTDIR)$(PREFIX)/bin/
	install -m 644 config/kraft/*.properties $(DESTDIR)$(PREFIX)/config/kraft/

# The Debian package `samsa` (scripts/make-deb.sh, docs/packaging.md), built
# with dpkg-deb alone: $(BUILD)/samsa_<version>_<arch>.deb.
.PHONY: deb
deb: $(BROKER) $(TOOLS)
	scripts/make-deb.sh $(BUILD)

# libFuzzer targets (tests/fuzz/fuzz_*.c), built with clang into build-fuzz/.
# `make fuzz FUZZ_SECONDS=60` runs each target for that long on a copy of
# its seed corpus tests/fuzz/corpus/<name>/, so the committed corpus stays
# small; crashing inputs land in build-fuzz/crashes/.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR := build-fuzz
FUZZ_CFLAGS = -std=gnu11 -g -O1 -Isrc -D_GNU_SOURCE -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_DIR)/obj/%.o) $(FUZZ_DIR)/obj/gen/console_static.o

$(FUZZ_DIR)/obj/gen/console_static.o: $(CONSOLE_STATIC) scripts/embed-static.sh
	@mkdir -p $(dir $@) $(FUZZ_DIR)/gen
	scripts/embed-static.sh $(FUZZ_DIR)/gen/console_static.c $(CONSOLE_STATIC)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $(FUZZ_DIR)/gen/console_static.c -o $@

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -MMD -MP -c $< -o $@

$(FUZZ_DIR)/libsamsa.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	@ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libsamsa.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_DIR)/libsamsa.a $(LIBS)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)
fuzz: fuzz-build
	@mkdir -p $(FUZZ_DIR)/crashes
	@fail=0; for bin in $(FUZZ_BINS); do t=$${bin#$(FUZZ_DIR)/fuzz_}; \
	  rm -rf $(FUZZ_DIR)/corpus/$$t; mkdir -p $(FUZZ_DIR)/corpus/$$t; \
	  cp -r tests/fuzz/corpus/$$t/. $(FUZZ_DIR)/corpus/$$t/ 2>/dev/null || true; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	  if ! $$bin -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	      -artifact_prefix=$(FUZZ_DIR)/crashes/$$t- $(FUZZ_DIR)/corpus/$$t \
	      > $(FUZZ_DIR)/$$t.log 2>&1; then \
	    echo "FAIL fuzz_$$t (see $(FUZZ_DIR)/$$t.log)"; fail=$$((fail+1)); fi; \
	  grep -h '^stat::number_of_executed_units' $(FUZZ_DIR)/$$t.log | sed "s/^/  $$t /"; \
	done; [ $$fail -eq 0 ]

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
