#!/bin/sh
# FINDING (lfipc_region_remove() and TAKEOVER remove files that are not
# lfipc regions; lib/region.c looks_ours(), owner life3): region.h says
# a file that is not an lfipc region "is left alone, even with FORCE", and
# TAKEOVER replaces no such file. looks_ours() accepts any file whose
# first 8 bytes are zero (and every empty file), so `lfipc rm NAME` (no
# --force) removes another program's shared memory that happens to start
# with zeros (a freshly ftruncated segment, a ring buffer whose first word
# is 0), and a FIFO; lfipc_region_create_ex(name, ..., TAKEOVER) replaces
# them too. (`lfipc gc` is safe: the probe calls such a file
# "initialising" and skips it.) Suggested fix: refuse non-regular files
# (S_ISREG), and count a zero magic as ours only if the size is a
# page-multiple region size (>= LFIPC_REGION_MIN_SIZE) and the whole
# header page is zero (what a creator that died before writing it leaves).
#
# Run (from the worktree, normal build in build/normal):
#   sh tests/hostile/findings/rm_not_ours.sh build/normal/tools/lfipc
# Prints "BUG: ..." and exits 1 for each file removed.
tool=${1:-lfipc}
p=lfipc-review11-notours-$$
head -c 65536 /dev/zero > /dev/shm/$p-zero
printf '\0\0\0\0\0\0\0\0other program data' > /dev/shm/$p-other
truncate -s 8192 /dev/shm/$p-other
mkfifo /dev/shm/$p-fifo
st=0
for f in zero other fifo; do
	"$tool" rm "$p-$f" >/dev/null 2>&1
	if [ ! -e "/dev/shm/$p-$f" ]; then
		echo "BUG: lfipc rm removed /dev/shm/$p-$f, not an lfipc region"
		st=1
	fi
done
rm -f /dev/shm/$p-*
exit $st
