/*
 * mutate_main.c - a small mutation fuzzer for machines without libFuzzer (gcc only): loads the
 * seed corpus, then until the time is up picks a seed, applies a few random mutations (bit
 * flips, random bytes, interesting integers at random offsets - lengths like 0x7fffffff and
 * 2^63 -, insertions, deletions, splices with another seed) and calls LLVMFuzzerTestOneInput.
 * Built with ASan+UBSan by `make fuzz`; a crash, an abort or a sanitizer report (run with
 * ASAN_OPTIONS=abort_on_error=1) saves the input as crash-<n> in the working directory, and an
 * input that runs longer than 10 s is saved as timeout-<n>. Prints the execution count.
 *
 *	fuzz-<target> [-max_total_time=SECONDS] [-seed=N] CORPUS_DIR...
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (1u << 20)

struct seed {
	uint8_t *data;
	size_t size;
};

static struct seed *seeds;
static size_t nseeds;
static uint8_t *cur;            /* the input being run, for the crash handler */
static volatile size_t cur_size;
static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: fast and good enough for picking mutations. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static size_t below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static void save_input(const char *prefix)
{
	char name[64];
	int fd, i;

	/* async-signal-safe: no stdio */
	for (i = 0; i < 1000; i++) {
		int n = i, len = 0;
		char num[8];

		memcpy(name, prefix, strlen(prefix) + 1);
		do {
			num[len++] = (char)('0' + n % 10);
			n /= 10;
		} while (n);
		{
			size_t off = strlen(name);
			while (len)
				name[off++] = num[--len];
			name[off] = '\0';
		}
		fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
	}
	if (fd < 0)
		return;
	if (write(fd, cur, cur_size) < 0) {
		/* nothing more to do in a dying process */
	}
	close(fd);
	if (write(2, "mutate: input saved as ", 23) < 0 || write(2, name, strlen(name)) < 0 ||
	    write(2, "\n", 1) < 0) {
	}
}

static void on_crash(int sig)
{
	save_input(sig == SIGALRM ? "timeout-" : "crash-");
	signal(sig == SIGALRM ? SIGABRT : sig, SIG_DFL);
	raise(sig == SIGALRM ? SIGABRT : sig);
}

static void add_seed(const uint8_t *d, size_t n)
{
	seeds = realloc(seeds, (nseeds + 1) * sizeof(*seeds));
	if (!seeds)
		abort();
	seeds[nseeds].data = malloc(n ? n : 1);
	if (!seeds[nseeds].data)
		abort();
	memcpy(seeds[nseeds].data, d, n);
	seeds[nseeds].size = n;
	nseeds++;
}

static void load_file(const char *path)
{
	FILE *f = fopen(path, "rbe");
	static uint8_t buf[MAX_INPUT];
	size_t n;

	if (!f)
		return;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	add_seed(buf, n);
}

static void load(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	char full[4096];

	if (stat(path, &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		load_file(path);
		return;
	}
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(full, sizeof(full), "%s/%s", path, e->d_name);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
			load_file(full);
	}
	closedir(d);
}

static size_t mutate(uint8_t *d, size_t n)
{
	static const uint64_t interesting[] = {
		0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0x80000000,
		0xffffffff, UINT64_C(1) << 32, UINT64_C(1) << 63, UINT64_MAX, 64u << 20, (64u << 20) + 1,
		256, 257, 4096, 65536,
	};
	int k, rounds = 1 + (int)below(6);

	for (k = 0; k < rounds; k++) {
		switch (below(8)) {
		case 0:         /* flip a bit */
			if (n)
				d[below(n)] ^= (uint8_t)(1u << below(8));
			break;
		case 1:         /* a random byte */
			if (n)
				d[below(n)] = (uint8_t)rnd();
			break;
		case 2:         /* an interesting integer, 1/2/4/8 bytes, either endianness */
		case 3: {
			size_t w = (size_t)1 << below(4), off;
			uint64_t v = interesting[below(sizeof(interesting) / sizeof(interesting[0]))];
			bool big = below(2);

			if (n < w)
				break;
			off = below(n - w + 1);
			for (size_t i = 0; i < w; i++)
				d[off + i] = (uint8_t)(v >> ((big ? w - 1 - i : i) * 8));
			break;
		}
		case 4:         /* delete a range */
			if (n > 1) {
				size_t off = below(n), len = 1 + below(n - off);
				memmove(d + off, d + off + len, n - off - len);
				n -= len;
			}
			break;
		case 5:         /* insert random bytes */
			if (n < MAX_INPUT - 64) {
				size_t off = below(n + 1), len = 1 + below(64);
				memmove(d + off + len, d + off, n - off);
				for (size_t i = 0; i < len; i++)
					d[off + i] = (uint8_t)rnd();
				n += len;
			}
			break;
		case 6: {       /* splice the tail of another seed */
			struct seed *s = &seeds[below(nseeds)];
			size_t off = below(n + 1), from = below(s->size + 1);
			size_t len = s->size - from;

			if (off + len > MAX_INPUT)
				len = MAX_INPUT - off;
			memcpy(d + off, s->data + from, len);
			n = off + len;
			break;
		}
		default:        /* truncate */
			if (n)
				n = below(n);
			break;
		}
	}
	return n;
}

int main(int argc, char **argv)
{
	double seconds = 60;
	uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	unsigned long long execs = 0;
	struct timespec t0, t;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "-max_total_time=", 16))
			seconds = atof(argv[i] + 16);
		else if (!strncmp(argv[i], "-seed=", 6))
			seed = strtoull(argv[i] + 6, NULL, 0);
		else if (argv[i][0] == '-')
			continue;       /* other libFuzzer flags: ignored */
		else
			load(argv[i]);
	}
	if (!nseeds)
		add_seed((const uint8_t *)"", 0);
	rng_state = seed ? seed : 1;
	cur = malloc(MAX_INPUT);
	if (!cur)
		return 1;
	signal(SIGSEGV, on_crash);
	signal(SIGBUS, on_crash);
	signal(SIGABRT, on_crash);
	signal(SIGFPE, on_crash);
	signal(SIGILL, on_crash);
	signal(SIGALRM, on_crash);
	fprintf(stderr, "mutate: %zu seed(s), %.0f s, seed %llu\n", nseeds, seconds,
		(unsigned long long)seed);
	/* Seeds first, unchanged. */
	for (size_t s = 0; s < nseeds; s++) {
		memcpy(cur, seeds[s].data, seeds[s].size);
		cur_size = seeds[s].size;
		LLVMFuzzerTestOneInput(cur, cur_size);
		execs++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct seed *s = &seeds[below(nseeds)];

		if ((execs & 255) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) * 1e-9 >=
			    seconds)
				break;
		}
		memcpy(cur, s->data, s->size);
		cur_size = mutate(cur, s->size);
		alarm(10);
		LLVMFuzzerTestOneInput(cur, cur_size);
		alarm(0);
		execs++;
	}
	fprintf(stderr, "mutate: done: %llu executions in %.0f s, 0 crashes\n", execs, seconds);
	for (size_t s = 0; s < nseeds; s++)
		free(seeds[s].data);
	free(seeds);
	free(cur);
	return 0;
}
