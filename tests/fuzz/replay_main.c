/*
 * replay_main.c - main() for fuzz targets built without libFuzzer: feed every regular file of
 * each directory (or file) named on the command line, or of FUZZ_CORPUS_DIR when none is named,
 * to LLVMFuzzerTestOneInput once. Prints TAP (one line per input) so meson reads it; a crash or
 * abort in the target fails the test. Shared by every fuzz target in tests/fuzz/.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count;

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rbe");
	uint8_t *buf = NULL;
	size_t size = 0, cap = 0, n;

	if (!f) {
		printf("not ok %d - %s: cannot open\n", ++count, path);
		return 1;
	}
	do {
		if (size == cap) {
			uint8_t *nb;

			cap = cap ? cap * 2 : 4096;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return 1;
			}
			buf = nb;
		}
		n = fread(buf + size, 1, cap - size, f);
		size += n;
	} while (n > 0);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, size);
	free(buf);
	printf("ok %d - %s (%zu bytes)\n", ++count, path, size);
	fflush(stdout);
	return 0;
}

static int replay(const char *path)
{
	struct dirent **names;
	struct stat st;
	int n, bad = 0;

	if (stat(path, &st) < 0) {
		printf("not ok %d - %s: missing\n", ++count, path);
		return 1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path);
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0)
		return 1;
	for (int i = 0; i < n; i++) {
		char full[4096];

		if (names[i]->d_name[0] != '.' &&
		    snprintf(full, sizeof(full), "%s/%s", path, names[i]->d_name) < (int)sizeof(full))
			bad += replay_file(full);
		free(names[i]);
	}
	free(names);
	return bad;
}

int main(int argc, char **argv)
{
	int bad = 0;

	printf("TAP version 13\n");
	if (argc < 2) {
#ifdef FUZZ_CORPUS_DIR
		bad += replay(FUZZ_CORPUS_DIR);
#else
		fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
		return 2;
#endif
	}
	for (int i = 1; i < argc; i++)
		bad += replay(argv[i]);
	printf("1..%d\n", count);
	return bad ? 1 : 0;
}
