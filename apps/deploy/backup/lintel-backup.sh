#!/bin/sh
# lintel-backup.sh: back up a Lintel host's JetStream store and PostgreSQL.
#
#   lintel-backup.sh [-n] zfs [-c CLASS] [-k H,D,W] [-p DB] [-r [USER@]HOST:DATASET] DATASET
#
#       Snapshot DATASET and every dataset below it at one instant
#       (zfs snapshot -r is atomic across them), as DATASET@lintel-CLASS-
#       <UTC time>; send the new snapshot offsite with -r; then keep the
#       newest H hourly, D daily and W weekly snapshots and destroy the rest
#       of the snapshots so named, never the one just taken nor the one
#       last sent offsite (kept in the dataset's lintel:offsite property).
#       Snapshots named otherwise are left alone. CLASS is hourly
#       (default), daily or weekly: run it from cron once per class, each
#       at its own interval. -k defaults to 24,7,8; CLASS's count must be
#       at least 1.
#
#       -p DB runs CHECKPOINT in PostgreSQL database DB first. The snapshot
#       holds data files and WAL at one instant, exactly what a power cut
#       would leave: PostgreSQL recovers from it by replaying the WAL, and
#       the checkpoint keeps that replay short. JetStream recovers its file
#       store the same way. No pg_backup_start is needed for an atomic
#       snapshot of the whole cluster.
#
#       -r sends incrementally with zfs send -R -I from the newest snapshot
#       the remote holds (a full stream the first time), into
#       zfs receive -F -u on HOST over ssh (rsync.net offers ZFS receive).
#       -F makes the remote follow the local retention: snapshots pruned
#       here disappear there at the next send. The send runs before the
#       pruning, so the remote's base snapshot is never pruned away first.
#
#   lintel-backup.sh [-n] files [-s STORE] [-S SERVICE]... [-p DB] [-e DIR] [-k N] [-r DEST] OUTDIR
#
#       For hosts without ZFS. Writes OUTDIR/lintel-<UTC time>/ with
#         jetstream.tar     the store directory STORE, copied while the
#                           SERVICEs (-S, repeatable: the Lintel app using
#                           STORE) are stopped: a running store changes
#                           under the copy. They are started again, also
#                           when the copy fails.
#         postgres.dump     pg_dump -Fc of database DB (-p): a consistent
#                           snapshot, taken while the database runs.
#         config.tar        DIR (-e), such as /etc/lintel: the inventory, the
#                           state and the secrets, the deployment's crown
#                           jewels.
#         SHA256SUMS        checked by lintel-restore.sh before anything is
#                           restored.
#       The backup is written as OUTDIR/.lintel-<time>.partial and renamed
#       when complete. Then the newest N backups are kept (-k, default 14)
#       and, with -r, OUTDIR is mirrored to DEST ([USER@]HOST:PATH or a
#       directory) with rsync --delete.
#
#   -n  dry run: print every command that changes something, in order,
#       instead of running it. Commands that only read (zfs list, ls) still
#       run when they can, so that the pruning shown is the real one; the
#       remote is not asked.
#
# PostgreSQL connection settings come from the environment (PGHOST, PGPORT,
# PGUSER, PGPASSFILE...). Services are stopped and started with systemctl,
# or service(8) where there is no systemctl.
set -eu

# shellcheck source-path=SCRIPTDIR source=lintel-backup-lib.sh
. "$(dirname -- "$0")/lintel-backup-lib.sh"

# count_ok VALUE WHAT: VALUE must be a non-negative integer.
count_ok() {
	case $1 in
	'' | *[!0-9]*) die "$2 \"$1\": want a non-negative number" ;;
	esac
}

backup_zfs() {
	class=hourly
	keep=24,7,8
	db=
	remote=
	OPTIND=1
	while getopts c:k:p:r: opt; do
		case $opt in
		c) class=$OPTARG ;;
		k) keep=$OPTARG ;;
		p) db=$OPTARG ;;
		r) remote=$OPTARG ;;
		*) usage ;;
		esac
	done
	shift $((OPTIND - 1))
	[ $# -eq 1 ] || usage
	ds=$1
	case $class in
	hourly | daily | weekly) ;;
	*) die "-c $class: want hourly, daily or weekly" ;;
	esac
	old_ifs=$IFS
	IFS=,
	# shellcheck disable=SC2086 # split H,D,W on commas
	set -- $keep
	IFS=$old_ifs
	[ $# -eq 3 ] || die "-k $keep: want three counts, hourly,daily,weekly (such as 24,7,8)"
	keep_hourly=$1 keep_daily=$2 keep_weekly=$3
	count_ok "$keep_hourly" "-k hourly"
	count_ok "$keep_daily" "-k daily"
	count_ok "$keep_weekly" "-k weekly"
	case $class in
	hourly) n=$keep_hourly ;;
	daily) n=$keep_daily ;;
	weekly) n=$keep_weekly ;;
	esac
	[ "$n" -ge 1 ] || die "-k $keep: keeps no $class snapshot, not even the one this run takes"
	rhost=
	rds=
	if [ -n "$remote" ]; then
		split_remote "$remote"
	fi
	if [ "$dry" = 0 ]; then
		zfs list -H -o name "$ds" >/dev/null || die "$ds: no such dataset"
	fi

	snap=lintel-$class-$stamp
	if [ -n "$db" ]; then
		run psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c CHECKPOINT
	fi
	run zfs snapshot -r "$ds@$snap"

	if [ -n "$remote" ]; then
		if [ "$dry" = 1 ]; then
			printf '+ ssh %s zfs list -H -t snapshot -o name -s creation -d 1 %s\n' "$rhost" "$rds"
			printf '# (dry run: the remote is not asked; the stream is incremental (-I) from its newest snapshot when it has one)\n'
			printf '+ zfs send -R -I @<newest on remote> %s@%s | ssh %s zfs receive -F -u %s\n' "$ds" "$snap" "$rhost" "$rds"
		else
			base=$(ssh "$rhost" zfs list -H -t snapshot -o name -s creation -d 1 "$rds" 2>/dev/null | tail -n 1 | sed 's/.*@//') || base=
			if [ -z "$base" ]; then
				printf 'sending %s@%s to %s:%s (full: the remote has no snapshot)\n' "$ds" "$snap" "$rhost" "$rds"
				zfs send -R "$ds@$snap" | ssh "$rhost" zfs receive -u "$rds"
			elif zfs list -H -o name "$ds@$base" >/dev/null 2>&1; then
				printf 'sending %s@%s to %s:%s (incremental from @%s)\n' "$ds" "$snap" "$rhost" "$rds" "$base"
				zfs send -R -I "@$base" "$ds@$snap" | ssh "$rhost" zfs receive -F -u "$rds"
			else
				die "the remote's newest snapshot @$base is no longer here: no incremental stream is possible; check both sides, then send a full stream into a fresh remote dataset"
			fi
		fi
		# Remembered on the dataset: pruning keeps it, whichever class runs.
		run zfs set "lintel:offsite=$snap" "$ds"
	fi

	# Prune to the retention policy (zfs_prune_select, in the library):
	# never the snapshot just taken, nor the one last sent offsite.
	if ! list=$(zfs list -H -p -t snapshot -o name,creation -d 1 "$ds" 2>/dev/null); then
		[ "$dry" = 1 ] || die "zfs list $ds failed"
		printf '# (dry run: zfs list -H -p -t snapshot -o name,creation -d 1 %s failed here; nothing shown to prune)\n' "$ds"
		return 0
	fi
	if [ "$dry" = 1 ]; then
		# The snapshot just shown, as if it had been taken.
		list=$(printf '%s\n%s\t%s' "$list" "$ds@$snap" "$(date +%s)")
	fi
	offsite=$(zfs get -H -o value lintel:offsite "$ds" 2>/dev/null) || offsite=
	case $offsite in
	'' | -) offsite= ;;
	*) offsite=$ds@$offsite ;;
	esac
	doomed=$(printf '%s\n' "$list" | zfs_prune_select "$keep_hourly" "$keep_daily" "$keep_weekly" ${offsite:+"$offsite"}) || die "cannot tell which snapshots of $ds to prune"
	for old in $doomed; do
		run zfs destroy -r "$old"
	done
}

backup_files() {
	store=
	services=
	db=
	etc=
	keep=14
	remote=
	OPTIND=1
	while getopts s:S:p:e:k:r: opt; do
		case $opt in
		s) store=$OPTARG ;;
		S) services="$services $OPTARG" ;;
		p) db=$OPTARG ;;
		e) etc=$OPTARG ;;
		k) keep=$OPTARG ;;
		r) remote=$OPTARG ;;
		*) usage ;;
		esac
	done
	shift $((OPTIND - 1))
	[ $# -eq 1 ] || usage
	out=$1
	count_ok "$keep" "-k"
	[ "$keep" -ge 1 ] || die "-k 0: keep at least the backup just taken"
	[ -n "$store$db$etc" ] || die "nothing to back up: give -s STORE, -p DB or -e DIR"
	if [ -n "$store" ] && [ ! -d "$store" ]; then
		die "-s $store: no such directory"
	fi
	if [ -n "$etc" ] && [ ! -d "$etc" ]; then
		die "-e $etc: no such directory"
	fi
	[ -n "$services" ] && [ -z "$store" ] && die "-S without -s: services are stopped only to copy a store"

	name=lintel-$stamp
	partial=$out/.$name.partial
	if [ -e "$out/$name" ] || [ -e "$partial" ]; then
		die "$out/$name exists: backups are named by the second; run again"
	fi
	umask 077
	run mkdir -p "$partial"
	if [ -n "$db" ]; then
		run pg_dump -Fc --no-password -d "$db" -f "$partial/postgres.dump"
	fi
	if [ -n "$store" ]; then
		# shellcheck disable=SC2086 # one word per service
		stop_services $services
		run tar -C "$store" -cf "$partial/jetstream.tar" .
		start_services
	fi
	if [ -n "$etc" ]; then
		run tar -C "$etc" -cf "$partial/config.tar" .
	fi
	if [ "$dry" = 1 ]; then
		printf '+ (cd %s && sha256sum -- * >SHA256SUMS)\n' "$partial"
	else
		(cd "$partial" && sha256sum -- * >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
	fi
	run mv "$partial" "$out/$name"
	printf 'backup %s\n' "$out/$name"

	# Keep the newest $keep (names sort by time).
	{
		for d in "$out"/lintel-*; do
			case ${d##*/} in
			lintel-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z) [ -d "$d" ] && printf '%s\n' "${d##*/}" ;;
			esac
		done
		[ "$dry" = 1 ] && printf '%s\n' "$name"
	} | sort -u | {
		all=$(cat)
		total=$(printf '%s\n' "$all" | grep -c . || true)
		excess=$((total - keep))
		if [ "$excess" -gt 0 ]; then
			printf '%s\n' "$all" | head -n "$excess" | while read -r old; do
				run rm -rf "${out:?}/$old"
			done
		fi
	}

	if [ -n "$remote" ]; then
		run rsync -a --delete --exclude '.*.partial' "$out/" "$remote/"
	fi
}

mode=${1:-}
[ $# -gt 0 ] && shift
case $mode in
zfs) backup_zfs "$@" ;;
files) backup_files "$@" ;;
*) usage ;;
esac
