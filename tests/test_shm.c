/* test_shm.c - shared memory regions and Value/Array (reliability.md T24, T25). */
#include "mproc.h"
#include "tap.h"

static void t_anon_basic(void *arg)
{
	struct mproc_shm *s;

	ASSERT_OK(mproc_shm_new(&s, 4096, NULL));
	CHECK_EQ(mproc_shm_size(s), 4096);
	mproc_shm_free(s);
}

int main(int argc, char **argv)
{
	tap_add("shm/anon/basic", t_anon_basic, NULL);
	return tap_run(argc, argv);
}
