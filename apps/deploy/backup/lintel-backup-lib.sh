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
