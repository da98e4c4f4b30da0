#!/bin/sh
# lintel-restore.sh: restore what lintel-backup.sh saved.
#
#   lintel-restore.sh [-n] files [-f] [-S SERVICE]... [-s STORE] [-p DB] [-e DIR] BACKUPDIR
#
#       Restore a backup directory (OUTDIR/lintel-<time>) written by
#       lintel-backup.sh files. SHA256SUMS is checked first; nothing is
#       touched if a file is damaged. The SERVICEs (-S, repeatable) are
#       stopped for the restore and started after it.
#         -s STORE  unpack jetstream.tar into STORE. STORE must be empty or
#                   absent; with -f a non-empty STORE is moved aside to
#                   STORE.pre-restore-<time> first.
#         -p DB     create database DB and pg_restore postgres.dump into it,
#                   in one transaction. DB must not exist; with -f it is
#                   dropped first. A dump of a TimescaleDB database is
#                   restored between timescaledb_pre_restore() and
#                   timescaledb_post_restore(), as TimescaleDB requires.
#         -e DIR    unpack config.tar into DIR, on the same terms as STORE.
#
#   lintel-restore.sh [-n] zfs [-S SERVICE]... [-r [USER@]HOST:DATASET] DATASET@SNAPSHOT
#
#       Roll DATASET and every dataset below it back to SNAPSHOT (taken by
#       lintel-backup.sh zfs) with the SERVICEs stopped: stop PostgreSQL and
#       the Lintel app with -S. Snapshots newer than SNAPSHOT are destroyed.
#       With -r the snapshot is fetched from the offsite copy instead:
#       ssh HOST zfs send -R DATASET@SNAPSHOT | zfs receive -F DATASET,
#       for a host whose pool was lost.
#
#   -n  dry run: print every command that changes something, in order,
#       instead of running it.
#
# PostgreSQL connection settings come from the environment (PGHOST,
# PGPORT, PGUSER...); the user must be allowed to create databases.
set -eu

# shellcheck source-path=SCRIPTDIR source=lintel-backup-lib.sh
. "$(dirname -- "$0")/lintel-backup-lib.sh"

# empty_dir DIR: whether DIR is absent or empty.
empty_dir() {
	[ ! -e "$1" ] && return 0
	[ -d "$1" ] || die "$1: not a directory"
	[ -z "$(ls -A "$1")" ]
}

# unpack TAR DIR FORCE: unpack TAR into DIR, moving a non-empty DIR aside
# with FORCE.
unpack() {
	if ! empty_dir "$2"; then
		[ "$3" = 1 ] || die "$2 is not empty: restore into an empty directory, or give -f to move it aside"
		run mv "$2" "$2.pre-restore-$stamp"
	fi
	run mkdir -p "$2"
	run tar -C "$2" -xpf "$1"
}

restore_files() {
	force=0
	services=
	store=
	db=
	etc=
	OPTIND=1
	while getopts fS:s:p:e: opt; do
		case $opt in
		f) force=1 ;;
		S) services="$services $OPTARG" ;;
		s) store=$OPTARG ;;
		p) db=$OPTARG ;;
		e) etc=$OPTARG ;;
		*) usage ;;
		esac
	done
	shift $((OPTIND - 1))
	[ $# -eq 1 ] || usage
	from=$1
	[ -n "$store$db$etc" ] || die "nothing to restore: give -s STORE, -p DB or -e DIR"
	[ -f "$from/SHA256SUMS" ] || die "$from: no SHA256SUMS: not a backup written by lintel-backup.sh files"
	for want in "${store:+jetstream.tar}" "${db:+postgres.dump}" "${etc:+config.tar}"; do
		[ -z "$want" ] || [ -f "$from/$want" ] || die "$from/$want: missing from the backup"
	done
	(cd "$from" && sha256sum -c --quiet SHA256SUMS) || die "$from: checksums do not match: the backup is damaged"

	# shellcheck disable=SC2086 # one word per service
	stop_services $services
	if [ -n "$store" ]; then
		unpack "$from/jetstream.tar" "$store" "$force"
	fi
	if [ -n "$etc" ]; then
		unpack "$from/config.tar" "$etc" "$force"
	fi
	if [ -n "$db" ]; then
		exists=$(echo "SELECT 1 FROM pg_database WHERE datname = :'db'" |
			psql -X -At -d postgres -v ON_ERROR_STOP=1 -v db="$db") || die "cannot ask PostgreSQL whether database $db exists"
		if [ "$exists" = 1 ]; then
			[ "$force" = 1 ] || die "database $db exists: restore into a new database, or give -f to drop it"
			run dropdb --no-password "$db"
		fi
		run createdb --no-password "$db"
		list=$(mktemp)
		trap 'rm -f "$list"; for s in $stopped; do service_ctl start "$s"; done' EXIT
		pg_restore -l "$from/postgres.dump" >"$list"
		# pg_restore -l ends these entries with the owner, which for an
		# extension is empty: a space, then the end of the line.
		if grep -q ' EXTENSION - timescaledb *$' "$list"; then
			# The extension is created and readied by hand; its entries in
			# the dump are skipped.
			grep -v -e ' EXTENSION - timescaledb *$' -e ' COMMENT - EXTENSION timescaledb *$' "$list" >"$list.ts"
			mv "$list.ts" "$list"
			run psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c 'CREATE EXTENSION IF NOT EXISTS timescaledb' -c 'SELECT timescaledb_pre_restore()'
			run pg_restore --no-password --exit-on-error --no-owner -L "$list" -d "$db" "$from/postgres.dump"
			run psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c 'SELECT timescaledb_post_restore()'
		else
			run pg_restore --no-password --exit-on-error --single-transaction --no-owner -d "$db" "$from/postgres.dump"
		fi
		rm -f "$list"
	fi
	printf 'restored %s\n' "$from"
}

restore_zfs() {
	services=
	remote=
	OPTIND=1
	while getopts S:r: opt; do
		case $opt in
		S) services="$services $OPTARG" ;;
		r) remote=$OPTARG ;;
		*) usage ;;
		esac
	done
	shift $((OPTIND - 1))
	[ $# -eq 1 ] || usage
	ds=${1%@*}
	snap=${1#*@}
	if [ -z "$ds" ] || [ -z "$snap" ] || [ "$ds" = "$1" ]; then
		die "$1: want DATASET@SNAPSHOT"
	fi
	# shellcheck disable=SC2086 # one word per service
	stop_services $services
	if [ -n "$remote" ]; then
		split_remote "$remote"
		if [ "$dry" = 1 ]; then
			printf '+ ssh %s zfs send -R %s@%s | zfs receive -F %s\n' "$rhost" "$rds" "$snap" "$ds"
		else
			ssh "$rhost" zfs send -R "$rds@$snap" | zfs receive -F "$ds"
		fi
	else
		if ! all=$(zfs list -H -o name -r "$ds" 2>/dev/null); then
			[ "$dry" = 1 ] || die "$ds: no such dataset"
			printf '# (dry run: zfs list -H -o name -r %s failed here; showing the top dataset only)\n' "$ds"
			all=$ds
		fi
		for d in $all; do
			run zfs rollback -r "$d@$snap"
		done
	fi
	printf 'restored %s@%s\n' "$ds" "$snap"
}

mode=${1:-}
[ $# -gt 0 ] && shift
case $mode in
files) restore_files "$@" ;;
zfs) restore_zfs "$@" ;;
*) usage ;;
esac
