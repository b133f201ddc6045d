# mproc - thin wrapper over meson/ninja and the suite driver. See README.md.
#   make bench [PROFILE=smoke|quick|full] [ONLY=baseline,spawn] [OUT=dir] [NO_DEV_SHM=1|tiny]
#   make test | make test-all (with the slow soak) | make valgrind | make tsan
#   make test-stress: unit, fault, leak suites beside a CPU hog of the machine's size
#     (stress-ng, else busy loops; always killed at the end), so races show up here first
#   make plots [RUN=dir] | make compare A=dir B=dir [C=dir] [OUT=dir] [FORCE=1] | make clean
#   make verify [PROFILE=quick] [ONLY=...] [OUT=dir]: two runs back to back, do they agree?
BUILD    ?= build
PROFILE  ?= quick
ONLY     ?=
OUT      ?=
# NO_DEV_SHM=1: the whole suite in a private mount namespace whose /dev/shm is an empty
# read-only tmpfs (AWS Lambda); NO_DEV_SHM=tiny: a 64 MiB one (Docker). Root or userns needed.
NO_DEV_SHM ?=
RUN      ?= results/latest
FUZZ_SECONDS ?= 60
MESONFLAGS ?=
PYTHON   ?= $(shell if [ -x /usr/bin/python3 ]; then echo /usr/bin/python3; else command -v python3; fi)

# make bench / make verify check their variables (empty means the default) before anything is installed or built: a typo
# is one line and exit 2 (GNU make's $(error)), not a finished build followed by the driver's
# refusal. The harness names come from the sources (bench/bench_<name>.c, less the shim's test
# and the helpers) plus the CPython comparators; the driver checks again against what is built.
BENCH_PROFILES := smoke quick full
BENCH_HARNESSES := $(filter-out shimtest util,$(patsubst bench/bench_%.c,%,$(wildcard bench/bench_*.c))) python
NO_DEV_SHM_VALUES := 0 no 1 yes none tiny
comma := ,
ifneq ($(filter bench verify,$(MAKECMDGOALS)),)
ifneq ($(filter-out $(BENCH_PROFILES),$(PROFILE))$(filter-out 0 1,$(words $(PROFILE))),)
$(error make $(filter bench verify,$(MAKECMDGOALS)): PROFILE='$(PROFILE)' is not a profile (choose from: $(BENCH_PROFILES)))
endif
ifneq ($(filter-out $(BENCH_HARNESSES),$(subst $(comma), ,$(ONLY))),)
$(error make $(filter bench verify,$(MAKECMDGOALS)): ONLY='$(ONLY)': unknown harness '$(firstword $(filter-out $(BENCH_HARNESSES),$(subst $(comma), ,$(ONLY))))' (choose from: $(BENCH_HARNESSES), comma-separated))
endif
ifneq ($(filter-out $(NO_DEV_SHM_VALUES),$(NO_DEV_SHM))$(filter-out 0 1,$(words $(NO_DEV_SHM))),)
$(error make $(filter bench verify,$(MAKECMDGOALS)): NO_DEV_SHM='$(NO_DEV_SHM)' is not a mode (choose from: 1 or none: no /dev/shm; tiny: 64 MiB; 0: off))
endif
endif

.PHONY: all deps deps-bench build test test-all test-stress valgrind tsan bench verify plots compare \
	clean fuzz

all: build

# Install what is missing (root + apt-get), or print the command to run and exit 2.
deps:
	@sh tools/deps.sh test
deps-bench:
	@sh tools/deps.sh bench

$(BUILD)/build.ninja:
	meson setup $(MESONFLAGS) $(BUILD)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

test: deps
	@$(MAKE) --no-print-directory build
	meson test -C $(BUILD) --no-suite slow --print-errorlogs

test-all: deps
	@$(MAKE) --no-print-directory build
	meson test -C $(BUILD) --print-errorlogs

# The unit, fault and leak suites with a CPU hog the size of the machine's usable CPUs beside
# them (tests/stress.sh: stress-ng where installed, else a busy loop per CPU; the hog is killed
# at the end, also on failure or Ctrl-C; the exit status is the tests'). A test that assumes one
# process runs before another fails here before it fails for a user on a busy machine.
test-stress: deps
	@$(MAKE) --no-print-directory build
	sh tests/stress.sh $(BUILD)

# The unit suite under valgrind memcheck (children traced, leaks as errors): slow, minutes.
valgrind: deps
	@command -v valgrind >/dev/null || \
		{ echo "make valgrind: valgrind not found (apt-get install valgrind)" >&2; exit 2; }
	@test -f build-valgrind/build.ninja || \
		meson setup -Dbuildtype=debug -Dbenchmarks=disabled build-valgrind
	ninja -C build-valgrind
	meson test -C build-valgrind --setup valgrind --suite unit --no-suite python \
		--num-processes 2 --print-errorlogs

# The multi-threaded cases under ThreadSanitizer (the `tsan` suite, tests/meson.build says
# which cases and why the others are left out).
tsan: deps
	@test -f build-tsan/build.ninja || meson setup -Db_sanitize=thread -Dbenchmarks=disabled build-tsan
	ninja -C build-tsan
	meson test -C build-tsan --suite tsan --print-errorlogs

bench: deps-bench
	@$(MAKE) --no-print-directory build
	$(PYTHON) bench/mproc-bench --build $(BUILD) --profile '$(PROFILE)' --only '$(ONLY)' --out '$(OUT)' \
		$(if $(filter-out 0 no,$(NO_DEV_SHM)),--no-dev-shm '$(NO_DEV_SHM)')

# Two runs back to back; per answer and headline row: agree, disagree or undecided (exit 1 on
# a disagreement). OUT=dir puts them in dir/run1 and dir/run2.
verify: deps-bench
	@$(MAKE) --no-print-directory build
	$(PYTHON) bench/mproc-bench --build $(BUILD) --verify --profile '$(PROFILE)' --only '$(ONLY)' \
		--out '$(OUT)'

plots:
	$(PYTHON) plots/plot.py '$(RUN)'
	$(PYTHON) plots/report.py '$(RUN)'

# Two or more runs side by side (plots/compare.py --help); FORCE=1 writes into a non-empty OUT.
compare:
	@if [ -z '$(A)' ] || [ -z '$(B)' ]; then \
		echo "make compare: need A=run_dir B=run_dir [C=run_dir] [OUT=dir] [FORCE=1]" >&2; exit 2; fi
	$(PYTHON) plots/compare.py '$(A)' '$(B)' $(if $(C),'$(C)') $(if $(OUT),--out '$(OUT)') \
		$(if $(FORCE),--force)

# Fuzz every target for FUZZ_SECONDS each (libFuzzer with clang, else a built-in mutator).
fuzz: deps
	sh tools/fuzz.sh $(FUZZ_SECONDS)

# Leftovers of dead runs first (it needs the built bench_queue for SysV queues), then builds.
clean:
	@$(PYTHON) bench/mproc-bench --build $(BUILD) --clean-stale 2>/dev/null || true
	rm -rf $(BUILD) build-asan build-valgrind build-tsan build-fuzz-libfuzzer build-fuzz-mutate tests/fuzz/work
