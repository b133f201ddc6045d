// gbench.cc - the C shim over Google Benchmark (gbench.h). The only C++ in mproc.
// Works with Google Benchmark 1.7.1 (Debian 12) and 1.8.x (Ubuntu 24.04): it uses only the
// API common to both, and flags that both parse (--benchmark_min_time as plain seconds).
#include "gbench.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <strings.h>
#include <string>
#include <vector>

namespace {

benchmark::State *S(gbench_state *st) { return reinterpret_cast<benchmark::State *>(st); }
const benchmark::State *S(const gbench_state *st)
{
	return reinterpret_cast<const benchmark::State *>(st);
}
benchmark::internal::Benchmark *B(gbench *b)
{
	return reinterpret_cast<benchmark::internal::Benchmark *>(b);
}
gbench *G(benchmark::internal::Benchmark *b) { return reinterpret_cast<gbench *>(b); }

enum gbench_profile g_profile = GBENCH_QUICK;
bool g_interleave = false;
std::set<std::string> g_context_keys;

struct profile_defaults {
	const char *name;
	const char *min_time;       // seconds, plain number (both GB versions accept it)
	const char *repetitions;
};
// Repetitions are what a 95 % interval of a median is made of (plots/mproc_results/stats.py: order
// statistics need 6 repetitions, 9 drop the extremes): quick has 6 short ones rather than 3
// long ones for about the same time, full 9 (Google Benchmark's compare.py U test needs 9).
// smoke's single pass gives no interval and says so.
const profile_defaults k_profiles[] = {
	{ "smoke", "0.001", "1" },
	{ "quick", "0.025", "6" },
	{ "full", "0.2", "9" },
};

bool starts_with(const char *s, const char *prefix)
{
	return std::strncmp(s, prefix, std::strlen(prefix)) == 0;
}

// The value of a boolean --benchmark_* flag as Google Benchmark reads it (IsTruthyFlagValue):
// the bare flag is true, "=false", "=no", "=off", "=0", "=f", "=n" (any case) false, anything
// else true.
bool flag_value(const char *arg, const char *flag)
{
	const char *v = arg + std::strlen(flag);
	static const char *const no[] = { "false", "no", "off", "0", "f", "n" };

	if (*v == '\0')
		return true;
	v++;  // '='
	for (const char *n : no)
		if (strcasecmp(v, n) == 0)
			return false;
	return true;
}

}  // namespace

extern "C" {

gbench *gbench_register(const char *name, gbench_fn *fn, void *arg)
{
	auto *b = benchmark::RegisterBenchmark(name, [fn, arg](benchmark::State &st) {
		fn(reinterpret_cast<gbench_state *>(&st), arg);
	});
	return G(b);
}

gbench *gbench_args(gbench *b, const int64_t *args, size_t n)
{
	std::vector<int64_t> v(args, args + n);
	B(b)->Args(v);
	return b;
}

gbench *gbench_arg_names(gbench *b, const char *const *names, size_t n)
{
	std::vector<std::string> v;
	for (size_t i = 0; i < n; i++)
		v.emplace_back(names[i]);
	B(b)->ArgNames(v);
	return b;
}

gbench *gbench_use_manual_time(gbench *b)
{
	B(b)->UseManualTime();
	return b;
}

gbench *gbench_use_real_time(gbench *b)
{
	B(b)->UseRealTime();
	return b;
}

gbench *gbench_time_unit(gbench *b, enum gbench_unit unit)
{
	static const benchmark::TimeUnit units[] = { benchmark::kNanosecond,
		benchmark::kMicrosecond, benchmark::kMillisecond, benchmark::kSecond };
	B(b)->Unit(units[unit]);
	return b;
}

gbench *gbench_iterations(gbench *b, int64_t n)
{
	B(b)->Iterations(n);
	return b;
}

gbench *gbench_min_time(gbench *b, double seconds)
{
	B(b)->MinTime(seconds);
	return b;
}

bool gbench_keep_running(gbench_state *st) { return S(st)->KeepRunning(); }

bool gbench_keep_running_batch(gbench_state *st, int64_t n)
{
	return S(st)->KeepRunningBatch(n);
}

int64_t gbench_arg(const gbench_state *st, size_t i)
{
	return S(st)->range(i);
}

int64_t gbench_iterations_done(const gbench_state *st)
{
	return static_cast<int64_t>(S(st)->iterations());
}

void gbench_set_iteration_time(gbench_state *st, double seconds)
{
	S(st)->SetIterationTime(seconds);
}

void gbench_pause_timing(gbench_state *st) { S(st)->PauseTiming(); }
void gbench_resume_timing(gbench_state *st) { S(st)->ResumeTiming(); }

void gbench_counter(gbench_state *st, const char *name, double value, unsigned flags)
{
	int f = benchmark::Counter::kDefaults;
	if (flags & GBENCH_RATE)
		f |= benchmark::Counter::kIsRate;
	if (flags & GBENCH_AVG_ITERATIONS)
		f |= benchmark::Counter::kAvgIterations;
	if (flags & GBENCH_INVERT)
		f |= benchmark::Counter::kInvert;
	if (flags & GBENCH_ITERATION_INVARIANT)
		f |= benchmark::Counter::kIsIterationInvariant;
	S(st)->counters[name] =
		benchmark::Counter(value, static_cast<benchmark::Counter::Flags>(f));
}

void gbench_skip_with_error(gbench_state *st, const char *msg)
{
	S(st)->SkipWithError(msg);
}

bool gbench_error_occurred(const gbench_state *st) { return S(st)->error_occurred(); }

void gbench_set_label(gbench_state *st, const char *label) { S(st)->SetLabel(label); }

enum gbench_profile gbench_current_profile(void) { return g_profile; }

void gbench_interleave_repetitions(void) { g_interleave = true; }

const char *gbench_profile_name(enum gbench_profile p)
{
	return k_profiles[p].name;
}

void gbench_add_context(const char *key, const char *value)
{
	if (!g_context_keys.insert(key).second)
		return;  // GB treats a duplicate key as an error; first one wins
	benchmark::AddCustomContext(key, value);
}

int gbench_main(int argc, char **argv, void (*register_all)(void))
{
	static const char k_interleave_flag[] = "--benchmark_enable_random_interleaving";
	const char *prof = std::getenv("MPROC_PROFILE");
	bool have_min_time = false, have_reps = false, interleave = g_interleave;
	std::vector<char *> args;

	args.push_back(argv[0]);
	for (int i = 1; i < argc; i++) {
		if (starts_with(argv[i], "--profile=")) {
			prof = argv[i] + std::strlen("--profile=");
			continue;
		}
		if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
			std::printf("usage: %s [--profile=smoke|quick|full] [--benchmark_* flags]\n"
				    "Google Benchmark harness of mproc; every --benchmark_* flag of Google "
				    "Benchmark is accepted\n(--benchmark_list_tests, --benchmark_filter=RE, "
				    "--benchmark_out=FILE, ...).\n", argv[0]);
			return 0;
		}
		if (starts_with(argv[i], "--benchmark_min_time"))
			have_min_time = true;
		if (starts_with(argv[i], "--benchmark_repetitions"))
			have_reps = true;
		if (std::strcmp(argv[i], k_interleave_flag) == 0 ||
		    starts_with(argv[i], (std::string(k_interleave_flag) + "=").c_str()))
			interleave = flag_value(argv[i], k_interleave_flag);  // the last one wins
		args.push_back(argv[i]);
	}
	if (prof && *prof) {
		bool ok = false;
		for (int p = 0; p < 3; p++) {
			if (std::strcmp(prof, k_profiles[p].name) == 0) {
				g_profile = static_cast<enum gbench_profile>(p);
				ok = true;
			}
		}
		if (!ok) {
			std::fprintf(stderr, "%s: unknown profile '%s' (valid: smoke, quick, full)\n",
				     argv[0], prof);
			return 2;
		}
	}

	// Default flags for the profile go first so that explicit flags (parsed later) win.
	std::string min_time = std::string("--benchmark_min_time=") + k_profiles[g_profile].min_time;
	std::string reps = std::string("--benchmark_repetitions=") + k_profiles[g_profile].repetitions;
	std::string inter = std::string(k_interleave_flag) + "=true";
	std::vector<char *> full;
	full.push_back(args[0]);
	if (!have_min_time)
		full.push_back(&min_time[0]);
	if (!have_reps)
		full.push_back(&reps[0]);
	if (g_interleave)
		full.push_back(&inter[0]);
	for (size_t i = 1; i < args.size(); i++)
		full.push_back(args[i]);
	full.push_back(nullptr);

	int n = static_cast<int>(full.size()) - 1;
	benchmark::Initialize(&n, full.data());
	if (n > 1) {
		std::fprintf(stderr, "%s: unknown argument '%s' (see --help)\n", argv[0], full[1]);
		return 2;
	}
	gbench_add_context("mproc_profile", k_profiles[g_profile].name);
	gbench_add_context("mproc_random_interleaving", interleave ? "true" : "false");
	// Every harness of this version times one operation per Google Benchmark iteration
	// (gbench.h, "One time per operation"); files without the key may time batches.
	gbench_add_context("mproc_real_time", "per_operation");
	if (register_all)
		register_all();
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}

}  // extern "C"
