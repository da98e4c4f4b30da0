#!/bin/sh
# zfs-layout.sh: create the ZFS datasets of a Lintel host.
#
#   zfs-layout.sh [-n] POOL central|edge
#
# Everything Lintel stores lives under one parent dataset, POOL/lintel, so
# that one recursive snapshot (zfs snapshot -r, atomic across all children)
# captures the JetStream store and the PostgreSQL data and WAL at the same
# instant: lintel-backup.sh relies on it.
#
#   POOL/lintel             /var/db/lintel           parent, holds nothing itself
#   POOL/lintel/jetstream   /var/db/lintel/<role>    the app's store_dir
#   POOL/lintel/postgres    /var/db/postgres/data15  central only: PGDATA, WAL included
#
# The WAL stays inside PGDATA (one dataset): initdb wants an empty PGDATA,
# and a snapshot of data and WAL together is what makes it consistent.
#
# Properties, and why:
#   compression=lz4    everywhere: JSON events and JetStream's message blocks
#                      compress well, and lz4 costs less CPU than it saves in
#                      I/O. (zstd compresses better at more CPU; fine on central.)
#   atime=off          nothing reads access times; each read would be a write.
#   xattr=sa           extended attributes in the dnode, one I/O instead of two.
#   recordsize=128K    JetStream: message blocks are appended and read in long
#                      runs, so the default large record suits them.
#   recordsize=16K     PostgreSQL data: pages are 8K and read at random; 16K
#                      keeps read amplification low while lz4 still finds
#                      something to compress (8K records rarely compress).
#   logbias=latency    PostgreSQL (the default, kept): commits wait for WAL
#                      fsyncs, which a separate log device (SLOG) speeds up.
#   redundant_metadata=most  PostgreSQL: fewer metadata writes; the pool's
#                      own redundancy still protects them.
#
# -n prints the commands instead of running them. The datasets' mount
# points must be empty or absent; existing datasets are left alone.
set -eu

dry=0
if [ "${1:-}" = -n ]; then
	dry=1
	shift
fi
if [ $# -ne 2 ]; then
	sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
fi
pool=$1
role=$2
case $role in
central | edge) ;;
*)
	printf 'zfs-layout.sh: role %s: want central or edge\n' "$role" >&2
	exit 2
	;;
esac

run() {
	if [ "$dry" = 1 ]; then
		printf '+ %s\n' "$*"
	else
		"$@"
	fi
}

# create DATASET OPTION...: create DATASET unless it exists.
create() {
	ds=$1
	shift
	if [ "$dry" = 0 ] && zfs list -H -o name "$ds" >/dev/null 2>&1; then
		printf '%s exists, kept\n' "$ds"
		return 0
	fi
	run zfs create "$@" "$ds"
}

create "$pool/lintel" -o mountpoint=/var/db/lintel -o compression=lz4 -o atime=off -o xattr=sa
create "$pool/lintel/jetstream" -o mountpoint="/var/db/lintel/$role" -o recordsize=128K
if [ "$role" = central ]; then
	create "$pool/lintel/postgres" -o mountpoint=/var/db/postgres/data15 \
		-o recordsize=16K -o redundant_metadata=most
	run chown -R postgres:postgres /var/db/postgres/data15
	run chmod 0700 /var/db/postgres/data15
fi
run chown lintel:lintel "/var/db/lintel/$role"
run chmod 0700 "/var/db/lintel/$role"
