# mqtls: one `make` builds everything into build/.
# Targets: all deps demo test unit asan integration fuzz bench stress soak image clean

CC        ?= cc
FUZZCC    ?= clang
BORING_INC = /usr/include/android
BORING_LIB = /usr/lib/x86_64-linux-gnu/android
VERSION    = 0.1.0

# BoringSSL is named by full path so the linker can never pick OpenSSL's
# libssl.so from the default search path instead.
SSL_LIBS   = $(BORING_LIB)/libssl.so $(BORING_LIB)/libcrypto.so -Wl,-rpath,$(BORING_LIB)
LIBS       = $(SSL_LIBS) -levent_core -levent_pthreads -levent_extra -ljansson -largon2 -lpthread -lm

WARN       = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CPPFLAGS   = -I. -I$(BORING_INC) -D_GNU_SOURCE -DMQTLS_VERSION='"$(VERSION)"'
CFLAGS    ?= -O2 -g
CFLAGS    += -std=c11 $(WARN)
SAN_FLAGS  = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

B          = build

# Library code: everything but the two programs' main files.
LIB_SRC    = $(wildcard mqtt/*.c tls/*.c proxy/*.c proxy/auth/*.c)
LIB_SRC   := $(filter-out proxy/main.c,$(LIB_SRC))
BENCH_SRC  = $(filter-out bench/main.c,$(wildcard bench/*.c))
UNIT_SRC   = $(wildcard tests/unit/test_*.c)
FUZZ_SRC   = $(wildcard tests/fuzz/fuzz_*.c)

LIB_OBJ    = $(LIB_SRC:%.c=$(B)/obj/%.o)
BENCH_OBJ  = $(BENCH_SRC:%.c=$(B)/obj/%.o)
ASAN_OBJ   = $(LIB_SRC:%.c=$(B)/asan/%.o) $(BENCH_SRC:%.c=$(B)/asan/%.o)
UNIT_BIN   = $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
ASAN_BIN   = $(UNIT_SRC:tests/unit/%.c=$(B)/asan/tests/%)
FUZZ_BIN   = $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)
BENCH_BIN  = $(if $(wildcard bench/main.c),$(B)/mqtls-bench)

.PHONY: all deps demo test unit asan integration fuzz bench stress soak image clean check-deps
all: $(B)/mqtls $(BENCH_BIN) $(UNIT_BIN)

-include $(wildcard $(B)/obj/*/*.d $(B)/obj/*/*/*.d $(B)/asan/*/*.d $(B)/asan/*/*/*.d)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 $(WARN) $(SAN_FLAGS) -MMD -MP -c $< -o $@

$(B)/libmqtls.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/libbench.a: $(BENCH_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/libmqtls-asan.a: $(ASAN_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/mqtls: $(B)/obj/proxy/main.o $(B)/libmqtls.a
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

# The daemon itself under ASan+UBSan: the integration and hostile-load suites
# run against it too (tests/run.sh, suite asan-integration).
$(B)/asan/mqtls: $(B)/asan/proxy/main.o $(B)/libmqtls-asan.a
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LIBS)

$(B)/mqtls-bench: $(B)/obj/bench/main.o $(B)/libbench.a $(B)/libmqtls.a
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

# Test helpers shared by several test files are headers in tests/unit/.
TEST_HDR   = $(wildcard tests/unit/*.h)

$(B)/tests/%: tests/unit/%.c $(B)/libbench.a $(B)/libmqtls.a $(TEST_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $(filter-out %.h,$^) -lcmocka $(LIBS)

$(B)/asan/tests/%: tests/unit/%.c $(B)/libmqtls-asan.a $(TEST_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 $(WARN) -Wno-missing-prototypes $(SAN_FLAGS) -o $@ $(filter-out %.h,$^) -lcmocka $(LIBS)

# Fuzz targets are built with clang's libFuzzer and link the library code
# compiled with the same instrumentation.
$(B)/fuzz/%: tests/fuzz/%.c $(LIB_SRC)
	@mkdir -p $(dir $@)
	$(FUZZCC) $(CPPFLAGS) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS)

deps:
	@sh tests/deps.sh

unit: $(UNIT_BIN)
asan: $(ASAN_BIN) $(B)/asan/mqtls
fuzz: $(FUZZ_BIN)

# `make test` installs what is missing, builds, and runs every suite; the
# last line it prints is "N passed, M failed".
test: deps
	@$(MAKE) --no-print-directory all asan fuzz
	@bash tests/run.sh

# The hostile-load suite at full size (minutes): longer attacks, more sockets.
stress: deps
	@$(MAKE) --no-print-directory all
	@MQTLS_STRESS=1 /usr/bin/python3 tests/integration/run.py -j 1 hostile

# 9,000 TLS clients held through two broker restarts; SOAK_SECONDS sets the
# time (default 600). make test runs a 2-minute version.
soak: deps
	@$(MAKE) --no-print-directory all
	@/usr/bin/python3 tests/soak/soak.py --seconds $${SOAK_SECONDS:-600}

demo: deps
	@$(MAKE) --no-print-directory $(B)/mqtls
	@bash tests/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@sh bench/compare

# The container image with podman (deploy/Dockerfile, on a debian:12-slim made
# locally with mmdebstrap the first time; see deploy/README.md).
image: deps
	@sh deploy/podman/image.sh localhost/mqtls:$(VERSION)

clean:
	rm -rf $(B)
