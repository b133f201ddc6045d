/*
 * manager_chan.c - the memfd of a local client's shared-memory channel: created and sealed by
 * the server, checked and mapped by the client. The protocol over it is described with struct
 * mproc__mgr_chan_hdr (manager_internal.h); the server's side is in manager_server.c, the
 * client's in manager_client.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "manager_internal.h"

_Static_assert(sizeof(struct mproc__mgr_chan_hdr) <= MPROC__MGR_CHAN_HDR,
	       "the channel's state fits its header page");

int mproc__mgr_chan_create(void **map, int *memfd, int *efd)
{
	int mfd = -1, e = -1, r;
	void *p;

	mfd = memfd_create("mproc-manager-chan", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return -errno;
	/* No fallocate: a memfd lives on the kernel's internal shmem mount, which has no size
	 * limit to run into (a /dev/shm does: shm.c allocates there), and a mailbox touches only
	 * the pages its frames reach (a call costs three: the header and one of each box). */
	if (ftruncate(mfd, MPROC__MGR_CHAN_SIZE) < 0)
		goto out_errno;
	/* A client that shrank the file would make the server fault on its next access. */
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto out_errno;
	e = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e < 0)
		goto out_errno;
	p = mmap(NULL, MPROC__MGR_CHAN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (p == MAP_FAILED)
		goto out_errno;
	*map = p;
	*memfd = mfd;
	*efd = e;
	return 0;
out_errno:
	r = -errno;
	mproc__close(e);
	mproc__close(mfd);
	return r;
}

int mproc__mgr_chan_attach(int memfd, void **map)
{
	struct stat st;
	void *p;

	if (fstat(memfd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size != (off_t)MPROC__MGR_CHAN_SIZE)
		return -EBADMSG;
	p = mmap(NULL, MPROC__MGR_CHAN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*map = p;
	return 0;
}

void mproc__mgr_chan_unmap(void *map)
{
	if (map)
		munmap(map, MPROC__MGR_CHAN_SIZE);
}
