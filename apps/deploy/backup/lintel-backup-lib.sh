# lintel-backup-lib.sh: what lintel-backup.sh and lintel-restore.sh share.
# They source it from their own directory: install it beside them. It is
# not run on its own.
#
# Sourced, it takes a leading -n (dry run) off the script's arguments and
# sets dry, and stamp (the UTC time of the run, as in backup names).

# The script's name, for messages.
me=${0##*/}

# die MESSAGE...: print the message and exit with 1.
die() {
	printf '%s: %s\n' "$me" "$*" >&2
	exit 1
}

# usage: print the script's head comment and exit with 2.
usage() {
	sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
}

dry=0
if [ "${1:-}" = -n ]; then
	dry=1
	shift
fi

# run CMD...: run a command that changes something, or print it.
run() {
	if [ "$dry" = 1 ]; then
		printf '+ %s\n' "$*"
	else
		"$@"
	fi
}

# service_ctl ACTION NAME: stop or start a service.
service_ctl() {
	if command -v systemctl >/dev/null 2>&1; then
		run systemctl "$1" "$2"
	else
		run service "$2" "$1"
	fi
}

# shellcheck disable=SC2034 # used by the scripts that source this
stamp=$(date -u +%Y%m%dT%H%M%SZ)

# stop_services SERVICE...: stop them, and start them again when the
# script ends, whether or not it worked (or earlier, with start_services).
stop_services() {
	stopped=
	for s in "$@"; do
		service_ctl stop "$s"
		stopped="$s $stopped"
		# shellcheck disable=SC2064 # expand now: the list as it is
		trap "for s in $stopped; do service_ctl start \"\$s\"; done" EXIT
	done
}

# start_services: start what stop_services stopped, now, in reverse order.
start_services() {
	for s in $stopped; do
		service_ctl start "$s"
	done
	trap - EXIT
}

# split_remote REMOTE: set rhost and rds from -r [USER@]HOST:DATASET.
split_remote() {
	rhost=${1%%:*}
	# shellcheck disable=SC2034 # used by the scripts that source this
	rds=${1#*:}
	if [ -z "$rhost" ] || [ -z "$rds" ] || [ "$rhost" = "$1" ]; then
		die "-r $1: want [USER@]HOST:DATASET"
	fi
}

# zfs_prune_select HOURLY DAILY WEEKLY [KEEP...]: the retention policy of
# lintel-backup.sh zfs. Reads a dataset's snapshots on stdin, one
# "DATASET@NAME<TAB>CREATION" a line in any order, as
# zfs list -H -p -t snapshot -o name,creation -d 1 prints them (CREATION in
# seconds since the epoch), and prints the snapshots to destroy, oldest
# first. Of the snapshots named lintel-CLASS-<UTC time> (CLASS hourly, daily
# or weekly) it keeps the newest HOURLY, DAILY and WEEKLY of each class and
# selects the rest, except the newest of these snapshots (the one just taken)
# and the KEEPs (full DATASET@NAME: the one last sent offsite, the base of
# the next incremental stream). Snapshots named otherwise, taken by hand or
# by other tools, are never selected. A line that is not NAME<TAB>CREATION
# is an error, and nothing is printed.
zfs_prune_select() {
	[ $# -ge 3 ] || die "zfs_prune_select: want HOURLY DAILY WEEKLY [KEEP...]"
	_h=$1 _d=$2 _w=$3
	shift 3
	awk -F '\t' -v h="$_h" -v d="$_d" -v w="$_w" -v keep="$*" -v me="$me" '
		BEGIN {
			limit["hourly"] = h; limit["daily"] = d; limit["weekly"] = w
			nk = split(keep, k, " ")
			for (i = 1; i <= nk; i++) kept[k[i]] = 1
		}
		$0 == "" { next }
		NF != 2 || $1 !~ /@/ || $2 !~ /^[0-9]+$/ {
			printf "%s: snapshot line %d \"%s\": want DATASET@NAME<TAB>CREATION (seconds since the epoch)\n", me, NR, $0 > "/dev/stderr"
			bad = 1
			exit 2
		}
		{ n++; name[n] = $1; created[n] = $2 }
		END {
			if (bad) exit 2
			# Oldest first: by creation, then by name (one second can hold two).
			for (i = 2; i <= n; i++) {
				for (j = i; j > 1 && (created[j-1] > created[j] || (created[j-1] == created[j] && name[j-1] > name[j])); j--) {
					t = name[j]; name[j] = name[j-1]; name[j-1] = t
					t = created[j]; created[j] = created[j-1]; created[j-1] = t
				}
			}
			stamp = "[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z$"
			for (i = n; i >= 1; i--) {
				snap = name[i]
				sub(/^[^@]*@/, "", snap)
				class = ""
				if (snap ~ ("^lintel-hourly-" stamp)) class = "hourly"
				else if (snap ~ ("^lintel-daily-" stamp)) class = "daily"
				else if (snap ~ ("^lintel-weekly-" stamp)) class = "weekly"
				if (class == "") continue
				seen[class]++
				newest = !any++
				if (seen[class] > limit[class] + 0 && !newest && !(name[i] in kept)) doomed[i] = 1
			}
			for (i = 1; i <= n; i++) if (i in doomed) print name[i]
		}'
}
