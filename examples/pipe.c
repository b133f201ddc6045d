/*
 * pipe.c - a list through a Pipe to the parent: Python's
 *
 *	def f(conn):
 *	    conn.send([42, None, 'hello'])
 *	    conn.close()
 *
 *	parent_conn, child_conn = Pipe()
 *	p = Process(target=f, args=(child_conn,))
 *	p.start()
 *	print(parent_conn.recv())   # prints "[42, None, 'hello']"
 *	p.join()
 *
 * A message is bytes: the list is a struct without pointers. Exit 0 if it arrived intact.
 * Build: cc pipe.c $(pkg-config --cflags --libs mproc)
 */
#include <stdio.h>
#include <string.h>

#include <mproc.h>

struct item {
	int number;             /* 42 */
	int has_second;         /* None: 0 */
	char text[16];          /* 'hello' */
};

static int f(void *conn)        /* runs in the child; its return is the exit code */
{
	struct item it = { 42, 0, "hello" };

	return mproc_conn_send(conn, &it, sizeof(it)) < 0;
}

int main(void)
{
	struct mproc_conn *parent_conn, *child_conn;
	struct mproc_process *p;
	struct item it = { 0 };
	int code = -1;

	if (mproc_conn_pair(&parent_conn, &child_conn, NULL) < 0)
		return 1;
	if (mproc_process_new(&p, f, child_conn, NULL) < 0)     /* NULL: fork */
		return 1;
	if (mproc_process_start(p) == 0) {
		mproc_conn_recv(parent_conn, &it, sizeof(it), 10.0);
		mproc_process_join(p, MPROC_FOREVER);
		mproc_process_exitcode(p, &code);
	}
	printf("[%d, %s, '%s']\n", it.number, it.has_second ? "?" : "None", it.text);
	mproc_process_free(p);
	mproc_conn_free(parent_conn);
	mproc_conn_free(child_conn);
	return !(code == 0 && it.number == 42 && strcmp(it.text, "hello") == 0);
}
