/* SPDX-License-Identifier: MIT */
/*
 * fuzz_replay.c - feed files to the fuzz targets of fuzz.c without
 * libFuzzer, with any compiler: `make check` replays the regression corpus
 * (tests/hostile/corpus: seeds and every input that once crashed).
 *
 * Usage: fuzz_replay [file or directory]...  (default: the corpus under
 * $srcdir). Each file's name is printed before it runs, so a crash names
 * its input. Exit: 0, or 1 when an argument cannot be read.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || !(buf = malloc((size_t)n + 1)) ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	fprintf(stderr, "replay %s (%ld bytes)\n", path, n);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

static int replay(const char *path, int *count)
{
	struct dirent **names;
	struct stat st;
	int n, rc = 0;

	if (stat(path, &st) != 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		++*count;
		return replay_file(path);
	}
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		char sub[4096];

		if (names[i]->d_name[0] != '.') {
			snprintf(sub, sizeof(sub), "%s/%s", path,
				 names[i]->d_name);
			rc |= replay(sub, count);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	char def[4096];
	int count = 0, rc = 0;

	if (argc < 2) {
		const char *src = getenv("srcdir");

		snprintf(def, sizeof(def), "%s/tests/hostile/corpus",
			 src ? src : ".");
		rc = replay(def, &count);
	}
	for (int i = 1; i < argc; i++)
		rc |= replay(argv[i], &count);
	fprintf(stderr, "replayed %d inputs\n", count);
	return rc || count == 0 ? 1 : 0;
}
