# sedns — GNU Makefile. Objects and binaries go under $(BUILD) (ignored by git).
# make            build build/sedns and the unit runner
# make test       install deps, build, run every test (unit + shell)
# make run        install deps, build, serve the embedded default config
# make SANITIZE=1 build with ASan + UBSan (into build-san/ unless BUILD is set)

SANITIZE ?= 0
ifeq ($(SANITIZE),1)
BUILD ?= build-san
else
BUILD ?= build
endif

CC      ?= cc
PKGS    := ldns libevent lmdb yaml-0.1 libpsl libcurl json-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcurl: headers only; src/curlshim.c loads it when the API watch starts
PKG_LIBS   := $(shell pkg-config --libs $(filter-out libcurl,$(PKGS)) 2>/dev/null)
CRIT_CFLAGS := $(shell pkg-config --cflags criterion 2>/dev/null)
CRIT_LIBS   := $(shell pkg-config --libs criterion 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wcast-align \
        -Wwrite-strings -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wundef -Wvla -Wnull-dereference \
        -Wimplicit-fallthrough -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -Iinclude $(PKG_CFLAGS) -D_GNU_SOURCE -pthread
LDLIBS  += $(PKG_LIBS) -lm -pthread
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

SRCS      := $(sort $(wildcard src/*.c))
LIB_SRCS  := $(filter-out src/main.c,$(SRCS))
LIB_OBJS  := $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/*.c))
UNIT_OBJS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/obj/unit/%.o)
VERSION   := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

PREFIX  ?= /usr/local
DESTDIR ?=

.PHONY: all deps test unit shell run clean install uninstall bench manifest fuzz fuzz-build
all: $(BUILD)/sedns $(BUILD)/unit-tests $(BUILD)/tools/kubeapi

deps:
	@scripts/install-deps.sh

$(BUILD)/obj/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)/obj
	$(CC) $(CFLAGS) -DSEDNS_VERSION='"$(VERSION)"' -c -o $@ $<

$(BUILD)/obj/unit/%.o: tests/unit/%.c $(wildcard include/*.h) | $(BUILD)/obj/unit
	$(CC) $(CFLAGS) $(CRIT_CFLAGS) -Wno-missing-prototypes -c -o $@ $<

$(BUILD)/obj $(BUILD)/obj/unit:
	mkdir -p $@

$(BUILD)/sedns: $(BUILD)/obj/main.o $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit-tests: $(UNIT_OBJS) $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CRIT_LIBS)

# the test Kubernetes API server (TLS with OpenSSL) that tests/shell/test_kube.sh drives
$(BUILD)/tools/kubeapi: tests/tools/kubeapi.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Werror -Wno-unused-result -D_GNU_SOURCE -pthread \
	    $(shell pkg-config --cflags openssl json-c) -o $@ $< $(shell pkg-config --libs openssl json-c) -pthread

unit: $(BUILD)/unit-tests
	cd tests/unit && ../../$(BUILD)/unit-tests --jobs 2

shell: $(BUILD)/sedns
	SEDNS=$(abspath $(BUILD)/sedns) tests/run-shell.sh

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) shell

run: deps
	$(MAKE) $(BUILD)/sedns
	mkdir -p var
	@echo "make run: in another terminal, here: export SEDNS_CONFIG=config/sedns.yaml; then $(BUILD)/sedns vips, check, rules"
	exec $(BUILD)/sedns serve -c config/sedns.yaml

bench: deps
	$(MAKE) $(BUILD)/sedns
	scripts/bench.sh

SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system

# The unit runs as a DynamicUser with StateDirectory=sedns: no useradd needed.
# An existing /etc/sedns/sedns.yaml is never overwritten.
install: $(BUILD)/sedns
	install -D -m 0755 $(BUILD)/sedns $(DESTDIR)$(PREFIX)/sbin/sedns
	sed 's|@SBINDIR@|$(PREFIX)/sbin|g' systemd/sedns.service.in > $(BUILD)/sedns.service
	install -D -m 0644 $(BUILD)/sedns.service $(DESTDIR)$(SYSTEMDUNITDIR)/sedns.service
	install -D -m 0644 systemd/sedns.socket $(DESTDIR)$(SYSTEMDUNITDIR)/sedns.socket
	install -D -m 0755 scripts/sync-kubernetes.sh $(DESTDIR)$(PREFIX)/libexec/sedns/sync-kubernetes.sh
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/sedns/README.md
	install -d -m 0755 $(DESTDIR)/etc/sedns/serviceentries $(DESTDIR)/etc/sedns/workloads
	test -e $(DESTDIR)/etc/sedns/sedns.yaml || install -D -m 0644 config/production/sedns.yaml $(DESTDIR)/etc/sedns/sedns.yaml
	[ -n "$(DESTDIR)" ] || systemctl daemon-reload 2>/dev/null || true

# Keeps /etc/sedns (operator config) and /var/lib/sedns (the VIP store).
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/sedns $(DESTDIR)$(SYSTEMDUNITDIR)/sedns.service $(DESTDIR)$(SYSTEMDUNITDIR)/sedns.socket
	rm -f $(DESTDIR)$(PREFIX)/libexec/sedns/sync-kubernetes.sh $(DESTDIR)$(PREFIX)/share/doc/sedns/README.md
	-rmdir $(DESTDIR)$(PREFIX)/libexec/sedns $(DESTDIR)$(PREFIX)/share/doc/sedns 2>/dev/null
	[ -n "$(DESTDIR)" ] || systemctl daemon-reload 2>/dev/null || true

# libFuzzer targets (clang): every parser, under ASan and UBSan. `make fuzz`
# runs each for FUZZ_SECONDS (default 60) from tests/fuzz/corpus; make test
# runs them briefly (tests/shell/test_fuzz.sh).
FUZZ_BUILD   := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -O1 -g -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Iinclude $(PKG_CFLAGS) -D_GNU_SOURCE \
                -DSEDNS_VERSION='"fuzz"' -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_TARGETS := $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_OBJS    := $(LIB_SRCS:src/%.c=$(FUZZ_BUILD)/obj/%.o)

$(FUZZ_BUILD)/obj/%.o: src/%.c $(wildcard include/*.h) | $(FUZZ_BUILD)/obj
	clang $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/obj:
	mkdir -p $@

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(LDLIBS)

fuzz-build: $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_TARGETS)

# config/kubernetes/sedns.yaml from its template and the sync script
manifest:
	scripts/gen-manifest.sh

clean:
	rm -rf build build-san build-fuzz
