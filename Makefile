# aigw build. One plain Makefile (redis style): `make` builds build/aigw, `make test` runs every
# test, `make run` starts the gateway, `make bench` runs the benchmark. Dependencies come from
# Debian packages through `make deps`.

CC       ?= cc
BUILD    ?= build
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GIT_REV  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 -Werror -Wno-unused-parameter
# CFLAGS is the caller's (optimisation, sanitizers); BASE_CFLAGS is always applied.
CFLAGS   ?= -O2 -g
BASE_CFLAGS := -std=gnu11 -pthread -fno-strict-aliasing $(WARN) -Isrc -D_GNU_SOURCE \
            -DAIGW_VERSION='"$(VERSION)"' -DAIGW_GIT_REV='"$(GIT_REV)"'
LDLIBS   := -luv -lhttp_parser -lssl -lcrypto -lz -lbrotlidec -lbrotlienc -lpcre2-8 -lyaml -lcjson -lpthread -lm

LIB_SRC  := $(sort $(shell find src -name '*.c' ! -path src/main.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all deps run test test-unit test-e2e test-asan test-fuzz fuzz-explore bench bench-mcp clean asan fuzz format

all: $(BUILD)/aigw

deps:
	@sh scripts/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libaigw.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/aigw: $(BUILD)/src/main.o $(BUILD)/libaigw.a
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libaigw.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -Itests/unit -MMD -MP -MF $@.d -o $@ $< $(BUILD)/libaigw.a $(LDFLAGS) $(LDLIBS) -lcmocka

unit: $(UNIT_BIN)

# The same tree built with AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    LDFLAGS="-fsanitize=address,undefined" build-asan/aigw unit

# libFuzzer harnesses (clang), each linked with the library built with the same flags.
fuzz:
	$(MAKE) CC=clang BUILD=build-fuzz CFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer" \
	    build-fuzz/libaigw.a
	@mkdir -p build-fuzz/fuzz
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	    echo "clang $$f"; \
	    clang -O1 -g -std=gnu11 -D_GNU_SOURCE -Isrc -fsanitize=fuzzer,address,undefined -o build-fuzz/fuzz/$$n $$f \
	        build-fuzz/libaigw.a $(LDLIBS) || exit 1; done

# Long fuzz runs with random seeds (AIGW_FUZZ_SECONDS each, default 300; FUZZ=name for one
# harness). The corpus grows in build-fuzz/corpus; findings are written to build-fuzz/findings.
fuzz-explore: fuzz
	@sh scripts/fuzz-explore.sh $(FUZZ)

run: deps all
	./$(BUILD)/aigw run $(ARGS)

# Every test: unit (cmocka), end-to-end (Node + official SDKs) on the normal and the ASan+UBSan
# build, and short fuzz runs. Prints one closing summary line; non-zero exit on any failure.
test: deps
	@sh scripts/run-tests.sh

bench: deps all
	@sh bench/run.sh $(BENCH_ARGS)
	@echo "(the MCP benchmark, tools/call through aigw vs direct, is 'make bench-mcp', about a minute)"

# MCP: tools/call and session set-up through aigw vs straight to the same MCP server (docs/benchmarks.md).
bench-mcp: deps all
	@node bench/mcp_bench.mjs $(BENCH_MCP_ARGS)

format:
	clang-format -i $(shell find src tests/unit tests/fuzz -name '*.[ch]')

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(BUILD)/src/main.d $(UNIT_BIN:=.d)
