# obs gateway: nginx module, sidecar and their tests.
#
#   make deps      install what building and `make demo` need (Debian packages)
#   make test-deps install what only the tests need (Debian packages, npm)
#   make           build build/ngx_http_obs_module.so (and the sidecar)
#   make test      unit tests + Test::Nginx tests + integration tests
#   make install   copy the module into nginx's modules directory
#   make images    build the gateway and sidecar images (docker)

SHELL := /bin/bash

NGINX_SRC   ?= /usr/share/nginx/src
NGINX_BIN   ?= /usr/sbin/nginx
BUILD       := $(CURDIR)/build
NGX_BUILD   := $(BUILD)/nginx
MODULE      := $(BUILD)/ngx_http_obs_module.so
MODULES_DIR ?= $(shell $(NGINX_BIN) -V 2>&1 | sed -n 's/.*--modules-path=\([^ ]*\).*/\1/p')

ECHO_MODULE ?= /usr/lib/nginx/modules/ngx_http_echo_module.so

MODULE_SRCS := $(wildcard ngx_obs_module/*.c ngx_obs_module/*.h \
                 ngx_obs_module/jwt/*.c ngx_obs_module/jwt/*.h) \
               common/hash.h common/hex.h common/obs_limits.h \
               common/metric_names.c common/metric_names.h \
               common/label_rules.h \
               proto/obs/v1/families.def \
               proto/obs/v1/record.proto proto/obs/v1/columns.def \
               proto/obs/v1/log_keys.def proto/obs/v1/framing.h \
               proto/obs/v1/drop_reasons.def proto/obs/v1/audit.def config

CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE

.PHONY: all module sidecar deps test-deps test unit-test nginx-test nginx-test-valgrind \
        integration-test install clean demo demo-stop rules rules-test \
        dashboards dashboards-test k8s fuzz fuzz-seeds images push-images \
        k8s-test settings-test docs-test layout-check

all: module sidecar

module: $(MODULE)

# The nginx tree the module is built against is recorded in a stamp: the
# stamp changes (and the tree is configured again) only when NGINX_SRC or its
# version changes, so `make` with nothing changed does nothing.  The module
# must be built from the same nginx version it is loaded into: a mismatch is
# refused here rather than by nginx at load time.
NGX_STAMP   := $(BUILD)/nginx-src.stamp
NGX_OBJS_MK := $(NGX_BUILD)/objs/Makefile

src_version = $(shell sed -n 's/^\#define NGINX_VERSION *"\(.*\)"/\1/p' \
                $(NGINX_SRC)/src/core/nginx.h 2>/dev/null)
bin_version = $(shell $(NGINX_BIN) -v 2>&1 | sed -n 's|.*nginx/\([^ ]*\).*|\1|p')

# The stamp is rewritten (at parse time, so that `make -n` sees it too) only
# when its text changes.
ngx_stamp_text := NGINX_SRC=$(abspath $(NGINX_SRC)) NGINX_VERSION=$(src_version)
ifneq ($(src_version),)
$(shell mkdir -p $(BUILD); \
  [ "$$(cat $(NGX_STAMP) 2>/dev/null)" = '$(ngx_stamp_text)' ] \
  || echo '$(ngx_stamp_text)' >$(NGX_STAMP))
endif

.PHONY: nginx-src-check
nginx-src-check:
	@v='$(src_version)'; b='$(bin_version)'; \
	if [ -z "$$v" ]; then \
	    echo "error: NGINX_SRC=$(NGINX_SRC) is not an nginx source tree" \
	         "(no src/core/nginx.h); install nginx-dev or set NGINX_SRC" >&2; \
	    exit 1; \
	fi; \
	if [ -z "$$b" ]; then \
	    echo "error: NGINX_BIN=$(NGINX_BIN) is not an nginx binary; set" \
	         "NGINX_BIN to the nginx that will load the module" >&2; \
	    exit 1; \
	fi; \
	if [ "$$v" != "$$b" ]; then \
	    echo "error: NGINX_SRC=$(NGINX_SRC) is nginx $$v but NGINX_BIN=$(NGINX_BIN)" \
	         "is nginx $$b; a module only loads into the nginx version it was" \
	         "built from: point NGINX_SRC at nginx $$b's source" >&2; \
	    exit 1; \
	fi

# the module's JWT core is plain C: fuzzers and benchmarks link it alone
JWT_DIR  := ngx_obs_module/jwt
JWT_CORE := $(JWT_DIR)/ngx_http_obs_jwt_keys.c \
            $(JWT_DIR)/ngx_http_obs_jwt_token.c \
            $(JWT_DIR)/ngx_http_obs_jwt_cache.c

# Debian's nginx-dev ships the exact configure flags of the packaged nginx;
# other source trees are configured with --with-compat alone.
$(NGX_OBJS_MK): $(NGX_STAMP) config proto/obs/v1/record.proto | nginx-src-check
	rm -rf $(NGX_BUILD)
	mkdir -p $(BUILD)
	cp -a $(NGINX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) && \
	if [ -f conf_flags ]; then \
	    . ./conf_flags; \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="-g -O2 -fPIC -Wall -Werror" \
	        --add-dynamic-module=$(CURDIR) >configure.log; \
	else \
	    ./configure --with-compat --with-cc-opt="-g -O2 -fPIC -Werror" \
	        --add-dynamic-module=$(CURDIR) >configure.log; \
	fi || { tail -30 $(NGX_BUILD)/configure.log; rm -f $@; exit 1; }

# A running nginx has the module mapped: the new file is written beside it
# and renamed into place, never written over (that crashes every worker).
# the module's version header follows git's, as the sidecar's does
MODULE_VERSION_H := $(NGX_BUILD)/objs/addon/obs_proto/ngx_http_obs_version.h

$(MODULE): $(NGX_OBJS_MK) $(MODULE_SRCS) | nginx-src-check
	@sed 's/OBS_VERSION/NGX_HTTP_OBS_VERSION/' $(VERSION_H) >$(MODULE_VERSION_H).new
	@cmp -s $(MODULE_VERSION_H).new $(MODULE_VERSION_H) \
	    && rm $(MODULE_VERSION_H).new || mv $(MODULE_VERSION_H).new $(MODULE_VERSION_H)
	$(MAKE) -C $(NGX_BUILD) -f objs/Makefile modules >$(BUILD)/module-build.log 2>&1 \
	    || { cat $(BUILD)/module-build.log; exit 1; }
	cp $(NGX_BUILD)/objs/ngx_http_obs_module.so $@.new
	mv -f $@.new $@

# --- sidecar ---------------------------------------------------------------

SIDECAR      := $(BUILD)/obs-sidecar
GEN          := $(BUILD)/gen
OTLP_PROTOS  := common/v1/common resource/v1/resource trace/v1/trace \
                collector/trace/v1/trace_service
PROTO_GEN    := $(GEN)/obs/v1/record.pb-c.c $(GEN)/prometheus/metrics.pb-c.c \
                $(GEN)/prometheus/remote.pb-c.c \
                $(OTLP_PROTOS:%=$(GEN)/opentelemetry/proto/%.pb-c.c)
VERSION      ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
SIDECAR_LIBS := -lprotobuf-c -lmicrohttpd -ljansson -lcurl -lsnappy -lisal -lcrypto \
                -lpthread -lm
SIDECAR_INC  := -Isidecar -Isidecar/ingest -Isidecar/aggregate \
                -Isidecar/exposition -Isidecar/status -Isidecar/audit \
                -Iexporter -Iexporter/delivery -Iexporter/loki \
                -Iexporter/otlp -Iexporter/remote_write -Iexporter/clickhouse \
                -Icommon -I$(GEN) -Iproto

# The sidecar and its exporters compile once into a static library per
# flavour: plain (the sidecar, benchmarks), ASan+UBSan (unit tests) and
# libFuzzer (fuzzers).  -MMD records each object's headers, so touching a
# header rebuilds exactly its users.
LIB_SRCS     := $(filter-out sidecar/main.c, \
                  $(wildcard sidecar/*.c sidecar/*/*.c exporter/*.c \
                    exporter/*/*.c common/*.c))
LIB_MEMBERS  := $(LIB_SRCS:.c=.o) $(PROTO_GEN:$(GEN)/%.c=gen/%.o)
OBJ          := $(BUILD)/obj
OBJ_ASAN     := $(BUILD)/obj-asan
OBJ_FUZZ     := $(BUILD)/obj-fuzz
LIB          := $(OBJ)/libobs-sidecar.a
LIB_ASAN     := $(OBJ_ASAN)/libobs-sidecar.a
LIB_FUZZ     := $(OBJ_FUZZ)/libobs-sidecar.a
SAN          := -fsanitize=address,undefined
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
                -D_GNU_SOURCE

# The version is a header rewritten (at parse time) only when it changes;
# only the files that print it include it.
hash         := \#
VERSION_H    := $(GEN)/obs_version.h
version_text := $(hash)define OBS_VERSION "$(VERSION)"
$(shell mkdir -p $(GEN); \
  [ "$$(cat $(VERSION_H) 2>/dev/null)" = '$(version_text)' ] \
  || echo '$(version_text)' >$(VERSION_H))
$(MODULE): $(VERSION_H)
VERSIONED    := exporter/delivery/http_client.o sidecar/exposition/metrics.o \
                exporter/otlp/otlp_pb.o \
                exporter/otlp/spans.o sidecar/status/status_json.o
$(foreach d,$(OBJ) $(OBJ_ASAN) $(OBJ_FUZZ),$(VERSIONED:%=$(d)/%)): \
    OBJ_EXTRA := -include $(VERSION_H) -DOBS_EXPORTER_VERSION=OBS_VERSION

sidecar: $(SIDECAR)

# The status page's files become byte arrays the sidecar serves (od and
# sed only: the build needs nothing more).
STATUS_ASSETS := sidecar/status/status.html sidecar/status/status.js \
                 sidecar/status/status.css
$(GEN)/status_assets.inc: $(STATUS_ASSETS)
	@mkdir -p $(GEN)
	@for f in $^; do \
	    echo "static const unsigned char $$(basename $$f | tr . _)[] = {"; \
	    od -An -v -tx1 $$f | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	    echo "};"; \
	done >$@.new && mv -f $@.new $@
$(foreach d,$(OBJ) $(OBJ_ASAN) $(OBJ_FUZZ),$(d)/sidecar/status/status_assets.o): \
    $(GEN)/status_assets.inc

$(GEN)/%.pb-c.c: proto/%.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) $<

# protoc-c writes the header with the source
$(GEN)/%.pb-c.h: $(GEN)/%.pb-c.c ;

# generated once and kept: they are not intermediate files to delete
.SECONDARY: $(PROTO_GEN) $(PROTO_GEN:.c=.h)

# the generated headers exist before anything that includes them compiles
$(OBJ)/%.o: %.c | $(PROTO_GEN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) -MMD -MP $(SIDECAR_INC) -It/unit $(OBJ_EXTRA) \
	    -c -o $@ $<

$(OBJ)/gen/%.o: $(GEN)/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) -MMD -MP $(SIDECAR_INC) -c -o $@ $<

$(OBJ_ASAN)/%.o: %.c | $(PROTO_GEN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(SAN) -MMD -MP $(SIDECAR_INC) -It/unit \
	    $(OBJ_EXTRA) -c -o $@ $<

$(OBJ_ASAN)/gen/%.o: $(GEN)/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(SAN) -MMD -MP $(SIDECAR_INC) -c -o $@ $<

$(OBJ_FUZZ)/%.o: %.c | $(PROTO_GEN)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -MMD -MP $(SIDECAR_INC) -It/unit $(OBJ_EXTRA) \
	    -c -o $@ $<

$(OBJ_FUZZ)/gen/%.o: $(GEN)/%.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -MMD -MP $(SIDECAR_INC) -c -o $@ $<

$(LIB): $(LIB_MEMBERS:%=$(OBJ)/%)
$(LIB_ASAN): $(LIB_MEMBERS:%=$(OBJ_ASAN)/%)
$(LIB_FUZZ): $(LIB_MEMBERS:%=$(OBJ_FUZZ)/%)
$(LIB) $(LIB_ASAN) $(LIB_FUZZ):
	rm -f $@
	ar rcs $@ $^

$(SIDECAR): $(OBJ)/sidecar/main.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(SIDECAR_LIBS)

-include $(shell find $(BUILD)/obj $(BUILD)/obj-asan $(BUILD)/obj-fuzz \
                      -name '*.d' 2>/dev/null)

install: $(MODULE)
	install -d $(DESTDIR)$(MODULES_DIR)
	install -m 0644 $(MODULE) $(DESTDIR)$(MODULES_DIR)/.ngx_http_obs_module.so.new
	mv -f $(DESTDIR)$(MODULES_DIR)/.ngx_http_obs_module.so.new \
	    $(DESTDIR)$(MODULES_DIR)/ngx_http_obs_module.so

deps:
	bash scripts/install-deps.sh

test-deps:
	bash scripts/install-test-deps.sh

demo: all
	bash deploy/demo/demo.sh start

demo-stop:
	bash deploy/demo/demo.sh stop

# --- benchmarks (docs/performance.md); BENCH_ARGS go to the script --------
# make bench-module [BENCH_ARGS="2048 20 1"]   the module's cost per request
# make bench-exporter [BENCH_ARGS=15]          sidecar CPU / nginx CPU
# make bench-scale [BENCH_ARGS="100000"]       the sidecar's scaling table

.PHONY: bench-module bench-exporter bench-scale
bench-module: $(MODULE) $(BUILD)/bench_pool_probe.so
	bash bench/module_cost.sh $(BENCH_ARGS)

bench-exporter: all
	bash bench/exporter_cost.sh $(BENCH_ARGS)

bench-scale: $(BUILD)/bench_scale
	bash bench/scale.sh $(BENCH_ARGS)

$(BUILD)/bench_sidecar: $(OBJ)/bench/sidecar_bench.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(SIDECAR_LIBS)

$(BUILD)/bench_pushers: $(OBJ)/bench/pushers_bench.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(SIDECAR_LIBS)

$(BUILD)/bench_scale: $(OBJ)/bench/scale.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(SIDECAR_LIBS)

$(BUILD)/bench_exporter_floor: $(OBJ)/bench/exporter_floor.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(SIDECAR_LIBS)

$(BUILD)/bench_jwt_floor: bench/jwt_verify_floor.c $(JWT_CORE) $(JWT_DIR)/ngx_http_obs_jwt.h
	@mkdir -p $(BUILD)
	$(CC) -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -I$(JWT_DIR) \
	    -o $@ bench/jwt_verify_floor.c $(JWT_CORE) -lcrypto -ljansson -lm

# bench/module_cost.sh's request-pool probe: a dynamic module of its own,
# built against the same configured nginx tree as the module
NGX_INCS := $(addprefix -I$(NGX_BUILD)/,src/core src/event src/event/modules \
              src/os/unix objs src/http src/http/modules src/http/v2)

$(BUILD)/bench_pool_probe.so: bench/pool_probe.c $(NGX_OBJS_MK)
	$(CC) -O2 -g -fPIC -shared -W -Wall -Wpointer-arith \
	    -Wno-unused-parameter -Werror $(NGX_INCS) -o $@ $<

# --- images ----------------------------------------------------------------
# make images [IMAGE_REGISTRY=registry.example.com/team/] [IMAGE_TAG=1.2.0]
# make push-images (same variables); deploy/k8s/kustomization.yaml's images:
# then names what was pushed.

DOCKER         ?= docker
IMAGE_REGISTRY ?=
IMAGE_TAG      ?= dev
GATEWAY_IMAGE  := $(IMAGE_REGISTRY)obs-gateway:$(IMAGE_TAG)
SIDECAR_IMAGE  := $(IMAGE_REGISTRY)obs-sidecar:$(IMAGE_TAG)
NGINX_IMAGE_VERSION ?= 1.27.3

images:
	$(DOCKER) build -f deploy/compose/Dockerfile.gateway \
	    --build-arg NGINX_VERSION=$(NGINX_IMAGE_VERSION) -t $(GATEWAY_IMAGE) .
	$(DOCKER) build -f deploy/compose/Dockerfile.sidecar \
	    --build-arg VERSION=$(VERSION) -t $(SIDECAR_IMAGE) .

push-images: images
	$(DOCKER) push $(GATEWAY_IMAGE)
	$(DOCKER) push $(SIDECAR_IMAGE)

# --- tests -----------------------------------------------------------------

UNIT_TESTS := $(BUILD)/test_tracecontext $(BUILD)/test_route $(BUILD)/test_sidecar \
              $(BUILD)/test_logline $(BUILD)/test_pushers $(BUILD)/test_business \
              $(BUILD)/test_active_requests $(BUILD)/test_delivery \
              $(BUILD)/test_columns_reader $(BUILD)/test_audit $(BUILD)/test_status \
              $(BUILD)/test_exporter_threads

$(BUILD)/test_tracecontext: t/unit/unit.h t/unit/test_tracecontext.c ngx_obs_module/obs_tracecontext.c ngx_obs_module/obs_tracecontext.h common/hex.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(WARN) -fsanitize=address,undefined -Ingx_obs_module -Icommon -It/unit -o $@ $(filter %.c,$^)

$(BUILD)/test_route: t/unit/unit.h t/unit/test_route.c ngx_obs_module/obs_route.c ngx_obs_module/obs_route.h common/label_rules.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(WARN) -fsanitize=address,undefined -Ingx_obs_module -Icommon -It/unit -o $@ $(filter %.c,$^)

$(BUILD)/test_sidecar: $(OBJ_ASAN)/t/unit/test_sidecar.o $(LIB_ASAN)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(SIDECAR_LIBS) -lz

$(BUILD)/test_logline: $(OBJ_ASAN)/t/unit/test_logline.o $(LIB_ASAN)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(SIDECAR_LIBS)

$(BUILD)/test_pushers: $(OBJ_ASAN)/t/unit/test_pushers.o $(LIB_ASAN)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(SIDECAR_LIBS)

# every destination on the delivery layer, against a local HTTP server
$(BUILD)/test_delivery: $(OBJ_ASAN)/t/unit/test_delivery.o $(LIB_ASAN)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(SIDECAR_LIBS)

# decode once: decodes are counted where they happen (protobuf-c's unpacking,
# reading a record in column form), whoever calls them
$(BUILD)/test_exporter_threads: $(OBJ_ASAN)/t/unit/test_exporter_threads.o $(LIB_ASAN)
	$(CC) $(CFLAGS) $(SAN) -Wl,--wrap=obs__v1__batch__unpack \
	    -Wl,--wrap=columns_next -o $@ $^ $(SIDECAR_LIBS)

# the audit trail: chain, verification, file, events (sidecar/audit/)
$(BUILD)/test_audit: $(OBJ_ASAN)/t/unit/test_audit.o $(LIB_ASAN)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(SIDECAR_LIBS)

# obs_metric in the sidecar (sidecar/aggregate/business_metrics.c)
$(BUILD)/test_business: $(OBJ_ASAN)/t/unit/test_business.o $(LIB_ASAN)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(SIDECAR_LIBS)

# the column wire format's reader (common/columns_reader.c)
$(BUILD)/test_columns_reader: $(OBJ_ASAN)/t/unit/test_columns_reader.o $(LIB_ASAN)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(SIDECAR_LIBS)

# requests in flight in the sidecar (sidecar/aggregate/active_requests.c)
$(BUILD)/test_active_requests: $(OBJ_ASAN)/t/unit/test_active_requests.o $(LIB_ASAN)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(SIDECAR_LIBS)

# the status page's snapshots and /status.json (sidecar/status/)
$(BUILD)/test_status: $(OBJ_ASAN)/t/unit/test_status.o $(LIB_ASAN)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(SIDECAR_LIBS)

# a sanitizer report ends the test (UBSan would otherwise carry on)
unit-test: $(UNIT_TESTS)
	@for t in $(UNIT_TESTS); do echo "== $$t"; \
	    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $$t || exit 1; done

# The real Test::Nginx runs the suite when PERL5LIB (or @INC) provides it,
# the compatible runner in t/lib-compat otherwise (t/run-prove.sh).
NGINX_TEST_ENV := TEST_NGINX_BINARY=$(NGINX_BIN) \
                  TEST_NGINX_LOAD_MODULES="$(MODULE) $(ECHO_MODULE)" \
                  OBS_PROTO_DIR=$(CURDIR)/proto

nginx-test: $(MODULE)
	$(NGINX_TEST_ENV) bash t/run-prove.sh t/*.t

# The same suite with every nginx process under valgrind's memcheck (about
# 4 minutes on 2 cores); a block fails on any report.  The real runner and
# the compat one read ./valgrind.suppress: its one entry is nginx 1.22's
# own (a worker's environment, never freed); the module has none.
nginx-test-valgrind: $(MODULE)
	$(NGINX_TEST_ENV) TEST_NGINX_USE_VALGRIND=1 bash t/run-prove.sh t/*.t

integration-test: $(MODULE) $(SIDECAR)
	@for t in t/integration/test_*.py; do \
	    echo "== $$t"; /usr/bin/python3 -u $$t || exit 1; \
	done

# alert-rules/alerts.yml (from alerts.yml.in) and slo.yml, with the
# parameters of alert-rules/generate.py
rules:
	/usr/bin/python3 alert-rules/generate.py

dashboards:
	/usr/bin/python3 dashboards/build.py

k8s:
	/usr/bin/python3 deploy/k8s/generate-prometheusrule.py

rules-test:
	/usr/bin/python3 alert-rules/generate.py --check
	/usr/bin/python3 deploy/k8s/generate-prometheusrule.py --check
	promtool check rules alert-rules/recording.yml alert-rules/alerts.yml alert-rules/slo.yml
	promtool test rules alert-rules/tests/*_test.yml
	/usr/bin/python3 alert-rules/tests/generate_test.py
	bash alert-rules/tests/routes_test.sh
	/usr/bin/python3 alert-rules/tests/inhibit_test.py
	/usr/bin/python3 alert-rules/tests/notify_test.py

# the manifests render with the kustomize that kubectl carries
k8s-test:
	@mkdir -p $(BUILD)
	kubectl kustomize deploy/k8s > $(BUILD)/k8s-rendered.yaml
	@echo "deploy/k8s renders: $$(grep -c '^kind:' $(BUILD)/k8s-rendered.yaml) objects"

# what Grafana needs to load and import them (no Grafana needed); the
# queries run against a live Prometheus in t/integration/test_dashboards.py
dashboards-test:
	/usr/bin/python3 dashboards/build.py --check
	/usr/bin/python3 dashboards/validate.py

# docs/sidecar.md's table of settings is the program's own (--help=markdown).
SETTINGS_DOC := docs/sidecar.md
settings-test: $(SIDECAR)
	@env -u OTEL_SERVICE_NAME -u OTEL_RESOURCE_ATTRIBUTES $(SIDECAR) \
	    --help=markdown >$(BUILD)/settings.md
	@sed -n '/<!-- settings:begin -->/,/<!-- settings:end -->/p' $(SETTINGS_DOC) \
	    | sed '1d;$$d' | diff -u - $(BUILD)/settings.md \
	    || { echo "$(SETTINGS_DOC)'s settings table differs from the" \
	         "sidecar's (- doc, + program): paste $(BUILD)/settings.md in" >&2; \
	         exit 1; }
	@echo "settings: $(SETTINGS_DOC) table matches $$(grep -c '^| ' $(BUILD)/settings.md) rows"

# Every relative link and anchor of README.md, ARCHITECTURE.md and docs/ lands.
docs-test:
	@/usr/bin/python3 t/check_doc_links.py

# ARCHITECTURE.md's file map, and the module headers' maps, name every
# source file (t/layout_check.py).
layout-check:
	/usr/bin/python3 t/layout_check.py

test: unit-test fuzz-seeds settings-test docs-test layout-check rules-test \
      dashboards-test k8s-test nginx-test nginx-test-valgrind integration-test

# Fuzzing (clang, libFuzzer): make fuzz FUZZ_SECONDS=60
FUZZ_SECONDS ?= 15
FUZZ_FLAGS   := -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE

$(BUILD)/fuzz_tracecontext: t/fuzz/fuzz_tracecontext.c ngx_obs_module/obs_tracecontext.c ngx_obs_module/obs_route.c common/label_rules.h common/hex.h
	@mkdir -p $(BUILD)
	clang $(FUZZ_FLAGS) -Ingx_obs_module -Icommon -o $@ $(filter %.c,$^)

$(BUILD)/fuzz_ingest: $(OBJ_FUZZ)/t/fuzz/fuzz_ingest.o $(LIB_FUZZ)
	clang $(FUZZ_FLAGS) -o $@ $^ $(SIDECAR_LIBS)

$(BUILD)/fuzz_jwt: t/fuzz/fuzz_jwt.c $(JWT_CORE) $(JWT_DIR)/ngx_http_obs_jwt.h
	@mkdir -p $(BUILD)
	clang $(FUZZ_FLAGS) -I$(JWT_DIR) -o $@ t/fuzz/fuzz_jwt.c $(JWT_CORE) \
	    -lcrypto -ljansson -lm

$(BUILD)/fuzz_logline: $(OBJ_FUZZ)/t/fuzz/fuzz_logline.o $(LIB_FUZZ)
	clang $(FUZZ_FLAGS) -o $@ $^ $(SIDECAR_LIBS)

$(BUILD)/fuzz_settings: $(OBJ_FUZZ)/t/fuzz/fuzz_settings.o $(LIB_FUZZ)
	clang $(FUZZ_FLAGS) -o $@ $^ $(SIDECAR_LIBS)

FUZZ_TARGETS := tracecontext ingest logline jwt settings

fuzz: $(FUZZ_TARGETS:%=$(BUILD)/fuzz_%)
	for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(BUILD)/corpus/$$t && cp t/fuzz/seeds/$$t/* $(BUILD)/corpus/$$t/; \
	done
	$(BUILD)/fuzz_tracecontext -max_total_time=$(FUZZ_SECONDS) -max_len=2048 $(BUILD)/corpus/tracecontext
	$(BUILD)/fuzz_ingest -max_total_time=$(FUZZ_SECONDS) -max_len=65536 $(BUILD)/corpus/ingest
	$(BUILD)/fuzz_logline -max_total_time=$(FUZZ_SECONDS) -max_len=16384 $(BUILD)/corpus/logline
	$(BUILD)/fuzz_jwt -max_total_time=$(FUZZ_SECONDS) -max_len=12000 $(BUILD)/corpus/jwt
	$(BUILD)/fuzz_settings -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(BUILD)/corpus/settings

# Each fuzz target runs its committed seeds once (no fuzzing: quick and the
# same every time) under ASan and UBSan; any report fails.  Part of test.
FUZZ_SEEDS_ENV := UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
                  ASAN_OPTIONS=halt_on_error=1

fuzz-seeds: $(FUZZ_TARGETS:%=$(BUILD)/fuzz_%)
	@for t in $(FUZZ_TARGETS); do \
	    $(FUZZ_SEEDS_ENV) $(BUILD)/fuzz_$$t -artifact_prefix=$(BUILD)/fuzz-$$t- \
	        t/fuzz/seeds/$$t/* >$(BUILD)/fuzz-seeds-$$t.log 2>&1 \
	    && ! grep -q 'runtime error\|Sanitizer' $(BUILD)/fuzz-seeds-$$t.log \
	    || { cat $(BUILD)/fuzz-seeds-$$t.log; \
	         echo "fuzz-seeds: fuzz_$$t fails on a committed seed" >&2; \
	         exit 1; }; \
	    echo "fuzz_$$t: $$(ls t/fuzz/seeds/$$t | wc -l) seeds, no report"; \
	done

clean:
	rm -rf $(BUILD) t/servroot
