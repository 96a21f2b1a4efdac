/*
 * sandbox_ipc.c - a private IPC namespace per child.
 *
 * SysV shared memory, semaphores and message queues, and POSIX message
 * queues, live in the IPC namespace, not in a process: a job could leave
 * 3 x 512 MiB of shared memory behind it, outside its memory limit, or read
 * what another job left there. A child that enters a namespace of its own
 * takes all of it along when the last process of the job exits. (POSIX
 * shared memory and semaphores are files in /dev/shm: a mount namespace's
 * concern, not this one's.)
 */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "sandbox.h"

int sandbox_ipc_enter(rb_err *err)
{
    if (unshare(CLONE_NEWIPC) != 0)
        return rb_err_set(err, "unshare(CLONE_NEWIPC): %s", strerror(errno));
    return 0;
}
